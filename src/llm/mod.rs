//! Model providers. Every provider streams a completion and reports its token usage; the
//! ledger prices that usage. `anthropic` and `openai` speak the real wire formats, `offline`
//! is a deterministic simulated model that is labelled as such wherever it shows up.

mod anthropic;
mod http;
mod offline;
mod offline_repo;
mod openai;

pub use anthropic::AnthropicProvider;
pub use offline::OfflineProvider;
/// The offline model's answer to a request, without streaming (pure; used by tests).
pub use offline::answer as offline_answer;
pub use openai::OpenAiProvider;

use crate::money::Usage;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a model is called; recorded on every cost row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Plan,
    Write,
    WriteBatch,
    Tests,
    Evaluate,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Plan => "plan",
            Purpose::Write => "write",
            Purpose::WriteBatch => "write_batch",
            Purpose::Tests => "tests",
            Purpose::Evaluate => "evaluate",
        }
    }
}

/// One model call: a system prompt and one user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    pub model: String,
    pub purpose: Purpose,
    pub system: String,
    pub prompt: String,
    pub max_tokens: u64,
}

impl ModelRequest {
    /// A deliberately high estimate of the prompt's tokens, for reserving budget before the
    /// call: one token per three bytes (real tokenisers average about four) plus framing.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        estimate_tokens_high(&self.system) + estimate_tokens_high(&self.prompt) + 16
    }
}

/// One token per three bytes, rounded up.
pub fn estimate_tokens_high(text: &str) -> u64 {
    (text.len() as u64).div_ceil(3)
}

/// One token per four bytes, rounded up: how the offline model counts, and the floor used
/// for output that a cut stream delivered but never reported.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// A piece of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    Text(String),
    /// The usage so far (cumulative, not a delta).
    Usage(Usage),
    /// The provider said the message is complete.
    Done {
        stop_reason: Option<String>,
    },
}

pub type ChunkStream = BoxStream<'static, Result<Chunk, LlmError>>;

/// A model call that failed, as a sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error(
        "{provider} could not be reached at {url}: {detail}; check the base URL and the network"
    )]
    Unreachable {
        provider: String,
        url: String,
        detail: String,
    },
    #[error("{provider} refused the key (HTTP {status}); set a valid key in {key_env}")]
    Auth {
        provider: String,
        status: u16,
        key_env: String,
    },
    #[error("{provider} answered HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
    },
    #[error(
        "{provider} was still busy after {attempts} attempts (last: HTTP {status}); try again later"
    )]
    Exhausted {
        provider: String,
        attempts: u32,
        status: u16,
    },
    #[error("{provider}'s stream ended before the message was complete; the call can be retried")]
    Cut { provider: String },
    #[error("{provider} sent an event ecca could not read ({detail})")]
    Malformed { provider: String, detail: String },
    #[error("{provider} reported an error mid-stream: {message}")]
    Provider { provider: String, message: String },
}

impl LlmError {
    /// True when making the same call again cannot succeed: the key was refused, or the
    /// server rejected the request itself (400, 404, 413, …). Rate limits, overload, server
    /// errors, cut streams and unreachable endpoints may pass, so they stay retryable.
    pub fn is_permanent(&self) -> bool {
        match self {
            LlmError::Auth { .. } => true,
            LlmError::Http { status, .. } => !http::is_transient(*status),
            _ => false,
        }
    }
}

/// The streaming interface every model backend implements.
pub trait Provider: Send + Sync {
    /// `anthropic`, `openai` or `offline`.
    fn name(&self) -> &'static str;
    /// True for the offline model: its output and cost are simulated.
    fn simulated(&self) -> bool {
        false
    }
    /// Starts a call. Transient refusals (408, 409, 429, 5xx, 529) are retried inside,
    /// before any output; once the stream has begun, failures surface as stream errors.
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, LlmError>>;
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    /// True when the provider reported no usage and `usage` is ecca's estimate
    /// (see [`estimate_usage`]).
    pub estimated: bool,
    pub stop_reason: Option<String>,
}

impl Completion {
    /// True when the model stopped because it ran out of output room (`max_tokens` on
    /// Anthropic, `length` on OpenAI-compatible servers): the text is cut off mid-way.
    pub fn truncated(&self) -> bool {
        matches!(self.stop_reason.as_deref(), Some("max_tokens" | "length"))
    }
}

