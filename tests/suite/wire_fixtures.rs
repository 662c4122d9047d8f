//! Recorded real provider streams (`tests/fixtures/wire/`, sources in its `SOURCES.md`)
//! replayed byte for byte through the real providers from a local server. Every stream
//! must parse, and its tokens and cost must be the ones the stream reports, priced by the
//! built-in price table.

use crate::common;

use common::{MockLlm, Scripted};
use ecca::config::{Config, Endpoint};
use ecca::llm::{
    AnthropicProvider, CallFailure, Completion, LlmError, ModelRequest, OpenAiProvider, Purpose,
    complete,
};
use ecca::money::{Micros, Usage};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/wire/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"))
}

/// The stream cut into pieces of about 700 bytes (on character boundaries), so events and
/// even JSON bodies arrive split across reads as they do from a real server.
fn pieces(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in body.chars() {
        current.push(ch);
        if current.len() >= 700 {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn endpoint(url: String) -> Endpoint {
    Endpoint {
        base_url: url,
        api_key_env: "TEST_KEY".into(),
        max_retries: 0,
        timeout_secs: 10,
    }
}

fn request(model: &str) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        purpose: Purpose::Write,
        system: "You answer.".into(),
        prompt: "Hello".into(),
        max_tokens: 1024,
    }
}

enum Wire {
    Anthropic,
    OpenAi,
}

/// Serves `body` once and runs one call through the provider that speaks `wire`.
async fn replay(wire: Wire, body: &str, model: &str) -> Result<Completion, CallFailure> {
    ecca::install_tls_provider();
    let server = MockLlm::start(vec![Scripted::sse(pieces(body))], None).await;
    let request = request(model);
    let result = match wire {
        Wire::Anthropic => {
            let p = AnthropicProvider::new(endpoint(server.url.clone()), "sk-ant-test".into());
            complete(&p, &request, |_| {}).await
        }
        Wire::OpenAi => {
            let p = OpenAiProvider::new(
                endpoint(format!("{}/v1", server.url)),
                Some("sk-test".into()),
            );
            complete(&p, &request, |_| {}).await
        }
    };
    assert_eq!(server.request_count(), 1, "one request per replay");
    result
}

fn cost(model: &str, usage: &Usage) -> Micros {
    Config::default()
        .price_of(model)
        .unwrap_or_else(|| panic!("{model} is in the price table"))
        .cost(usage)
}

fn usage(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_write_tokens: cache_write,
        cache_read_tokens: cache_read,
    }
}

/// One recorded stream that completes: what it must yield.
struct Case {
    path: &'static str,
    wire: fn() -> Wire,
    model: &'static str,
    usage: Usage,
    micros: Micros,
    stop: &'static str,
    text_starts: &'static str,
    text_bytes: usize,
}

fn anthropic() -> Wire {
    Wire::Anthropic
}
fn openai() -> Wire {
    Wire::OpenAi
}

