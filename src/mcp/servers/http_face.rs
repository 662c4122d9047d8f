//! The servers' HTTP face around MCP: which browser origins may call (the Streamable HTTP
//! spec asks servers to check `Origin`, or a web page could drive a local server through
//! the operator's browser), and JSON-RPC answers where the transport would answer in plain
//! text, so that a client can read every refusal.

use super::MAX_REQUEST_BYTES;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// JSON-RPC's "Invalid Request": the request itself, not the tool, is what is wrong.
const INVALID_REQUEST: i64 = -32600;

/// Checks the origin before MCP sees the request, and rewrites the transport's plain
/// answers: a too-large body becomes a JSON-RPC error naming the limit, and a closed
/// session answers 204 (clients treat the transport's 202 as a failed termination).
pub(super) async fn guard(allowed: Arc<Vec<String>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !origin_allowed(&origin, &allowed) {
            let shown: String = origin.chars().take(200).collect();
            return jsonrpc_error(
                StatusCode::FORBIDDEN,
                format!(
                    "requests from the browser origin {shown} are refused: only loopback \
                     origins may call this server; start it with --allow-origin {shown} to \
                     allow that page"
                ),
                json!({"origin": shown}),
            );
        }
    }
    let deleting = request.method() == Method::DELETE;
    // The start of the body, kept to answer a too-large request under its own id: an error
    // without an id cannot be matched to the call, and the caller would wait for nothing.
    let head: Arc<Mutex<Vec<u8>>> = Arc::default();
    let (parts, body) = request.into_parts();
    let kept = head.clone();
    let body = Body::from_stream(body.into_data_stream().inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
            let room = HEAD_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }));
    let response = next.run(Request::from_parts(parts, body)).await;
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => jsonrpc_error_for(
            request_id(&head.lock().unwrap_or_else(|p| p.into_inner())),
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request is larger than this server's 4 MiB limit ({MAX_REQUEST_BYTES} \
                 bytes); send smaller arguments, such as a path instead of a file's content"
            ),
            json!({"limit_bytes": MAX_REQUEST_BYTES}),
        ),
        StatusCode::ACCEPTED if deleting => StatusCode::NO_CONTENT.into_response(),
        _ => response,
    }
}

fn jsonrpc_error(status: StatusCode, message: String, data: Value) -> Response {
    jsonrpc_error_for(Value::Null, status, message, data)
}

fn jsonrpc_error_for(id: Value, status: StatusCode, message: String, data: Value) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": INVALID_REQUEST, "message": message, "data": data},
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// How much of a body is kept to find its id: clients write `id` before `params`.
const HEAD_BYTES: usize = 4096;

/// The JSON-RPC id at the start of a request body (`"id": 7` or `"id": "a"`), else null.
fn request_id(head: &[u8]) -> Value {
    let text = String::from_utf8_lossy(head);
    let Some(at) = text.find("\"id\"") else {
        return Value::Null;
    };
    let rest = text[at + 4..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return Value::Null;
    };
    let mut values = serde_json::Deserializer::from_str(rest.trim_start()).into_iter::<Value>();
    match values.next() {
        Some(Ok(id @ (Value::Number(_) | Value::String(_)))) => id,
        _ => Value::Null,
    }
}

/// A loopback origin (`http://localhost:3000`, `https://127.0.0.1`, `http://[::1]:8080`)
/// or one the operator allowed, compared without case or a trailing slash.
pub(crate) fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').to_ascii_lowercase() == origin)
    {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((host, _port)) => host,
            None => rest,
        }
    };
    if rest.contains('/') || rest.contains('@') {
        return false;
    }
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The requests a server is still answering, and whether it still takes new ones: a stop
/// waits until every answer has been written before it closes the sessions, so a call
/// that ends while the server stops is answered, not dropped with its connection.
#[derive(Clone, Default)]
pub(super) struct Drain {
    closing: Arc<AtomicBool>,
    in_flight: Arc<watch::Sender<usize>>,
}

/// Counts one request as in flight for as long as its response body lives.
struct InFlight(Arc<watch::Sender<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Drain {
    /// Refuses a new request once the server is stopping, and otherwise counts the request
    /// until its response body has been written to the end (or its connection closed).
    pub(super) async fn track(self, request: Request, next: Next) -> Response {
        // A GET opens the session's stream of server messages, which stays open for the
        // session's life: it carries no answer, and waiting for it would wait the full limit.
        if request.method() == Method::GET && !self.closing.load(Ordering::SeqCst) {
            return next.run(request).await;
        }
        // Counted before the check, so a stop never sees zero while this one slips in.
        self.in_flight.send_modify(|n| *n += 1);
        let counted = InFlight(self.in_flight.clone());
        // Closing a session is still taken: it only lets the server forget it sooner.
        if self.closing.load(Ordering::SeqCst) && request.method() != Method::DELETE {
            return jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server is shutting down and takes no new requests; call again once it \
                 is back"
                    .into(),
                json!({}),
            );
        }
        let (parts, body) = next.run(request).await.into_parts();
        let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _counted_until_written = &counted;
            chunk
        }));
        Response::from_parts(parts, body)
    }

    /// Stops taking new requests and waits until the ones in flight have been answered,
    /// at most `limit`. Whether they all were.
    pub(super) async fn close(&self, limit: Duration) -> bool {
        self.closing.store(true, Ordering::SeqCst);
        let mut count = self.in_flight.subscribe();
        tokio::time::timeout(limit, count.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::{origin_allowed, request_id};
    use serde_json::{Value, json};

    #[test]
    fn the_id_is_found_at_the_start_of_a_body() {
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":{"#),
            json!(7)
        );
        assert_eq!(request_id(br#"{"id" : "a-1", "method""#), json!("a-1"));
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","method":"x","#),
            Value::Null
        );
    }

    #[test]
    fn loopback_and_listed_origins_pass_others_do_not() {
        let none: Vec<String> = vec![];
        for ok in [
            "http://localhost:5173",
            "http://127.0.0.1",
            "https://127.0.0.1:8443/",
            "http://[::1]:8080",
            "HTTP://LOCALHOST",
        ] {
            assert!(origin_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://evil.example@127.0.0.1",
            "null",
            "file://",
            "http://10.0.0.5:8100",
        ] {
            assert!(!origin_allowed(bad, &none), "{bad}");
        }
        let listed = vec!["https://console.acme.example".to_string()];
        assert!(origin_allowed("https://console.acme.example", &listed));
        assert!(!origin_allowed("https://other.acme.example", &listed));
    }
}
