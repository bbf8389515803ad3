<?php
// minifaas PHP worker shim. Loads the user's handler once, then serves frames.
//
// Protocol: fd 3 carries requests in, fd 4 responses out; each frame is a 4-byte
// big-endian header length, a JSON header, then `body_len` raw bytes. echo and print go
// to fd 1, the function's log, never to the protocol.

$MINIFAAS_IN = fopen('php://fd/3', 'rb');
$MINIFAAS_OUT = fopen('php://fd/4', 'wb');

function minifaas_read_exact($n) {
    global $MINIFAAS_IN;
    $buf = '';
    while (strlen($buf) < $n) {
        $chunk = fread($MINIFAAS_IN, $n - strlen($buf));
        if ($chunk === false || $chunk === '') {
            if (feof($MINIFAAS_IN)) exit(0); // the server closed the pipe
            continue;
        }
        $buf .= $chunk;
    }
    return $buf;
}

function minifaas_send($header, $body = '') {
    global $MINIFAAS_OUT;
    $header['body_len'] = strlen($body);
    $encoded = json_encode($header, JSON_UNESCAPED_SLASHES);
    $frame = pack('N', strlen($encoded)) . $encoded . $body;
    $off = 0;
    while ($off < strlen($frame)) {
        $n = fwrite($MINIFAAS_OUT, substr($frame, $off));
        if ($n === false || $n === 0) exit(1);
        $off += $n;
    }
    fflush($MINIFAAS_OUT);
}

class Request {
    public $id; public $method; public $path; public $query; public $headers; public $body;
    public $query_params;
    public function __construct($header, $body) {
        $this->id = $header['id'] ?? null;
        $this->method = $header['method'] ?? 'GET';
        $this->path = $header['path'] ?? '/';
        $this->query = $header['query'] ?? '';
        $this->headers = array_change_key_case($header['headers'] ?? [], CASE_LOWER);
        $this->body = $body;
        parse_str($this->query, $params);
        $this->query_params = $params;
    }
    public function get_header($name, $default = null) { return $this->headers[strtolower($name)] ?? $default; }
    public function get_text() { return $this->body; }
    public function get_json() { return $this->body === '' ? null : json_decode($this->body, true); }
}

/** A response with its own status and headers: return response($body, 404, [...]). */
class Response {
    public $body; public $status; public $headers;
    public function __construct($body, $status = 200, $headers = []) {
        $this->body = $body; $this->status = $status; $this->headers = $headers;
    }
}
function response($body, $status = 200, $headers = []) { return new Response($body, $status, $headers); }

function minifaas_encode($result) {
    $status = 200; $headers = []; $body = $result;
    if ($result instanceof Response) { $status = (int)$result->status; $headers = $result->headers; $body = $result->body; }
    $out = [];
    foreach ($headers as $k => $v) $out[] = [(string)$k, (string)$v];
    $has_type = false;
    foreach ($out as $pair) if (strtolower($pair[0]) === 'content-type') $has_type = true;
    if ($body === null) $data = '';
    elseif (is_string($body)) { $data = $body; if (!$has_type) $out[] = ['Content-Type', 'text/plain; charset=utf-8']; }
    else { $data = json_encode($body); if (!$has_type) $out[] = ['Content-Type', 'application/json']; }
    return [$status, $out, $data];
}

[$_, $code_dir, $entry] = $argv;
try {
    require $code_dir . '/' . $entry;
    if (!function_exists('handle')) throw new Error('the file defines no function handle($request)');
} catch (Throwable $e) {
    fwrite(STDERR, (string)$e . "\n");
    minifaas_send(['ready' => false, 'error' => get_class($e) . ': ' . $e->getMessage()]);
    exit(1);
}
minifaas_send(['ready' => true]);

while (true) {
    $length = unpack('N', minifaas_read_exact(4))[1];
    $header = json_decode(minifaas_read_exact($length), true);
    $body = minifaas_read_exact($header['body_len'] ?? 0);
    try {
        [$status, $headers, $data] = minifaas_encode(handle(new Request($header, $body)));
        minifaas_send(['id' => $header['id'] ?? null, 'status' => $status, 'headers' => $headers], $data);
    } catch (Throwable $e) {
        fwrite(STDERR, (string)$e . "\n");
        minifaas_send(['id' => $header['id'] ?? null, 'error' => get_class($e) . ': ' . $e->getMessage()]);
    }
}