// Prices per token in micro-dollars: claude-sonnet-4-5 3 in, 15 out, 3.75 cache write,
// 0.30 cache read; gpt-4o-mini 0.15 in, 0.60 out, 0.075 cache read; gpt-4o 2.5 in, 10 out.
// A call's cost is rounded up to the next micro-dollar.
const CASES: &[Case] = &[
    Case {
        // ping, plain text; message_delta repeats input 12, output 30.
        path: "anthropic/text_sonnet45_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 12,
            output_tokens: 30,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 12 * 3 + 30 * 15, // 486
        stop: "end_turn",
        text_starts: "Hello! I'm doing well",
        text_bytes: 108,
    },
    Case {
        // thinking block with thinking_delta and signature_delta: only the text block is text.
        path: "anthropic/thinking_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 43,
            output_tokens: 282,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 43 * 3 + 282 * 15, // 4359
        stop: "end_turn",
        text_starts: "Here are the basic steps for safely crossing the street:",
        text_bytes: 1021,
    },
    Case {
        // redacted_thinking block and three pings.
        path: "anthropic/redacted_thinking_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 92,
            output_tokens: 189,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 92 * 3 + 189 * 15, // 3111
        stop: "end_turn",
        text_starts: "I notice that you've sent",
        text_bytes: 359,
    },
    Case {
        // server_tool_use, web_search_tool_result, citations_delta and thinking; the final
        // input (22397) covers the searches' results, not message_start's 2068.
        path: "anthropic/web_search_thinking_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 22_397,
            output_tokens: 637,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 22_397 * 3 + 637 * 15, // 76746
        stop: "end_turn",
        text_starts: "Based on the search results",
        text_bytes: 1346,
    },
    Case {
        // Compaction: the bill is the sum of usage.iterations: input 100 + 181, output
        // 83 + 8, cache read 55096 + 0. (The top-level 181/8/0 is the last iteration only.)
        path: "anthropic/compaction_cache_read_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 281,
            output_tokens: 91,
            cache_write_tokens: 0,
            cache_read_tokens: 55_096,
        },
        // 843 + 1365 + 16528.8 = 18736.8, rounded up
        micros: 18_737,
        stop: "end_turn",
        text_starts: "Hello! 👋",
        text_bytes: 11,
    },
    Case {
        // Prompt caching with code execution: message_start says input 2, cache write 3068;
        // message_delta's cumulative figures (input 6, cache write 3337, cache read 6289,
        // output 198) replace them rather than add to them.
        path: "anthropic/prompt_cache_code_exec_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 6,
            output_tokens: 198,
            cache_write_tokens: 3_337,
            cache_read_tokens: 6_289,
        },
        // 18 + 2970 + 12513.75 + 1886.7 = 17388.45, rounded up
        micros: 17_389,
        stop: "end_turn",
        text_starts: "The sum of the squares of the numbers 1 through 12 is **650**.",
        text_bytes: 62,
    },
    Case {
        // Text then a tool_use block cut off by max_tokens: message_delta carries only
        // output_tokens, the input stays message_start's.
        path: "anthropic/tool_use_max_tokens_stream.sse",
        wire: anthropic,
        model: "claude-sonnet-4-5",
        usage: Usage {
            input_tokens: 450,
            output_tokens: 124,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 450 * 3 + 124 * 15, // 3210
        stop: "max_tokens",
        text_starts: "I'll create a comprehensive tax guide",
        text_bytes: 135,
    },
    Case {
        // usage:null on every chunk, then a choices:[] usage chunk.
        path: "openai/gpt4o_mini_text_stream.sse",
        wire: openai,
        model: "gpt-4o-mini",
        usage: Usage {
            input_tokens: 78,
            output_tokens: 9,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        // 11.7 + 5.4 = 17.1, rounded up
        micros: 18,
        stop: "stop",
        text_starts: "The capital of the UK is London.",
        text_bytes: 32,
    },
    Case {
        // 2024 include_usage final chunk without *_details.
        path: "openai/openai_python_gpt4o_stream.sse",
        wire: openai,
        model: "gpt-4o",
        usage: Usage {
            input_tokens: 14,
            output_tokens: 47,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        micros: 35 + 470, // 14 × 2.5 + 47 × 10
        stop: "stop",
        text_starts: "I'm unable to provide real-time updates",
        text_bytes: 256,
    },
    Case {
        // OpenRouter: ': OPENROUTER PROCESSING' comments; usage on a chunk that still has
        // choices; 679 of the 687 prompt tokens were cached.
        path: "openai/openrouter_cached_reasoning_stream.sse",
        wire: openai,
        model: "gpt-4o-mini",
        usage: Usage {
            input_tokens: 8,
            output_tokens: 187,
            cache_write_tokens: 0,
            cache_read_tokens: 679,
        },
        // 1.2 + 112.2 + 50.925 = 164.325, rounded up
        micros: 165,
        stop: "stop",
        text_starts: "I'm Grok, an AI built by xAI.",
        text_bytes: 286,
    },
    Case {
        // DeepSeek: reasoning_content deltas (not text), usage on the finish chunk with
        // prompt_cache_hit_tokens 0.
        path: "openai/deepseek_reasoning_stream.sse",
        wire: openai,
        model: "gpt-4o-mini",
        usage: Usage {
            input_tokens: 6,
            output_tokens: 212,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        // 0.9 + 127.2 = 128.1, rounded up
        micros: 129,
        stop: "stop",
        text_starts: "Hello there! 😊",
        text_bytes: 43,
    },
    Case {
        // Groq without stream_options: usage only under x_groq.usage.
        path: "openai/groq_no_usage_stream.sse",
        wire: openai,
        model: "gpt-4o-mini",
        usage: Usage {
            input_tokens: 21,
            output_tokens: 988,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        // 3.15 + 592.8 = 595.95, rounded up
        micros: 596,
        stop: "stop",
        text_starts: "<think>\nOkay, so I want to make Uruguayan alfajores.",
        text_bytes: 4048,
    },
    Case {
        // Azure: the FIRST chunk has choices:[] and prompt_filter_results only;
        // content_filter_results on every choice; 64 of the 78 output tokens are reasoning.
        path: "openai/azure_prompt_filter_stream.sse",
        wire: openai,
        model: "gpt-4o-mini",
        usage: Usage {
            input_tokens: 15,
            output_tokens: 78,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        // 2.25 + 46.8 = 49.05, rounded up
        micros: 50,
        stop: "stop",
        text_starts: "Capital of Denmark.",
        text_bytes: 19,
    },
];

#[tokio::test]
async fn every_recorded_stream_parses_with_the_tokens_and_cost_it_reports() {
    for case in CASES {
        let body = fixture(case.path);
        let c = replay((case.wire)(), &body, case.model)
            .await
            .unwrap_or_else(|f| panic!("{} failed: {}", case.path, f.error));
        assert_eq!(c.usage, case.usage, "{}: tokens", case.path);
        assert!(!c.estimated, "{}: the stream reported its usage", case.path);
        assert_eq!(
            cost(case.model, &c.usage),
            case.micros,
            "{}: cost",
            case.path
        );
        assert_eq!(c.stop_reason.as_deref(), Some(case.stop), "{}", case.path);
        assert!(
            c.text.starts_with(case.text_starts),
            "{}: text {:?}",
            case.path,
            &c.text[..c.text.len().min(80)]
        );
        assert_eq!(c.text.len(), case.text_bytes, "{}: text length", case.path);
    }
}

#[tokio::test]
async fn a_reply_cut_off_at_its_limit_is_known_as_truncated() {
    let c = replay(
        Wire::Anthropic,
        &fixture("anthropic/tool_use_max_tokens_stream.sse"),
        "claude-sonnet-4-5",
    )
    .await
    .unwrap();
    assert!(c.truncated(), "stop_reason max_tokens is a truncated reply");
    let c = replay(
        Wire::Anthropic,
        &fixture("anthropic/text_sonnet45_stream.sse"),
        "claude-sonnet-4-5",
    )
    .await
    .unwrap();
    assert!(!c.truncated(), "end_turn is a complete reply");
}

#[tokio::test]
async fn azure_opening_chunk_with_empty_choices_is_not_malformed() {
    let c = replay(
        Wire::OpenAi,
        &fixture("openai/azure_prompt_filter_stream.sse"),
        "gpt-4o-mini",
    )
    .await
    .unwrap_or_else(|f| panic!("the Azure stream was refused: {}", f.error));
    assert_eq!(c.text, "Capital of Denmark.");
    assert_eq!(c.usage, usage(15, 78, 0, 0));
}

#[tokio::test]
async fn an_error_chunk_that_carries_usage_fails_the_call_but_keeps_the_usage() {
    // OpenRouter: finish_reason length, then a chunk with error {400, Token limit reached}
    // AND usage 43 in / 10 out, then [DONE].
    let f = replay(
        Wire::OpenAi,
        &fixture("openai/openrouter_error_with_usage_stream.sse"),
        "gpt-4o-mini",
    )
    .await
    .unwrap_err();
    assert_eq!(
        f.error,
        LlmError::Provider {
            provider: "openai".into(),
            message: "Token limit reached".into()
        }
    );
    assert_eq!(f.usage, usage(43, 10, 0, 0));
    assert!(!f.estimated, "the error chunk reported the usage");
    // 6.45 + 6 = 12.45, rounded up
    assert_eq!(cost("gpt-4o-mini", &f.usage), 13);
}

#[tokio::test]
async fn groq_error_event_without_usage_fails_and_is_charged_at_an_estimate() {
    let f = replay(
        Wire::OpenAi,
        &fixture("openai/groq_error_event_stream.sse"),
        "gpt-4o-mini",
    )
    .await
    .unwrap_err();
    match &f.error {
        LlmError::Provider { provider, message } => {
            assert_eq!(provider, "openai");
            assert!(
                message.starts_with("Tool call validation failed"),
                "{message}"
            );
        }
        other => panic!("expected the provider's error, got {other:?}"),
    }
    assert!(
        f.estimated,
        "no usage was reported, so the charge is an estimate"
    );
    assert_eq!(
        f.usage.input_tokens,
        request("gpt-4o-mini").estimated_prompt_tokens()
    );
    assert!(f.usage.total() > 0, "a call that happened is never free");
}

#[tokio::test]
async fn anthropic_overloaded_mid_stream_keeps_the_usage_already_streamed() {
    // The recorded text stream up to its first text delta, then the recorded mid-stream
    // overloaded error event.
    let text = fixture("anthropic/text_sonnet45_stream.sse");
    let cut_at = text
        .find("event: content_block_delta")
        .expect("the text stream has a delta");
    let first_delta_end = cut_at + text[cut_at..].find("\n\n").unwrap() + 2;
    let body = format!(
        "{}{}",
        &text[..first_delta_end],
        fixture("errors/anthropic_midstream_overloaded_event.sse")
    );
    let f = replay(Wire::Anthropic, &body, "claude-sonnet-4-5")
        .await
        .unwrap_err();
    assert_eq!(
        f.error,
        LlmError::Provider {
            provider: "anthropic".into(),
            message: "Overloaded".into()
        }
    );
    assert!(!f.error.is_permanent(), "overloaded may pass: retryable");
    assert_eq!(f.usage.input_tokens, 12, "message_start's input is charged");
    assert!(f.usage.output_tokens >= 1, "{:?}", f.usage);
}

/// A recorded HTTP error response as the local server's answer.
fn recorded_error(path: &str) -> Scripted {
    let v: serde_json::Value = serde_json::from_str(&fixture(path)).unwrap();
    let status = v["status"].as_u64().unwrap() as u16;
    let mut s = Scripted::status(status, v["body"].as_str().unwrap());
    if let Some(h) = v["headers"].get("retry-after").and_then(|h| h.as_str()) {
        s.headers.push(("retry-after", h.to_string()));
    }
    s
}

#[tokio::test]
async fn recorded_errors_are_retried_only_when_they_can_pass() {
    ecca::install_tls_provider();
    let text = fixture("anthropic/text_sonnet45_stream.sse");
    let provider = |url: &str| {
        let mut e = endpoint(url.to_string());
        e.max_retries = 3;
        AnthropicProvider::new(e, "sk-ant-test".into())
    };
    let req = request("claude-sonnet-4-5");

    // 400 and 401: one request each, a sentence, and permanent.
    for (path, says) in [
        (
            "errors/anthropic_400.json",
            "anthropic answered HTTP 400: This model does not support effort level 'xhigh'.",
        ),
        (
            "errors/anthropic_401.json",
            "anthropic refused the key (HTTP 401)",
        ),
    ] {
        let server = MockLlm::start(
            vec![recorded_error(path), Scripted::sse(pieces(&text))],
            None,
        )
        .await;
        let f = complete(&provider(&server.url), &req, |_| {})
            .await
            .unwrap_err();
        assert!(f.error.to_string().starts_with(says), "{path}: {}", f.error);
        assert!(f.error.is_permanent(), "{path}");
        assert_eq!(server.request_count(), 1, "{path} is not asked again");
    }

    // 429 with retry-after 2: waited out, then the call succeeds.
    let server = MockLlm::start(
        vec![
            recorded_error("errors/anthropic_429.json"),
            Scripted::sse(pieces(&text)),
        ],
        None,
    )
    .await;
    let c = complete(&provider(&server.url), &req, |_| {})
        .await
        .unwrap();
    assert_eq!(c.usage, usage(12, 30, 0, 0));
    {
        let reqs = server.requests.lock().unwrap();
        assert_eq!(reqs.len(), 2);
        let waited = reqs[1].at.duration_since(reqs[0].at);
        assert!(
            waited >= std::time::Duration::from_millis(1_950),
            "honoured retry-after: {waited:?}"
        );
    }

    // 529 overloaded, no retry-after: backed off and asked again.
    let server = MockLlm::start(
        vec![
            recorded_error("errors/anthropic_529.json"),
            Scripted::sse(pieces(&text)),
        ],
        None,
    )
    .await;
    let c = complete(&provider(&server.url), &req, |_| {})
        .await
        .unwrap();
    assert_eq!(c.text.len(), 108);
    assert_eq!(server.request_count(), 2);
}
