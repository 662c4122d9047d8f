//! Anthropic Messages API with server-sent events. Usage comes from `message_start` (input
//! and cache counts) and `message_delta` (cumulative output count).

use super::http::{EventParser, client, send_with_retry, sse_chunks};
use super::{Chunk, ChunkStream, LlmError, ModelRequest, Provider};
use crate::config::Endpoint;
use crate::money::Usage;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::VecDeque;

const NAME: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    http: reqwest::Client,
    endpoint: Endpoint,
    api_key: String,
}

impl AnthropicProvider {
    pub fn new(endpoint: Endpoint, api_key: String) -> Self {
        AnthropicProvider {
            http: client(endpoint.timeout_secs),
            endpoint,
            api_key,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}/v1/messages",
            self.endpoint.base_url.trim_end_matches('/')
        )
    }
}

impl Provider for AnthropicProvider {
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
                "system": request.system,
                "messages": [{"role": "user", "content": request.prompt}],
                "stream": true,
            });
            let response = send_with_retry(
                NAME,
                &url,
                &self.endpoint.api_key_env,
                self.endpoint.max_retries,
                || {
                    self.http
                        .post(&url)
                        .header("x-api-key", &self.api_key)
                        .header("anthropic-version", API_VERSION)
                        .json(&body)
                },
            )
            .await?;
            Ok(sse_chunks(NAME, response, SseState::default()))
        })
    }
}

/// Turns Anthropic's SSE events into chunks.
#[derive(Default)]
struct SseState {
    usage: Usage,
    stop_reason: Option<String>,
}

impl EventParser for SseState {
    fn parse(
        &mut self,
        event: &str,
        data: &str,
        out: &mut VecDeque<Chunk>,
    ) -> Result<bool, LlmError> {
        if event == "ping" {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| LlmError::Malformed {
            provider: NAME.into(),
            detail: format!("{event} event is not JSON: {e}"),
        })?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(event);
        match kind {
            "message_start" => {
                let u = v
                    .pointer("/message/usage")
                    .ok_or_else(|| malformed("message_start without usage"))?;
                self.merge_usage(u);
                out.push_back(Chunk::Usage(self.usage));
            }
            "content_block_delta" => {
                if let Some(text) = v.pointer("/delta/text").and_then(Value::as_str) {
                    out.push_back(Chunk::Text(text.to_string()));
                } else if v.pointer("/delta/type").is_none() {
                    return Err(malformed("content_block_delta without a delta"));
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.merge_usage(u);
                    out.push_back(Chunk::Usage(self.usage));
                }
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
            }
            "message_stop" => {
                out.push_back(Chunk::Done {
                    stop_reason: self.stop_reason.clone(),
                });
                return Ok(true);
            }
            "error" => {
                let message = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string();
                return Err(LlmError::Provider {
                    provider: NAME.into(),
                    message,
                });
            }
            "content_block_start" | "content_block_stop" => {}
            other => tracing::debug!("anthropic: ignoring event {other}"),
        }
        Ok(false)
    }
}

impl SseState {
    /// Fields present in a usage object replace the ones seen so far: `message_delta`
    /// repeats the input and cache counts cumulatively (with prompt caching they grow past
    /// the `message_start` figures), so adding them would count twice. When compaction ran,
    /// the top-level figures cover only the last iteration and the bill is the sum of
    /// `iterations`, so that sum is taken instead.
    fn merge_usage(&mut self, u: &Value) {
        if let Some(iterations) = u.get("iterations").and_then(Value::as_array)
            && !iterations.is_empty()
        {
            let mut sum = Usage::default();
            for it in iterations {
                let get = |k: &str| it.get(k).and_then(Value::as_u64).unwrap_or(0);
                sum.input_tokens += get("input_tokens");
                sum.output_tokens += get("output_tokens");
                sum.cache_write_tokens += get("cache_creation_input_tokens");
                sum.cache_read_tokens += get("cache_read_input_tokens");
            }
            self.usage = sum;
            return;
        }
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = get("output_tokens") {
            self.usage.output_tokens = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.usage.cache_write_tokens = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.usage.cache_read_tokens = n;
        }
    }
}

fn malformed(detail: &str) -> LlmError {
    LlmError::Malformed {
        provider: NAME.into(),
        detail: detail.into(),
    }
}
