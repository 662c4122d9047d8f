//! OpenAI-compatible Chat Completions with streaming (OpenAI, Ollama, vLLM, …). Usage comes
//! from the final chunk, which `stream_options.include_usage` asks for.

use super::http::{EventParser, client, send_with_retry, sse_chunks};
use super::{Chunk, ChunkStream, LlmError, ModelRequest, Provider};
use crate::config::Endpoint;
use crate::money::Usage;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::VecDeque;

const NAME: &str = "openai";

pub struct OpenAiProvider {
    http: reqwest::Client,
    endpoint: Endpoint,
    api_key: Option<String>,
}

impl OpenAiProvider {
    /// `api_key` may be absent for local servers (Ollama, vLLM) that take none.
    pub fn new(endpoint: Endpoint, api_key: Option<String>) -> Self {
        OpenAiProvider {
            http: client(endpoint.timeout_secs),
            endpoint,
            api_key,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.endpoint.base_url.trim_end_matches('/')
        )
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, LlmError>> {
        Box::pin(async move {
            let url = self.url();
            let body = json!({
                "model": request.model,
                "max_tokens": request.max_tokens,
                "messages": [
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.prompt},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
            });
            let response = send_with_retry(
                NAME,
                &url,
                &self.endpoint.api_key_env,
                self.endpoint.max_retries,
                || {
                    let b = self.http.post(&url).json(&body);
                    match &self.api_key {
                        Some(key) => b.bearer_auth(key),
                        None => b,
                    }
                },
            )
            .await?;
            Ok(sse_chunks(NAME, response, SseState::default()))
        })
    }
}

/// Turns OpenAI-compatible chunks into ecca's. Servers differ in where they put things:
/// Azure opens with a `choices: []` chunk carrying only `prompt_filter_results`; OpenAI sends
/// usage in a final `choices: []` chunk; OpenRouter and DeepSeek put it on a chunk that
/// still has choices; Groq without `stream_options` reports it only under `x_groq.usage`;
/// an `error` object (or an `event: error`) may come with or without usage.
#[derive(Default)]
struct SseState {
    stop_reason: Option<String>,
}

impl EventParser for SseState {
    fn parse(
        &mut self,
        event: &str,
        data: &str,
        out: &mut VecDeque<Chunk>,
    ) -> Result<bool, LlmError> {
        if data.trim() == "[DONE]" {
            out.push_back(Chunk::Done {
                stop_reason: self.stop_reason.clone(),
            });
            return Ok(true);
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            // An error event is the provider's own failure even when its body is plain text.
            Err(_) if event == "error" => {
                return Err(LlmError::Provider {
                    provider: NAME.into(),
                    message: data.trim().chars().take(300).collect(),
                });
            }
            Err(e) => {
                return Err(LlmError::Malformed {
                    provider: NAME.into(),
                    detail: format!("chunk is not JSON: {e}"),
                });
            }
        };
        // Usage first: a chunk that also reports an error still carries what was billed.
        let usage = v
            .get("usage")
            .filter(|u| u.is_object())
            .or_else(|| v.pointer("/x_groq/usage").filter(|u| u.is_object()));
        if let Some(u) = usage {
            out.push_back(Chunk::Usage(usage_of(u)));
        }
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| err.as_str())
                .unwrap_or("unknown error");
            return Err(LlmError::Provider {
                provider: NAME.into(),
                message: message.into(),
            });
        }
        if event == "error" {
            return Err(LlmError::Provider {
                provider: NAME.into(),
                message: data.chars().take(300).collect(),
            });
        }
        match v.get("choices") {
            Some(Value::Array(choices)) => {
                if let Some(choice) = choices.first() {
                    if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
                        && !text.is_empty()
                    {
                        out.push_back(Chunk::Text(text.to_string()));
                    }
                    if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                        self.stop_reason = Some(r.to_string());
                    }
                }
            }
            _ if usage.is_some() => {}
            _ => {
                return Err(LlmError::Malformed {
                    provider: NAME.into(),
                    detail: "chunk has neither choices nor usage".into(),
                });
            }
        }
        Ok(false)
    }
}

/// ecca's four counts from an OpenAI-compatible usage object. `prompt_tokens` includes the
/// cached tokens (OpenAI `prompt_tokens_details.cached_tokens`, DeepSeek
/// `prompt_cache_hit_tokens`) and the tokens written to a cache (LiteLLM in front of Claude:
/// `prompt_tokens_details.cache_write_tokens`, also `cache_creation_input_tokens`); ecca
/// prices each of those apart, so they are taken out of the plain input.
fn usage_of(u: &Value) -> Usage {
    let get = |p: &str| u.pointer(p).and_then(Value::as_u64);
    let cache_read = get("/prompt_tokens_details/cached_tokens")
        .or_else(|| get("/prompt_cache_hit_tokens"))
        .or_else(|| get("/cache_read_input_tokens"))
        .unwrap_or(0);
    let cache_write = get("/prompt_tokens_details/cache_write_tokens")
        .or_else(|| get("/prompt_tokens_details/cache_creation_tokens"))
        .or_else(|| get("/cache_creation_input_tokens"))
        .unwrap_or(0);
    let prompt = get("/prompt_tokens").unwrap_or(0);
    Usage {
        input_tokens: prompt.saturating_sub(cache_read + cache_write),
        output_tokens: get("/completion_tokens").unwrap_or(0),
        cache_write_tokens: cache_write,
        cache_read_tokens: cache_read,
    }
}
