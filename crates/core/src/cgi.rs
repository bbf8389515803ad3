//! The CGI/WAGI contract between the platform and a program that reads the request on
//! stdin and writes the response on stdout (WASI modules, script-mode functions).
//!
//! Request: `REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, `CONTENT_LENGTH`,
//! `CONTENT_TYPE`, `HTTP_<HEADER>` and the usual CGI fixed variables. Proxy credentials
//! are never passed on; the platform's own key has been removed by the gateway, so an
//! `Authorization` header that arrives here is the caller's own (a public webhook's).
//!
//! Response: stdout is the body; if it starts with a block of CGI header lines containing
//! at least one of `Content-Type`, `Status` or `Location`, followed by a blank line, those
//! set the status and headers and the rest is the body. Anything else is all body, so
//! `printf("Hello from FAAS!\n")` just works.

use bytes::Bytes;

use crate::invocation::{InvokeRequest, InvokeResponse};

/// Headers that never reach a function.
const WITHHELD_HEADERS: [&str; 1] = ["proxy-authorization"];

/// The CGI environment for one request to the function `name`.
pub fn cgi_environment(name: &str, request: &InvokeRequest) -> Vec<(String, String)> {
    let mut env = Vec::with_capacity(10 + request.headers.len());
    env.push(("GATEWAY_INTERFACE".into(), "CGI/1.1".into()));
    env.push(("SERVER_PROTOCOL".into(), "HTTP/1.1".into()));
    env.push(("SERVER_SOFTWARE".into(), "minifaas".into()));
    env.push(("REQUEST_METHOD".into(), request.method.clone()));
    env.push(("SCRIPT_NAME".into(), format!("/invoke/{name}")));
    env.push(("PATH_INFO".into(), request.path.clone()));
    env.push(("QUERY_STRING".into(), request.query.clone()));
    env.push(("CONTENT_LENGTH".into(), request.body.len().to_string()));
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        if WITHHELD_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        if lower == "content-type" {
            env.push(("CONTENT_TYPE".into(), value.clone()));
            continue;
        }
        let var: String = lower
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.push((format!("HTTP_{var}"), value.clone()));
    }
    env
}

/// Splits a program's stdout into status, headers and body.
pub fn parse_cgi_output(stdout: Bytes) -> InvokeResponse {
    match split_header_block(&stdout) {
        Some((headers_end, body_start)) => {
            let Ok(block) = std::str::from_utf8(&stdout[..headers_end]) else {
                return InvokeResponse::ok(stdout);
            };
            match parse_header_block(block) {
                Some((status, headers)) => InvokeResponse {
                    status,
                    headers,
                    body: stdout.slice(body_start..),
                },
                None => InvokeResponse::ok(stdout),
            }
        }
        None => InvokeResponse::ok(stdout),
    }
}

/// Finds the blank line ending a header block: (end of headers, start of body).
fn split_header_block(out: &[u8]) -> Option<(usize, usize)> {
    // Header blocks are small; do not scan a large body looking for one.
    let window = &out[..out.len().min(16 * 1024)];
    let mut i = 0;
    while i < window.len() {
        if window[i] == b'\n' {
            if window.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if window.get(i + 1) == Some(&b'\r') && window.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_header_block(block: &str) -> Option<(u16, Vec<(String, String)>)> {
    let mut status = 200;
    let mut headers = Vec::new();
    let mut saw_cgi_header = false;
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (name, value) = line.split_once(':')?;
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return None;
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next()?.parse::<u16>().ok()?;
            if !(100..=599).contains(&code) {
                return None;
            }
            status = code;
            saw_cgi_header = true;
        } else {
            if name.eq_ignore_ascii_case("content-type") {
                saw_cgi_header = true;
            } else if name.eq_ignore_ascii_case("location") {
                saw_cgi_header = true;
                if status == 200 {
                    status = 302;
                }
            }
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    saw_cgi_header.then_some((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_is_all_body() {
        let r = parse_cgi_output(Bytes::from_static(b"Hello from FAAS!\n"));
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"Hello from FAAS!\n");
        assert!(r.headers.is_empty());
    }

    #[test]
    fn header_block_sets_status_and_headers() {
        let r = parse_cgi_output(Bytes::from_static(
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: b\r\n\r\nnope",
        ));
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("x-a"), Some("b"));
        assert_eq!(&r.body[..], b"nope");
    }

    #[test]
    fn text_with_a_colon_is_not_a_header_block() {
        let r = parse_cgi_output(Bytes::from_static(b"note: hi\n\nbody"));
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"note: hi\n\nbody");
        let r = parse_cgi_output(Bytes::from_static(b"Status: banana\n\nx"));
        assert_eq!(r.status, 200);
    }

    #[test]
    fn environment_follows_cgi_and_withholds_credentials() {
        let request = InvokeRequest {
            id: "inv_1".into(),
            method: "POST".into(),
            path: "/a/b".into(),
            query: "x=1".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-request-id".into(), "7".into()),
                ("proxy-authorization".into(), "Basic secret".into()),
            ],
            body: Bytes::from_static(b"{}"),
        };
        let env = cgi_environment("f", &request);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(get("PATH_INFO"), Some("/a/b"));
        assert_eq!(get("QUERY_STRING"), Some("x=1"));
        assert_eq!(get("CONTENT_TYPE"), Some("application/json"));
        assert_eq!(get("CONTENT_LENGTH"), Some("2"));
        assert_eq!(get("HTTP_X_REQUEST_ID"), Some("7"));
        assert!(env.iter().all(|(_, v)| !v.contains("secret")));
    }
}
