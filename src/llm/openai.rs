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

/// Turns OpenAI-compatible chunks into ecca's.
#[derive(Default)]
struct SseState {
    stop_reason: Option<String>,
}

impl EventParser for SseState {
    fn parse(
        &mut self,
        _event: &str,
        data: &str,
        out: &mut VecDeque<Chunk>,
    ) -> Result<bool, LlmError> {
        if data.trim() == "[DONE]" {
            out.push_back(Chunk::Done {
                stop_reason: self.stop_reason.clone(),
            });
            return Ok(true);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| LlmError::Malformed {
            provider: NAME.into(),
            detail: format!("chunk is not JSON: {e}"),
        })?;
        if let Some(err) = v.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(LlmError::Provider {
                provider: NAME.into(),
                message: message.into(),
            });
        }
        if let Some(choice) = v.pointer("/choices/0") {
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
                && !text.is_empty()
            {
                out.push_back(Chunk::Text(text.to_string()));
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop_reason = Some(r.to_string());
            }
        } else if v.get("usage").is_none_or(Value::is_null) {
            return Err(LlmError::Malformed {
                provider: NAME.into(),
                detail: "chunk has neither choices nor usage".into(),
            });
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            let get = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            let cached = get("/prompt_tokens_details/cached_tokens");
            // OpenAI counts cached tokens inside prompt_tokens; ecca prices them apart.
            out.push_back(Chunk::Usage(Usage {
                input_tokens: get("/prompt_tokens").saturating_sub(cached),
                output_tokens: get("/completion_tokens"),
                cache_write_tokens: 0,
                cache_read_tokens: cached,
            }));
        }
        Ok(false)
    }
}
