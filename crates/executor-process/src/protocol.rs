//! The worker protocol's frames: a 4-byte big-endian header length, a JSON header, then
//! `body_len` raw body bytes. The same framing both ways.
//!
//! Server → worker: `{"id", "method", "path", "query", "headers": {name: value},
//! "deadline_ms", "body_len"}`.
//! Worker → server: first `{"ready": true}` (or `{"ready": false, "error"}`) once the
//! handler is loaded; then per request `{"id", "status", "headers": [[name, value]],
//! "body_len"}` or `{"id", "error"}` when the handler raised.

use bytes::Bytes;
use minifaas_core::InvokeRequest;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest header a worker may send: a response header is small; more means a broken
/// or hostile worker.
const MAX_HEADER_BYTES: u32 = 1024 * 1024;

#[derive(Debug, Serialize)]
pub(crate) struct RequestHeader<'a> {
    pub id: u64,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: std::collections::BTreeMap<&'a str, String>,
    pub deadline_ms: u64,
    pub body_len: usize,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResponseHeader {
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub body_len: usize,
}

pub(crate) async fn write_request<W: AsyncWrite + Unpin>(
    out: &mut W,
    id: u64,
    request: &InvokeRequest,
    deadline_ms: u64,
) -> std::io::Result<()> {
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &request.headers {
        // Repeated headers are joined, as HTTP allows.
        headers
            .entry(name.as_str())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    headers.remove("authorization");
    headers.remove("proxy-authorization");
    let header = RequestHeader {
        id,
        method: &request.method,
        path: &request.path,
        query: &request.query,
        headers,
        deadline_ms,
        body_len: request.body.len(),
    };
    let encoded = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    write_frame(out, &encoded, &request.body).await
}

/// Writes one frame with a ready-made JSON header (control frames such as `load`).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    out: &mut W,
    header: &[u8],
    body: &[u8],
) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(4 + header.len() + body.len());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    frame.extend_from_slice(body);
    out.write_all(&frame).await?;
    out.flush().await
}

/// Reads one frame; `max_body` bounds what the worker may send.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(
    input: &mut R,
    max_body: usize,
) -> std::io::Result<(ResponseHeader, Bytes)> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER_BYTES {
        return Err(std::io::Error::other(format!(
            "a {len} byte frame header is over the limit"
        )));
    }
    let mut header = vec![0u8; len as usize];
    input.read_exact(&mut header).await?;
    let header: ResponseHeader = serde_json::from_slice(&header)
        .map_err(|e| std::io::Error::other(format!("malformed frame header: {e}")))?;
    if header.body_len > max_body {
        return Err(std::io::Error::other(format!(
            "a {} byte response is over the {max_body} byte limit",
            header.body_len
        )));
    }
    let mut body = vec![0u8; header.body_len];
    input.read_exact(&mut body).await?;
    Ok((header, Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_through_a_pipe() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let request = InvokeRequest {
            id: "inv_1".into(),
            method: "POST".into(),
            path: "/x".into(),
            query: "a=1".into(),
            headers: vec![
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
                ("authorization".into(), "Bearer k".into()),
            ],
            body: Bytes::from_static(b"hello"),
        };
        write_request(&mut a, 7, &request, 99).await.unwrap();
        let mut len = [0u8; 4];
        b.read_exact(&mut len).await.unwrap();
        let mut header = vec![0u8; u32::from_be_bytes(len) as usize];
        b.read_exact(&mut header).await.unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["headers"]["x-a"], "1, 2");
        assert!(header["headers"].get("authorization").is_none());
        assert_eq!(header["body_len"], 5);

        let reply = br#"{"status":201,"headers":[["X-B","c"]],"body_len":2}"#;
        b.write_all(&(reply.len() as u32).to_be_bytes())
            .await
            .unwrap();
        b.write_all(reply).await.unwrap();
        b.write_all(b"ok").await.unwrap();
        let (header, body) = read_response(&mut a, 1024).await.unwrap();
        assert_eq!(header.status, Some(201));
        assert_eq!(header.headers, vec![("X-B".to_owned(), "c".to_owned())]);
        assert_eq!(&body[..], b"ok");
    }

    #[tokio::test]
    async fn oversized_frames_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let reply = br#"{"status":200,"body_len":999999}"#;
        b.write_all(&(reply.len() as u32).to_be_bytes())
            .await
            .unwrap();
        b.write_all(reply).await.unwrap();
        assert!(read_response(&mut a, 1024).await.is_err());
        b.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    }
}
