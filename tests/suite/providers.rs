//! The real providers against a local server that speaks their streaming wire formats.

use crate::common;

use common::{MockLlm, Scripted, anthropic_event, anthropic_stream, openai_stream};
use ecca::config::Endpoint;
use ecca::llm::{AnthropicProvider, LlmError, ModelRequest, OpenAiProvider, Purpose, complete};
use ecca::money::Usage;
use serde_json::json;
use std::time::{Duration, Instant};

fn endpoint(url: &str, retries: u32) -> Endpoint {
    Endpoint {
        base_url: url.into(),
        api_key_env: "TEST_KEY".into(),
        max_retries: retries,
        timeout_secs: 10,
    }
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "claude-sonnet-4-5".into(),
        purpose: Purpose::Write,
        system: "You write code.".into(),
        prompt: "Write a Python hello world".into(),
        max_tokens: 512,
    }
}

fn anthropic(url: &str, retries: u32) -> AnthropicProvider {
    ecca::install_tls_provider();
    AnthropicProvider::new(endpoint(url, retries), "sk-ant-test-1234".into())
}

fn openai(url: &str, retries: u32) -> OpenAiProvider {
    ecca::install_tls_provider();
    OpenAiProvider::new(
        endpoint(&format!("{url}/v1"), retries),
        Some("sk-oa-test-5678".into()),
    )
}

#[tokio::test]
async fn anthropic_streams_text_and_reports_all_four_token_counts() {
    let server = MockLlm::start(
        vec![Scripted::sse(anthropic_stream(
            "print('hi')\nprint('there')\n",
            25,
            12,
            10,
            5,
        ))],
        None,
    )
    .await;
    let provider = anthropic(&server.url, 0);
    let mut deltas = Vec::new();
    let c = complete(&provider, &request(), |t| deltas.push(t.to_string()))
        .await
        .unwrap();
    assert_eq!(c.text, "print('hi')\nprint('there')\n");
    assert_eq!(
        deltas,
        ["print('hi')\n", "print('there')\n"],
        "text arrives as it streams"
    );
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 25,
            output_tokens: 12,
            cache_write_tokens: 10,
            cache_read_tokens: 5
        }
    );
    assert_eq!(c.stop_reason.as_deref(), Some("end_turn"));
    let req = &server.requests.lock().unwrap()[0];
    assert_eq!(req.headers["x-api-key"], "sk-ant-test-1234");
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["model"], "claude-sonnet-4-5");
    assert_eq!(req.body["max_tokens"], 512);
    assert_eq!(req.body["system"], "You write code.");
    assert_eq!(
        req.body["messages"][0]["content"],
        "Write a Python hello world"
    );
}

#[tokio::test]
async fn anthropic_429_waits_for_retry_after_then_succeeds() {
    let mut limited = Scripted::status(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
    );
    limited.headers.push(("retry-after", "1".into()));
    let server = MockLlm::start(
        vec![limited, Scripted::sse(anthropic_stream("ok\n", 3, 2, 0, 0))],
        None,
    )
    .await;
    let provider = anthropic(&server.url, 3);
    let started = Instant::now();
    let c = complete(&provider, &request(), |_| {}).await.unwrap();
    assert_eq!(c.text, "ok\n");
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "honoured retry-after: waited {waited:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn anthropic_overloaded_529_backs_off_and_gives_up_after_the_retries() {
    let overloaded = || {
        Scripted::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
    };
    let server = MockLlm::start(vec![overloaded(), overloaded(), overloaded()], None).await;
    let provider = anthropic(&server.url, 2);
    let err = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        err.error,
        LlmError::Exhausted {
            provider: "anthropic".into(),
            attempts: 3,
            status: 529
        }
    );
    assert!(err.error.to_string().contains("try again later"));
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(450),
        "backoff before the first retry"
    );
    assert!(
        reqs[2].at.duration_since(reqs[1].at) >= Duration::from_millis(950),
        "backoff doubles"
    );
}

