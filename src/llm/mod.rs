//! Model providers. Every provider streams a completion and reports its token usage; the
//! ledger prices that usage. `anthropic` and `openai` speak the real wire formats, `offline`
//! is a deterministic simulated model that is labelled as such wherever it shows up.

mod anthropic;
mod http;
mod offline;
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

/// The streaming interface every model backend implements.
pub trait Provider: Send + Sync {
    /// `anthropic`, `openai` or `offline`.
    fn name(&self) -> &'static str;
    /// True for the offline model: its output and cost are simulated.
    fn simulated(&self) -> bool {
        false
    }
    /// Starts a call. Transient refusals (429, 529, 5xx) are retried inside, before any
    /// output; once the stream has begun, failures surface as stream errors.
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
    pub stop_reason: Option<String>,
}

/// A failed call with the usage it had already incurred, so the ledger can still charge it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    pub error: LlmError,
    pub usage: Usage,
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// Runs a call to the end, handing each piece of text to `on_text` as it arrives.
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
        })?;
    let mut text = String::new();
    let mut usage = Usage::default();
    let mut stop: Option<Option<String>> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Chunk::Text(t)) => {
                on_text(&t);
                text.push_str(&t);
            }
            Ok(Chunk::Usage(u)) => usage = u,
            Ok(Chunk::Done { stop_reason }) => stop = Some(stop_reason),
            Err(error) => {
                // Charge at least what was seen: a provider may have billed output that it
                // never reported because the stream broke first.
                usage.output_tokens = usage.output_tokens.max(estimate_tokens(&text));
                if usage.input_tokens == 0 {
                    usage.input_tokens =
                        estimate_tokens(&request.system) + estimate_tokens(&request.prompt);
                }
                return Err(CallFailure { error, usage });
            }
        }
    }
    match stop {
        Some(stop_reason) => Ok(Completion {
            text,
            usage,
            stop_reason,
        }),
        None => Err(CallFailure {
            error: LlmError::Cut {
                provider: provider.name().to_string(),
            },
            usage,
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
