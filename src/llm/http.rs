//! The HTTP part shared by the real providers: sending with retries and backoff.

use super::{Chunk, ChunkStream, LlmError};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use std::collections::VecDeque;
use std::time::Duration;

/// Turns one provider's server-sent events into chunks.
pub(super) trait EventParser: Send + 'static {
    /// Reads one event, pushing any chunks to `out`; returns true once the message is
    /// complete.
    fn parse(
        &mut self,
        event: &str,
        data: &str,
        out: &mut VecDeque<Chunk>,
    ) -> Result<bool, LlmError>;
}

/// A piece of a response body, or the blank line added once it ends cleanly.
enum Piece<B> {
    Body(B),
    End,
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Piece<B> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Piece::Body(b) => b.as_ref(),
            Piece::End => b"\n\n",
        }
    }
}

/// The chunks of a streaming response. A stream that breaks or ends before the parser
/// saw the message complete is a cut.
pub(super) fn sse_chunks(
    provider: &'static str,
    response: reqwest::Response,
    parser: impl EventParser,
) -> ChunkStream {
    struct State<E, P> {
        events: E,
        parser: P,
        pending: VecDeque<Chunk>,
        finished: bool,
        failed: Option<LlmError>,
    }
    let start = State {
        // SSE delivers an event only at the blank line after it; a body that ends cleanly
        // right after its last event's data line (as some recorded Anthropic streams do
        // after message_stop) would otherwise lose that event.
        events: response
            .bytes_stream()
            .map(|r| r.map(Piece::Body))
            .chain(futures::stream::iter([Ok::<_, reqwest::Error>(Piece::End)]))
            .eventsource(),
        parser,
        pending: VecDeque::new(),
        finished: false,
        failed: None,
    };
    futures::stream::unfold(Some(start), move |state| async move {
        let mut s = state?;
        loop {
            if let Some(chunk) = s.pending.pop_front() {
                return Some((Ok(chunk), Some(s)));
            }
            if let Some(e) = s.failed.take() {
                return Some((Err(e), None));
            }
            if s.finished {
                return None;
            }
            match s.events.next().await {
                Some(Ok(event)) => {
                    match s.parser.parse(&event.event, &event.data, &mut s.pending) {
                        Ok(done) => s.finished = done,
                        Err(e) => {
                            // Chunks the failing event carried (an error chunk's usage) go
                            // out first: the call failed, but what it used is still billed.
                            if let Some(chunk) = s.pending.pop_front() {
                                s.failed = Some(e);
                                return Some((Ok(chunk), Some(s)));
                            }
                            return Some((Err(e), None));
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("{provider} stream broke: {e}");
                    return Some((
                        Err(LlmError::Cut {
                            provider: provider.into(),
                        }),
                        None,
                    ));
                }
                None => {
                    return Some((
                        Err(LlmError::Cut {
                            provider: provider.into(),
                        }),
                        None,
                    ));
                }
            }
        }
    })
    .boxed()
}

/// Statuses worth waiting out: request timeout, conflict (a concurrent request on the same
/// resource), rate limits, server errors and Anthropic's "overloaded" (529). Every other
/// status (400 bad request, 401/403 key, 404 model, 413 too large, …) would fail the same
/// way again, so it is reported at once.
pub(super) fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500..=599)
}

/// The wait before attempt `attempt + 1`: the server's `retry-after` when it gave one
/// (capped at a minute), else 0.5 s doubling to at most 8 s.
fn backoff(attempt: u32, retry_after: Option<&str>) -> Duration {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<f64>().ok())
        && secs.is_finite()
        && secs >= 0.0
    {
        return Duration::from_secs_f64(secs.min(60.0));
    }
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(4)))
}

/// Sends the request built by `build`, retrying transient failures up to `max_retries`
/// times. Returns the first successful response; any other status becomes an error with
/// the server's own message.
pub(super) async fn send_with_retry(
    provider: &str,
    url: &str,
    key_env: &str,
    max_retries: u32,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, LlmError> {
    let mut attempt = 0;
    loop {
        let result = build().send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                // A refused, reset or timed-out connection is a fault of the path, not of
                // the request, so it is worth another try.
                if attempt < max_retries && (e.is_connect() || e.is_timeout() || e.is_request()) {
                    tokio::time::sleep(backoff(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                return Err(LlmError::Unreachable {
                    provider: provider.to_string(),
                    url: url.to_string(),
                    detail: root_cause(&e),
                });
            }
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if is_transient(status) {
            if attempt < max_retries {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                tracing::warn!(
                    provider,
                    status,
                    attempt,
                    ?retry_after,
                    "transient model error; retrying"
                );
                tokio::time::sleep(backoff(attempt, retry_after.as_deref())).await;
                attempt += 1;
                continue;
            }
            return Err(LlmError::Exhausted {
                provider: provider.to_string(),
                attempts: attempt + 1,
                status,
            });
        }
        if status == 401 || status == 403 {
            return Err(LlmError::Auth {
                provider: provider.to_string(),
                status,
                key_env: key_env.to_string(),
            });
        }
        let body = response.text().await.unwrap_or_default();
        return Err(LlmError::Http {
            provider: provider.to_string(),
            status,
            message: error_message(&body),
        });
    }
}

/// The message inside a provider's JSON error body, or the body itself, shortened.
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().to_string());
    let mut msg: String = msg.chars().take(300).collect();
    if msg.is_empty() {
        msg = "no message".into();
    }
    msg
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Builds the HTTP client the providers share. Needs the TLS provider installed.
pub(super) fn client(timeout_secs: u64) -> reqwest::Client {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(timeout_secs.max(1)))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_over_backoff() {
        assert_eq!(backoff(0, Some("2")), Duration::from_secs(2));
        assert_eq!(backoff(0, Some("0.25")), Duration::from_millis(250));
        assert_eq!(backoff(0, Some("3600")), Duration::from_secs(60));
        assert_eq!(backoff(0, None), Duration::from_millis(500));
        assert_eq!(backoff(3, None), Duration::from_millis(4000));
        assert_eq!(backoff(9, Some("soon")), Duration::from_millis(8000));
    }

    #[test]
    fn error_bodies_become_short_messages() {
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens too large"}}"#
            ),
            "max_tokens too large"
        );
        assert_eq!(error_message(""), "no message");
    }
}