#[tokio::test]
async fn anthropic_stream_cut_mid_message_keeps_the_usage_seen() {
    let mut events = anthropic_stream("partial answer that goes on\n", 40, 99, 0, 0);
    events.truncate(4); // message_start, block start, ping, first delta
    let server = MockLlm::start(
        vec![Scripted {
            abort: true,
            hang: false,
            ..Scripted::sse(events)
        }],
        None,
    )
    .await;
    let provider = anthropic(&server.url, 0);
    let err = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        err.error,
        LlmError::Cut {
            provider: "anthropic".into()
        }
    );
    assert_eq!(
        err.usage.input_tokens, 40,
        "input tokens from message_start are charged"
    );
    assert!(
        err.usage.output_tokens >= 7,
        "output already streamed is charged: {:?}",
        err.usage
    );
}

#[tokio::test]
async fn anthropic_stream_ending_without_message_stop_is_a_cut() {
    let mut events = anthropic_stream("abc\n", 5, 3, 0, 0);
    events.pop();
    let server = MockLlm::start(vec![Scripted::sse(events)], None).await;
    let err = complete(&anthropic(&server.url, 0), &request(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(
        err.error,
        LlmError::Cut {
            provider: "anthropic".into()
        }
    );
    assert_eq!(err.usage.output_tokens, 3);
}

#[tokio::test]
async fn anthropic_malformed_event_is_an_error_that_names_it() {
    let mut events = anthropic_stream("abc\n", 5, 3, 0, 0);
    events.insert(
        3,
        "event: content_block_delta\ndata: {not json\n\n".to_string(),
    );
    let server = MockLlm::start(vec![Scripted::sse(events)], None).await;
    let err = complete(&anthropic(&server.url, 0), &request(), |_| {})
        .await
        .unwrap_err();
    match &err.error {
        LlmError::Malformed { provider, detail } => {
            assert_eq!(provider, "anthropic");
            assert!(detail.contains("content_block_delta"), "{detail}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    assert_eq!(err.usage.input_tokens, 5);
}

#[tokio::test]
async fn anthropic_error_event_and_http_errors_become_sentences() {
    let mut events = anthropic_stream("abc\n", 5, 3, 0, 0);
    events.truncate(2);
    events.push(anthropic_event(
        "error",
        json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
    ));
    let server = MockLlm::start(
        vec![
            Scripted::sse(events),
            Scripted::status(401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
            Scripted::status(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#),
        ],
        None,
    )
    .await;
    let provider = anthropic(&server.url, 0);
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        e.error,
        LlmError::Provider {
            provider: "anthropic".into(),
            message: "Overloaded".into()
        }
    );
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        e.error.to_string(),
        "anthropic refused the key (HTTP 401); set a valid key in TEST_KEY"
    );
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        e.error.to_string(),
        "anthropic answered HTTP 400: max_tokens: too large"
    );
}

#[tokio::test]
async fn openai_streams_text_and_prices_cached_tokens_apart() {
    let server = MockLlm::start(
        vec![Scripted::sse(openai_stream("a\nb\n", 100, 20, 60))],
        None,
    )
    .await;
    let provider = openai(&server.url, 0);
    let mut deltas = 0;
    let c = complete(&provider, &request(), |_| deltas += 1)
        .await
        .unwrap();
    assert_eq!(c.text, "a\nb\n");
    assert_eq!(deltas, 2);
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 40,
            output_tokens: 20,
            cache_write_tokens: 0,
            cache_read_tokens: 60
        }
    );
    assert_eq!(c.stop_reason.as_deref(), Some("stop"));
    let req = &server.requests.lock().unwrap()[0];
    assert_eq!(req.headers["authorization"], "Bearer sk-oa-test-5678");
    assert_eq!(req.body["stream_options"]["include_usage"], true);
    assert_eq!(req.body["messages"][0]["role"], "system");
    assert_eq!(
        req.body["messages"][1]["content"],
        "Write a Python hello world"
    );
}

#[tokio::test]
async fn openai_429_retry_after_cut_and_malformed() {
    let mut limited = Scripted::status(
        429,
        r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
    );
    limited.headers.push(("retry-after", "1".into()));
    let mut cut = openai_stream("never finished\n", 10, 5, 0);
    cut.truncate(2);
    let mut malformed = openai_stream("x\n", 10, 5, 0);
    malformed.insert(1, "data: {\"choices\": [\n\n".to_string());
    let server = MockLlm::start(
        vec![
            limited,
            Scripted::sse(openai_stream("ok\n", 10, 5, 0)),
            Scripted {
                abort: true,
                hang: false,
                ..Scripted::sse(cut)
            },
            Scripted::sse(malformed),
        ],
        None,
    )
    .await;
    let provider = openai(&server.url, 2);
    let c = complete(&provider, &request(), |_| {}).await.unwrap();
    assert_eq!((c.text.as_str(), c.usage.output_tokens), ("ok\n", 5));
    {
        let reqs = server.requests.lock().unwrap();
        assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950));
    }
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(
        e.error,
        LlmError::Cut {
            provider: "openai".into()
        }
    );
    assert!(
        e.usage.output_tokens >= 4,
        "streamed text is charged: {:?}",
        e.usage
    );
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert!(
        matches!(e.error, LlmError::Malformed { .. }),
        "{:?}",
        e.error
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_refused_in_one_sentence() {
    // Port 9 on loopback: nothing listens there.
    let err = ecca::llm::preflight("anthropic", "http://127.0.0.1:9")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("anthropic could not be reached at http://127.0.0.1:9"),
        "{text}"
    );
    assert!(
        text.ends_with("check the base URL and the network"),
        "{text}"
    );
}

#[tokio::test]
async fn openai_compatible_cache_writes_are_priced_as_cache_writes() {
    // LiteLLM's OpenAI-compatible endpoint in front of Claude: prompt_tokens (1000) counts
    // the 200 tokens written to the cache and the 300 read from it.
    let mut events = openai_stream("ok\n", 1_000, 50, 300);
    let usage_at = events.len() - 2;
    events[usage_at] = format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,"prompt_tokens_details":{"cached_tokens":300,"cache_write_tokens":200}}})
    );
    let server = MockLlm::start(vec![Scripted::sse(events)], None).await;
    let c = complete(&openai(&server.url, 0), &request(), |_| {})
        .await
        .unwrap();
    let usage = Usage {
        input_tokens: 500,
        output_tokens: 50,
        cache_write_tokens: 200,
        cache_read_tokens: 300,
    };
    assert_eq!(c.usage, usage);
    let sonnet = ecca::money::Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30);
    // 500 × 3 + 50 × 15 + 200 × 3.75 + 300 × 0.3 = 1500 + 750 + 750 + 90
    assert_eq!(sonnet.cost(&c.usage), 3_090);
}