/// A failed call with the usage it had already incurred, so the ledger can still charge it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    pub error: LlmError,
    pub usage: Usage,
    /// True when some of `usage` is ecca's estimate rather than the provider's report.
    pub estimated: bool,
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// What a call used when the provider never said: the prompt at the high estimate the
/// reservation uses (one token per three bytes plus framing), and the streamed text at one
/// token per three bytes. Real tokenisers average about four bytes a token, so both err
/// high; output the provider did not stream (hidden reasoning) cannot be seen and is not
/// counted. The output is capped at the call's `max_tokens`: a provider cannot bill more,
/// and the reservation (and so every budget cap) was made for no more.
pub fn estimate_usage(request: &ModelRequest, streamed_text: &str) -> Usage {
    Usage {
        input_tokens: request.estimated_prompt_tokens(),
        output_tokens: estimate_tokens_high(streamed_text).min(request.max_tokens),
        ..Usage::default()
    }
}

/// Runs a call to the end, handing each piece of text to `on_text` as it arrives. A call
/// that happened is never free: when the provider reports no usage, the usage is estimated
/// and marked so.
pub async fn complete(
    provider: &dyn Provider,
    request: &ModelRequest,
    mut on_text: impl FnMut(&str) + Send,
) -> Result<Completion, CallFailure> {
    let mut stream = provider
        .stream(request)
        .await
        .map_err(|error| CallFailure {
            error,
            usage: Usage::default(),
            estimated: false,
        })?;
    let mut text = String::new();
    let mut usage: Option<Usage> = None;
    // Whether text arrived after the last usage report (or with none yet): only then can
    // the provider have billed output it has not reported.
    let mut unreported_text = false;
    let mut stop: Option<Option<String>> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Chunk::Text(t)) => {
                on_text(&t);
                text.push_str(&t);
                unreported_text |= !t.is_empty();
            }
            Ok(Chunk::Usage(u)) => {
                usage = Some(u);
                unreported_text = false;
            }
            Ok(Chunk::Done { stop_reason }) => stop = Some(stop_reason),
            Err(error) => {
                // Charge at least what was seen: a provider may have billed output that it
                // never reported because the stream broke first. A report that came after
                // the last text already counts all of it, and stands as reported.
                let seen = estimate_usage(request, &text);
                let mut charged = usage.unwrap_or_default();
                let mut estimated = false;
                if unreported_text && charged.output_tokens < seen.output_tokens {
                    charged.output_tokens = seen.output_tokens;
                    estimated = true;
                }
                if charged.input_tokens + charged.cache_read_tokens + charged.cache_write_tokens
                    == 0
                {
                    charged.input_tokens = seen.input_tokens;
                    estimated = true;
                }
                return Err(CallFailure {
                    error,
                    usage: charged,
                    estimated,
                });
            }
        }
    }
    let (usage, estimated) = match usage {
        Some(u) => (u, false),
        None => (estimate_usage(request, &text), true),
    };
    match stop {
        Some(stop_reason) => Ok(Completion {
            text,
            usage,
            estimated,
            stop_reason,
        }),
        None => Err(CallFailure {
            error: LlmError::Cut {
                provider: provider.name().to_string(),
            },
            usage,
            estimated,
        }),
    }
}

/// Checks that an endpoint answers at all (any HTTP status will do) before work is
/// stored against it, so an unreachable base URL is refused up front.
pub async fn preflight(provider: &str, base_url: &str) -> Result<(), LlmError> {
    let client = http::client(10);
    match client
        .get(base_url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            Err(LlmError::Unreachable {
                provider: provider.into(),
                url: base_url.into(),
                detail: cause.to_string(),
            })
        }
    }
}

/// Finds `## NAME` in a prompt and returns the text under it, up to the next `## ` heading.
/// Prompts are written in these sections so that any reader, the offline model included,
/// can find its parts.
pub fn prompt_section<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let heading = format!("## {name}\n");
    let start = if prompt.starts_with(&heading) {
        heading.len()
    } else {
        prompt.find(&format!("\n{heading}"))? + heading.len() + 1
    };
    let rest = &prompt[start..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    Some(rest[..end].trim_end())
}

/// Reads `key: value` from a section.
pub fn section_field<'a>(section: &'a str, key: &str) -> Option<&'a str> {
    section.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_between_headings() {
        let p = "## Task\nWrite it\n\n## Subtask\ntitle: hello\nlanguage: python\n## Issues\nnone";
        assert_eq!(prompt_section(p, "Task"), Some("Write it"));
        let sub = prompt_section(p, "Subtask").unwrap();
        assert_eq!(section_field(sub, "language"), Some("python"));
        assert_eq!(prompt_section(p, "Issues"), Some("none"));
        assert_eq!(prompt_section(p, "Missing"), None);
    }
}
