<?php
// Handler mode: loaded once by a warm worker, called per request.
function handle($request) {
    $data = $request->get_json() ?? [];
    return ['message' => 'Hello, ' . ($data['name'] ?? 'World') . '!', 'method' => $request->method];
}