#[tokio::test]
async fn request_timeout_and_conflict_are_retried_but_bad_requests_are_not() {
    let server = MockLlm::start(
        vec![
            Scripted::status(408, r#"{"error":{"message":"request timeout"}}"#),
            Scripted::status(409, r#"{"error":{"message":"conflict"}}"#),
            Scripted::sse(openai_stream("ok\n", 10, 5, 0)),
            Scripted::status(400, r#"{"error":{"message":"bad request"}}"#),
            Scripted::sse(openai_stream("never asked\n", 10, 5, 0)),
        ],
        None,
    )
    .await;
    let provider = openai(&server.url, 3);
    let c = complete(&provider, &request(), |_| {}).await.unwrap();
    assert_eq!(c.text, "ok\n");
    assert_eq!(server.request_count(), 3, "408 and 409 were asked again");
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert_eq!(e.error.to_string(), "openai answered HTTP 400: bad request");
    assert!(e.error.is_permanent());
    assert_eq!(server.request_count(), 4, "400 was not asked again");
}

#[tokio::test]
async fn a_connection_refused_is_retried() {
    // Nothing listens on a port just freed; the provider tries again before giving up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let provider = anthropic(&format!("http://127.0.0.1:{port}"), 1);
    let started = Instant::now();
    let e = complete(&provider, &request(), |_| {}).await.unwrap_err();
    assert!(
        matches!(e.error, LlmError::Unreachable { .. }),
        "{:?}",
        e.error
    );
    assert!(!e.error.is_permanent());
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "waited the backoff before the second try"
    );
}

#[tokio::test]
async fn openai_finish_reason_length_is_a_truncated_reply() {
    let events: Vec<String> = openai_stream("def f(:\n", 10, 512, 0)
        .into_iter()
        .map(|e| e.replace("\"finish_reason\":\"stop\"", "\"finish_reason\":\"length\""))
        .collect();
    let server = MockLlm::start(vec![Scripted::sse(events)], None).await;
    let c = complete(&openai(&server.url, 0), &request(), |_| {})
        .await
        .unwrap();
    assert_eq!(c.stop_reason.as_deref(), Some("length"));
    assert!(
        c.truncated(),
        "a reply that ran out of room is known as cut off"
    );
}

/// Text of `lines` lines of 60 bytes each: 20 tokens a line at ecca's high estimate.
fn long_text(lines: usize) -> String {
    format!("{}\n", "x".repeat(59)).repeat(lines)
}

/// An OpenRouter-style failure: text streams, then one chunk reports the usage billed so
/// far together with an error. The reported output count stands; the text is not estimated
/// again on top of it.
#[tokio::test]
async fn an_error_chunk_with_usage_after_the_text_is_charged_as_reported() {
    let mut events = openai_stream(&long_text(50), 40, 120, 0);
    events.truncate(events.len() - 3); // no finish, no usage chunk, no [DONE]
    events.push(format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"error"}],
            "usage":{"prompt_tokens":40,"completion_tokens":120,"total_tokens":160},
            "error":{"code":502,"message":"upstream provider died"}})
    ));
    let server = MockLlm::start(vec![Scripted::sse(events)], None).await;
    let mut request = request();
    request.max_tokens = 4096;
    let f = complete(&openai(&server.url, 0), &request, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&f.error, LlmError::Provider { message, .. } if message.contains("upstream provider died")),
        "{:?}",
        f.error
    );
    assert_eq!(
        (f.usage.input_tokens, f.usage.output_tokens),
        (40, 120),
        "the provider's own count, not 3000 bytes / 3"
    );
    assert!(!f.estimated, "nothing was estimated");
}

