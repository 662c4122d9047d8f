//! rmcp's errors as sentences an operator can act on, and what each one says about the
//! call: whether it certainly never reached the server, or was cut after it may have.

use rmcp::ServiceError;
use rmcp::service::ClientInitializeError;
use rmcp::transport::streamable_http_client::StreamableHttpError;
use std::error::Error;
use std::io::ErrorKind;
use std::time::Duration;

/// What a failed attempt means for the tool's effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The request never reached the server (nothing listened, the session was unknown, the
    /// server refused the request as such): sending it again cannot run the tool twice.
    NotSent(String),
    /// The request went out and the connection broke before the answer: the tool may or
    /// may not have run.
    Cut(String),
    /// The server answered with a protocol error (unknown tool, bad arguments).
    Refused(String),
}

type HttpError = StreamableHttpError<reqwest::Error>;

/// A failed tool call.
pub(super) fn call_failure(e: &ServiceError) -> Failure {
    match e {
        ServiceError::McpError(data) => Failure::Refused(data.message.to_string()),
        ServiceError::TransportClosed => {
            Failure::Cut("the connection closed before the answer came".into())
        }
        ServiceError::TransportSend(e) => sent_failure(e.error.as_ref()),
        ServiceError::Timeout { timeout } => {
            Failure::Cut(format!("no answer within {}", seconds(*timeout)))
        }
        ServiceError::Cancelled { .. } => Failure::Cut("the call was cancelled".into()),
        ServiceError::UnexpectedResponse => {
            Failure::Refused("the server answered something other than a tool result".into())
        }
        other => Failure::Cut(innermost(other)),
    }
}

/// A POST that failed: whether it can have reached the server depends on how.
fn sent_failure(e: &(dyn Error + 'static)) -> Failure {
    let reason = reason(e);
    match chain(e).find_map(|e| e.downcast_ref::<HttpError>()) {
        Some(StreamableHttpError::SessionExpired) => Failure::NotSent(reason),
        Some(StreamableHttpError::HttpStatus(s)) if (400..500).contains(&s.status) => {
            Failure::NotSent(reason)
        }
        Some(StreamableHttpError::Client(r))
            if r.is_connect() || r.status().is_some_and(|s| s.is_client_error()) =>
        {
            Failure::NotSent(reason)
        }
        _ if refused(e) => Failure::NotSent(reason),
        _ => Failure::Cut(reason),
    }
}

/// Why connecting (the `initialize` handshake) failed.
pub(super) fn connect_failure(e: &ClientInitializeError) -> String {
    match e {
        ClientInitializeError::TransportError { error, .. } => reason(error.error.as_ref()),
        ClientInitializeError::ConnectionClosed(_) => {
            "the connection closed during the MCP handshake".into()
        }
        ClientInitializeError::JsonRpcError(data) => {
            format!("it refused the MCP handshake: {}", data.message)
        }
        ClientInitializeError::NoCompatibleProtocolVersion { .. } => {
            "it speaks no MCP protocol version ecca speaks".into()
        }
        other => format!("the MCP handshake failed: {}", innermost(other)),
    }
}

/// Why listing tools failed, for a connection that was just made.
pub(super) fn list_failure(e: &ServiceError) -> String {
    match call_failure(e) {
        Failure::NotSent(r) | Failure::Cut(r) | Failure::Refused(r) => {
            format!("it would not list its tools: {r}")
        }
    }
}

fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    // The transport's `Client` variant does not name its cause as a source; step into it.
    std::iter::successors(Some(e), |&e: &&'a (dyn Error + 'static)| {
        match e.downcast_ref::<HttpError>() {
            Some(StreamableHttpError::Client(inner)) => Some(inner as &(dyn Error + 'static)),
            _ => e.source(),
        }
    })
}

fn refused(e: &(dyn Error + 'static)) -> bool {
    // The connector wraps the OS error in its own type, so its words are the sure sign.
    chain(e).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::ConnectionRefused)
            || e.to_string()
                .to_ascii_lowercase()
                .contains("connection refused")
    })
}

/// The reason in words: the transport's own words where they are plain, never a type name.
fn reason(e: &(dyn Error + 'static)) -> String {
    if refused(e) {
        return "connection refused: nothing listens there; is the server running?".into();
    }
    if let Some(io) = chain(e).find_map(|e| e.downcast_ref::<std::io::Error>()) {
        return match io.kind() {
            ErrorKind::ConnectionReset => "the connection was reset".into(),
            ErrorKind::ConnectionAborted => "the connection was aborted".into(),
            ErrorKind::TimedOut => "the connection timed out".into(),
            ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => {
                "the connection closed mid-way".into()
            }
            _ => io.to_string(),
        };
    }
    if let Some(http) = chain(e).find_map(|e| e.downcast_ref::<HttpError>()) {
        return match http {
            StreamableHttpError::SessionExpired => {
                "the server no longer knows this session (HTTP 404); it has restarted".into()
            }
            StreamableHttpError::HttpStatus(s) => format!("it answered HTTP {}", s.status),
            StreamableHttpError::UnexpectedContentType(ct) => format!(
                "it answered {} instead of JSON or an event stream; is the URL an MCP endpoint?",
                ct.as_deref().unwrap_or("without a content type")
            ),
            StreamableHttpError::Sse(_) => "its event stream broke off".into(),
            StreamableHttpError::Client(r) if r.is_connect() => {
                format!("could not connect: {}", innermost(r))
            }
            StreamableHttpError::Client(r) if let Some(status) = r.status() => {
                format!("it answered HTTP {}", status.as_u16())
            }
            StreamableHttpError::Client(r) if r.is_timeout() => "the request timed out".into(),
            StreamableHttpError::Client(r) if r.is_body() || r.is_decode() => {
                "the answer broke off".into()
            }
            StreamableHttpError::SessionRecoveryTimeout => {
                "the session could not be renewed in time".into()
            }
            other => innermost(other),
        };
    }
    innermost(e)
}

/// The deepest cause's words: the outer layers only add type names.
fn innermost(e: &(dyn Error + 'static)) -> String {
    chain(e).last().map(|e| e.to_string()).unwrap_or_default()
}

/// "2 s", "0.5 s".
pub(super) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
