# minifaas Python worker shim. Loads the user's handler once, then serves frames.
#
# Protocol (see the executor-process crate): fd 3 carries requests in, fd 4 responses out;
# each frame is a 4-byte big-endian header length, a JSON header, then `body_len` raw
# bytes. fd 1 and fd 2 are the function's log: print() never reaches the protocol.
import json
import os
import struct
import sys
import traceback

_IN = None
_OUT = None


def _read_exact(n):
    chunks = []
    while n > 0:
        chunk = _IN.read(n)
        if not chunk:
            sys.exit(0)  # the server closed the pipe: stop quietly
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _send(header, body=b""):
    header["body_len"] = len(body)
    encoded = json.dumps(header).encode()
    _OUT.write(struct.pack(">I", len(encoded)) + encoded + body)


class Request:
    """What handle(request) receives."""

    def __init__(self, header, body):
        self.method = header.get("method", "GET")
        self.path = header.get("path", "/")
        self.query = header.get("query", "")
        self.headers = {k.lower(): v for k, v in header.get("headers", {}).items()}
        self.body = body
        self.id = header.get("id")
        from urllib.parse import parse_qs

        parsed = parse_qs(self.query, keep_blank_values=True)
        self.query_params = {k: (v[0] if len(v) == 1 else v) for k, v in parsed.items()}

    def get_header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def get_text(self):
        return self.body.decode("utf-8", errors="replace")

    def get_json(self):
        if not self.body:
            return None
        return json.loads(self.body)

    def __repr__(self):
        return f"Request({self.method} {self.path})"


def _encode(result):
    """The handler's return value as (status, headers, body)."""
    status, headers = 200, {}
    if isinstance(result, tuple):
        if not 2 <= len(result) <= 3:
            raise TypeError("return (body, status) or (body, status, headers)")
        body, status = result[0], int(result[1])
        if len(result) == 3:
            headers = dict(result[2] or {})
    else:
        body = result
    headers = {str(k): str(v) for k, v in headers.items()}
    has_type = any(k.lower() == "content-type" for k in headers)
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        if not has_type:
            headers["Content-Type"] = "application/octet-stream"
    elif isinstance(body, str):
        data = body.encode()
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
    else:
        data = json.dumps(body).encode()
        if not has_type:
            headers["Content-Type"] = "application/json"
    return status, headers, data


def main(code_dir, entry):
    global _IN, _OUT
    _IN = os.fdopen(3, "rb", buffering=0)
    _OUT = os.fdopen(4, "wb", buffering=0)
    deps = os.path.join(code_dir, "deps")
    if os.path.isdir(deps):
        sys.path.insert(0, deps)
    sys.path.insert(0, code_dir)
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("handler", os.path.join(code_dir, entry))
        module = importlib.util.module_from_spec(spec)
        sys.modules["handler"] = module
        spec.loader.exec_module(module)
        handle = getattr(module, "handle")
        if not callable(handle):
            raise TypeError("handle is not a function")
    except BaseException as exc:  # report any load failure, then stop
        traceback.print_exc()
        _send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    _send({"ready": True})

    while True:
        (length,) = struct.unpack(">I", _read_exact(4))
        header = json.loads(_read_exact(length))
        body = _read_exact(header.get("body_len", 0))
        try:
            result = handle(Request(header, body))
            if hasattr(result, "__await__"):
                import asyncio

                result = asyncio.run(result)
            status, headers, data = _encode(result)
        except Exception as exc:
            traceback.print_exc()
            _send({"id": header.get("id"), "error": f"{type(exc).__name__}: {exc}"})
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        _send({"id": header.get("id"), "status": status, "headers": list(headers.items())}, data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