/// Text that arrives after the last usage report is still charged at an estimate.
#[tokio::test]
async fn text_after_the_last_usage_report_is_topped_up_when_the_stream_breaks() {
    let mut events = vec![format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}],
            "usage":{"prompt_tokens":40,"completion_tokens":1,"total_tokens":41}})
    )];
    events.extend(
        openai_stream(&long_text(50), 40, 120, 0)
            .into_iter()
            .skip(1)
            .take(50),
    );
    let server = MockLlm::start(
        vec![Scripted {
            abort: true,
            hang: false,
            ..Scripted::sse(events)
        }],
        None,
    )
    .await;
    let mut request = request();
    request.max_tokens = 4096;
    let f = complete(&openai(&server.url, 0), &request, |_| {})
        .await
        .unwrap_err();
    assert_eq!(f.usage.input_tokens, 40, "the reported prompt count stands");
    assert_eq!(
        f.usage.output_tokens, 1000,
        "3000 bytes of text at 3 a token"
    );
    assert!(f.estimated);
}

/// Output that was never reported is estimated, but never above the `max_tokens` the call
/// asked for: that is all a provider can bill, and what the reservation was made for.
#[tokio::test]
async fn an_estimated_output_never_exceeds_the_calls_max_tokens() {
    let mut request = request();
    request.max_tokens = 50;
    let usage = ecca::llm::estimate_usage(&request, &long_text(50));
    assert_eq!(usage.output_tokens, 50, "estimate_usage is capped");

    // A reply that reports no usage at all.
    let mut no_usage = openai_stream(&long_text(50), 40, 120, 0);
    no_usage.remove(no_usage.len() - 2);
    // A stream that breaks after the text, before any usage.
    let mut cut = openai_stream(&long_text(50), 40, 120, 0);
    cut.truncate(cut.len() - 3);
    let server = MockLlm::start(
        vec![
            Scripted::sse(no_usage),
            Scripted {
                abort: true,
                hang: false,
                ..Scripted::sse(cut)
            },
        ],
        None,
    )
    .await;
    let provider = openai(&server.url, 0);
    let c = complete(&provider, &request, |_| {}).await.unwrap();
    assert!(c.estimated);
    assert_eq!(c.usage.output_tokens, 50, "a whole reply: {:?}", c.usage);
    let f = complete(&provider, &request, |_| {}).await.unwrap_err();
    assert!(f.estimated);
    assert_eq!(f.usage.output_tokens, 50, "a broken stream: {:?}", f.usage);
}

