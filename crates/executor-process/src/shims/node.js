// minifaas Node worker shim. Loads the user's handler once, then serves frames.
//
// Protocol: fd 3 carries requests in, fd 4 responses out; each frame is a 4-byte
// big-endian header length, a JSON header, then `body_len` raw bytes. fd 1 and fd 2 are
// the function's log: console.log never reaches the protocol.
'use strict';
const fs = require('fs');
const path = require('path');

const IN = 3;
const OUT = 4;

function readExact(n) {
  const buf = Buffer.alloc(n);
  let off = 0;
  while (off < n) {
    let read;
    try {
      read = fs.readSync(IN, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (read === 0) process.exit(0); // the server closed the pipe
    off += read;
  }
  return buf;
}

function send(header, body) {
  body = body || Buffer.alloc(0);
  header.body_len = body.length;
  const encoded = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(encoded.length);
  const frame = Buffer.concat([len, encoded, body]);
  let off = 0;
  while (off < frame.length) off += fs.writeSync(OUT, frame, off, frame.length - off);
}

class Request {
  constructor(header, body) {
    this.id = header.id;
    this.method = header.method || 'GET';
    this.path = header.path || '/';
    this.query = header.query || '';
    this.headers = {};
    for (const [k, v] of Object.entries(header.headers || {})) this.headers[k.toLowerCase()] = v;
    this.body = body;
    const params = {};
    for (const [k, v] of new URLSearchParams(this.query)) {
      if (k in params) params[k] = [].concat(params[k], v);
      else params[k] = v;
    }
    this.query_params = params;
    this.queryParams = params;
  }
  get_header(name, fallback) {
    const v = this.headers[String(name).toLowerCase()];
    return v === undefined ? fallback : v;
  }
  getHeader(name, fallback) { return this.get_header(name, fallback); }
  get_text() { return this.body.toString('utf8'); }
  getText() { return this.get_text(); }
  text() { return this.get_text(); }
  get_json() { return this.body.length ? JSON.parse(this.get_text()) : null; }
  getJson() { return this.get_json(); }
  json() { return this.get_json(); }
}

// A return value is a response object when it has a numeric `statusCode` (or `status`)
// and a `body`: {statusCode, headers, body}; otherwise it is the body itself.
function encode(result) {
  let status = 200;
  let headers = {};
  let body = result;
  if (result && typeof result === 'object' && !Buffer.isBuffer(result) && !Array.isArray(result)
      && 'body' in result && (typeof result.statusCode === 'number' || typeof result.status === 'number')) {
    status = typeof result.statusCode === 'number' ? result.statusCode : result.status;
    headers = result.headers || {};
    body = result.body;
  }
  const out = {};
  for (const [k, v] of Object.entries(headers)) out[String(k)] = String(v);
  const hasType = Object.keys(out).some((k) => k.toLowerCase() === 'content-type');
  let data;
  if (body === undefined || body === null) data = Buffer.alloc(0);
  else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    data = Buffer.from(body);
    if (!hasType) out['Content-Type'] = 'application/octet-stream';
  } else if (typeof body === 'string') {
    data = Buffer.from(body);
    if (!hasType) out['Content-Type'] = 'text/plain; charset=utf-8';
  } else {
    data = Buffer.from(JSON.stringify(body));
    if (!hasType) out['Content-Type'] = 'application/json';
  }
  return [status, Object.entries(out), data];
}

// A generic worker starts with no code: it says ready, then waits for a `load` frame
// naming the code dir, the entry file and the environment (a cold start then costs only
// the user's own module loading, not a Node start).
function awaitLoad() {
  const length = readExact(4).readUInt32BE(0);
  const header = JSON.parse(readExact(length).toString('utf8'));
  readExact(header.body_len || 0);
  if (!header.load) {
    send({ ready: false, error: 'expected a load frame' });
    process.exit(1);
  }
  const { code_dir: codeDir, entry, env } = header.load;
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, env || {});
  process.chdir(codeDir);
  return [codeDir, entry];
}

async function main() {
  let [codeDir, entry] = process.argv.slice(2);
  if (!codeDir) {
    send({ ready: true });
    [codeDir, entry] = awaitLoad();
  }
  let handle;
  try {
    const mod = require(path.join(codeDir, entry));
    handle = typeof mod === 'function' ? mod : (mod && (mod.handle || mod.default));
    if (typeof handle !== 'function') {
      throw new TypeError('the module exports no handler: use module.exports = async (request) => ... or exports.handle');
    }
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    send({ ready: false, error: String(e && e.message ? e.message : e) });
    process.exit(1);
  }
  send({ ready: true });
  for (;;) {
    const length = readExact(4).readUInt32BE(0);
    const header = JSON.parse(readExact(length).toString('utf8'));
    const body = readExact(header.body_len || 0);
    try {
      const result = await handle(new Request(header, body));
      const [status, headers, data] = encode(result);
      send({ id: header.id, status, headers }, data);
    } catch (e) {
      console.error(e && e.stack ? e.stack : String(e));
      send({ id: header.id, error: String(e && e.message ? e.message : e) });
    }
  }
}

main();
