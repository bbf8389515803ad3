# minifaas Python zygote (fork server). Imports the worker shim and the modules handlers
# commonly use once, then forks one worker per request from the server, so a cold start
# costs a fork and the handler's own imports instead of a whole interpreter start.
#
# Control socket: fd 3. Each request is a 4-byte big-endian length and a JSON object
# {"code_dir", "entry", "env"}, with four descriptors attached (SCM_RIGHTS): the
# worker's request pipe, response pipe, log pipe and "go" pipe. The reply is a
# length-prefixed {"pid": N}, sent by the forked worker itself (the server reads the
# sender's pid from the kernel's credentials, valid across PID namespaces), or
# {"error": "..."} from the zygote. The worker then waits for one byte on its go pipe:
# the server has put it in its own cgroup by then.
import ctypes
import json
import os
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import python as shim  # noqa: E402  (the worker shim, loaded once here)

# What handlers and the shim use most, imported before any fork.
import asyncio  # noqa: E402,F401
import base64  # noqa: E402,F401
import datetime  # noqa: E402,F401
import hashlib  # noqa: E402,F401
import importlib.util  # noqa: E402,F401
import math  # noqa: E402,F401
import random  # noqa: E402,F401
import re  # noqa: E402,F401
import time  # noqa: E402,F401
import traceback  # noqa: E402,F401
import urllib.parse  # noqa: E402,F401

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _reply(control, obj):
    data = json.dumps(obj).encode()
    control.sendall(struct.pack(">I", len(data)) + data)


def _become_worker(control, request, fds):
    os.setsid()  # its own process group: the server kills the group
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the zygote
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request_fd, response_fd, log_fd, go_fd = fds
    _reply(control, {"pid": os.getpid()})
    control.close()
    if os.read(go_fd, 1) != b"g":
        os._exit(1)  # the server gave up on this worker
    os.close(go_fd)
    fds = fds[:3]
    os.dup2(request_fd, 3)
    os.dup2(response_fd, 4)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    for fd in fds:
        if fd > 4:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request.get("env", {}))
    os.chdir(request["code_dir"])
    try:
        shim.main(request["code_dir"], request["entry"])
    finally:
        os._exit(0)


def serve():
    # Children are reaped by the kernel; the server sees a worker end on its pipes.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    control = socket.socket(fileno=3)
    while True:
        data, fds, _flags, _addr = socket.recv_fds(control, 65536, 4)
        if not data:
            return  # the server closed the socket
        while len(data) < 4:
            more = control.recv(65536)
            if not more:
                return
            data += more
        (length,) = struct.unpack(">I", data[:4])
        while len(data) < 4 + length:
            more = control.recv(65536)
            if not more:
                return
            data += more
        try:
            request = json.loads(data[4 : 4 + length])
            if len(fds) != 4:
                raise ValueError(f"expected 4 descriptors, got {len(fds)}")
            pid = os.fork()
        except Exception as exc:
            for fd in fds:
                os.close(fd)
            _reply(control, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        if pid == 0:
            _become_worker(control, request, fds)
        for fd in fds:
            os.close(fd)  # the worker answers for itself


if __name__ == "__main__":
    serve()