/// A stop given while a cut-off reply is being settled ends the run there;
/// the second, roomier ask is neither sent nor reserved nor charged. The store is held
/// locked from the moment the first request arrives, so the settlement of the cut-off
/// call waits on it while the stop is given; the lock is let go only after the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_a_cut_off_reply_is_settled_does_not_ask_again() {
    use ecca::config::{Config, ProviderKind};
    use ecca::domain::TaskStatus;
    use ecca::supervisor::{Command, Delivery, NewTask, Reply, Supervisor, SupervisorOptions};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let db: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::new(Mutex::new(None));
    let lock: Arc<Mutex<Option<rusqlite::Connection>>> = Arc::new(Mutex::new(None));
    let calls = Arc::new(AtomicU64::new(0));
    let reply = "def hello():\n    print('hi')\n";
    let server = {
        let (db, lock, calls) = (db.clone(), lock.clone(), calls.clone());
        MockLlm::start(
            vec![],
            Some(Arc::new(move |_: &serde_json::Value| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let path = db.lock().unwrap().clone().unwrap();
                    let conn = rusqlite::Connection::open(path).unwrap();
                    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
                    *lock.lock().unwrap() = Some(conn);
                }
                Scripted::sse(
                    anthropic_stream(reply, 500, 300, 0, 0)
                        .into_iter()
                        .map(|e| e.replace("\"end_turn\"", "\"max_tokens\""))
                        .collect(),
                )
            })),
        )
        .await
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.models.provider = ProviderKind::Anthropic;
    config.providers.anthropic.base_url = Some(server.url.clone());
    config.providers.anthropic.max_retries = Some(0);
    let mut options = SupervisorOptions::new(dir.path().to_path_buf(), config);
    options.env = Arc::new(|k| (k == "ANTHROPIC_API_KEY").then(|| "sk-test".to_string()));
    let sup = Supervisor::start(options).await.unwrap();
    *db.lock().unwrap() = Some(sup.store().path().to_path_buf());
    sup.execute(Command::UpsertClient {
        id: "acme".into(),
        name: "acme".into(),
        monthly_budget_micros: 100_000_000,
    })
    .await
    .unwrap();
    let mut events = sup.subscribe();
    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: NewTask {
                client_id: "acme".into(),
                title: "Write a Python hello world".into(),
                description: String::new(),
                stack: "python".into(),
                source: "batch".into(),
                agent_kind: "builtin".into(),
                budget_micros: None,
                provider: None,
                base_branch: None,
                price_micros: None,
                acceptance: Vec::new(),
            },
        })
        .await
        .unwrap()
    else {
        panic!("the task did not start");
    };
    // The whole cut-off reply has streamed: the call is done and its settlement waits on
    // the held store.
    let mut streamed = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while streamed != reply {
        assert!(
            Instant::now() < deadline,
            "the reply never streamed: {streamed:?}"
        );
        if let Ok(Some(Delivery::Event(e))) =
            tokio::time::timeout(Duration::from_secs(1), events.next()).await
        {
            for (_, text) in e.streamed() {
                streamed.push_str(text);
            }
        }
    }
    // Reading the end of the stream after its last text takes the driver no time at all;
    // this only gives a loaded machine room to get there before the stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sup.execute(Command::Cancel {
        task_id: task_id.clone(),
    })
    .await
    .unwrap();
    let held = lock.lock().unwrap().take();
    if let Some(conn) = held {
        conn.execute_batch("COMMIT").unwrap();
    }
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled, "{:?}", t.status_reason);
    let conn = rusqlite::Connection::open(sup.store().path()).unwrap();
    let outcomes: Vec<String> = conn
        .prepare("SELECT outcome FROM cost_log ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(outcomes.len(), 1, "one call, charged once: {outcomes:?}");
    assert_eq!(server.request_count(), 1, "the second ask never went out");
}
