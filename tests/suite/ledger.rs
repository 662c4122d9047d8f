//! The ledger under load: exact sums, and no call ever started past a cap.

use crate::common;

use common::{MockLlm, Scripted, anthropic_stream, openai_stream};
use ecca::config::{Config, ProviderKind};
use ecca::domain::TaskStatus;
use ecca::engine::prompts;
use ecca::llm::{ModelRequest, Purpose, offline_answer};
use ecca::money::{Micros, Price, Usage};
use ecca::supervisor::{Command, NewTask, Reply, Supervisor, SupervisorOptions};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn small_config(concurrency: usize) -> Config {
    let mut c = Config::parse(
        "[max_tokens]\nplan = 300\nwrite = 300\nwrite_batch = 3000\ntests = 300\nevaluate = 200\n[budgets]\ntask_usd = 5\n",
    )
    .unwrap();
    c.supervisor.concurrency = concurrency;
    c
}

async fn supervisor(dir: &std::path::Path, config: Config) -> Supervisor {
    Supervisor::start(SupervisorOptions::new(dir.to_path_buf(), config))
        .await
        .unwrap()
}

fn hello(client: &str) -> NewTask {
    NewTask {
        client_id: client.into(),
        title: "Write a Python hello world".into(),
        description: String::new(),
        stack: "python".into(),
        source: "batch".into(),
        agent_kind: "builtin".into(),
        budget_micros: None,
        provider: Some(ProviderKind::Offline),
        base_branch: None,
        acceptance: Vec::new(),
        price_micros: None,
    }
}

async fn add_client(sup: &Supervisor, id: &str, cap: Micros) {
    sup.execute(Command::UpsertClient {
        id: id.into(),
        name: id.into(),
        monthly_budget_micros: cap,
    })
    .await
    .unwrap();
}

/// Cost of one offline hello-world run up to the approval gate.
async fn cost_of_one_run() -> Micros {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), small_config(1)).await;
    add_client(&sup, "probe", 1_000_000_000).await;
    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: hello("probe"),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::AwaitingApproval);
    t.cost_micros
}

struct Row {
    cost: Micros,
    reserved: Micros,
}

fn rows(db: &std::path::Path, client: &str) -> Vec<Row> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT cost_micros, reserved_micros FROM cost_log WHERE client_id = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([client], |r| {
        Ok(Row {
            cost: r.get(0)?,
            reserved: r.get(1)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn sum_of_task_costs(db: &std::path::Path, client: &str) -> Micros {
    let conn = Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COALESCE(SUM(cost_micros), 0) FROM code_tasks WHERE client_id = ?1",
        [client],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every call's reservation fitted under the cap together with everything committed before
/// it: had any call started past the cap, some row would break this.
fn assert_no_call_started_past(cap: Micros, rows: &[Row]) {
    let mut committed = 0;
    for (i, r) in rows.iter().enumerate() {
        assert!(r.cost <= r.reserved, "row {i} cost more than it reserved");
        assert!(
            committed + r.reserved <= cap,
            "row {i} started past the cap: {committed} + {} > {cap}",
            r.reserved
        );
        committed += r.cost;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_one_concurrent_runs_never_pass_the_client_cap_and_the_books_agree() {
    let one = cost_of_one_run().await;
    let cap = one * 21 / 2; // about half of the 21 runs fit
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), small_config(21)).await;
    add_client(&sup, "acme", cap).await;
    add_client(&sup, "other", 1_000_000_000).await;

    let mut ids = Vec::new();
    for _ in 0..21 {
        let Reply::TaskStarted { task_id, .. } = sup
            .execute(Command::StartTask {
                task: hello("acme"),
            })
            .await
            .unwrap()
        else {
            panic!()
        };
        ids.push(task_id);
    }
    // Another client's work at the same time must not be touched by acme's cap.
    let Reply::TaskStarted { task_id: other, .. } = sup
        .execute(Command::StartTask {
            task: hello("other"),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    sup.wait_all_settled().await;

    let store = sup.store();
    let mut finished = 0;
    let mut paused = 0;
    for id in &ids {
        let t = store.task(id).unwrap().unwrap();
        match t.status {
            TaskStatus::AwaitingApproval => finished += 1,
            TaskStatus::Paused => {
                paused += 1;
                let reason = t.status_reason.unwrap();
                assert!(
                    reason.contains("client acme would pass its monthly budget"),
                    "{reason}"
                );
                assert!(
                    reason.contains("raise its monthly cap"),
                    "says what to do: {reason}"
                );
            }
            other => panic!("task {id} ended {other}"),
        }
    }
    assert_eq!(
        store.task(&other).unwrap().unwrap().status,
        TaskStatus::AwaitingApproval
    );
    // How many finish depends on scheduling: reservations hold each call's worst case, so
    // a tight cap is reached sooner than actual costs alone would reach it.
    assert!(
        finished >= 1,
        "some runs fit: {finished} finished, {paused} paused"
    );
    assert!(
        paused >= 5,
        "the cap bound: {finished} finished, {paused} paused"
    );

    let db = store.path().to_path_buf();
    let month = ecca::time::current_month();
    let log = store.cost_totals(Some("acme"), None).unwrap();
    let month_to_date = store.client_month_spend("acme", &month).unwrap();
    assert_eq!(
        log.cost_micros,
        sum_of_task_costs(&db, "acme"),
        "cost log = sum over tasks"
    );
    assert_eq!(
        log.cost_micros, month_to_date,
        "cost log = month-to-date spend"
    );
    assert!(month_to_date <= cap, "{month_to_date} spent of {cap}");
    assert!(
        month_to_date >= cap / 3,
        "the cap was used, not refused wholesale: {month_to_date} of {cap}"
    );
    assert_no_call_started_past(cap, &rows(&db, "acme"));

    // Raising the budget and resuming finishes the paused runs; the books still agree.
    add_client(&sup, "acme", one * 40).await;
    for id in &ids {
        if store.task(id).unwrap().unwrap().status == TaskStatus::Paused {
            sup.execute(Command::Resume {
                task_id: id.clone(),
            })
            .await
            .unwrap();
        }
    }
    sup.wait_all_settled().await;
    for id in &ids {
        assert_eq!(
            store.task(id).unwrap().unwrap().status,
            TaskStatus::AwaitingApproval,
            "{id}"
        );
    }
    let log = store.cost_totals(Some("acme"), None).unwrap();
    assert_eq!(log.cost_micros, sum_of_task_costs(&db, "acme"));
    assert_eq!(
        log.cost_micros,
        store.client_month_spend("acme", &month).unwrap()
    );
    assert_eq!(
        log.cost_micros,
        one * 21,
        "each run cost the same, nothing counted twice"
    );
}

#[tokio::test]
async fn a_task_budget_stops_the_run_before_the_call_that_would_pass_it() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), small_config(1)).await;
    add_client(&sup, "acme", 1_000_000_000).await;
    let mut task = hello("acme");
    // The plan reserves about $0.0050 (300 output tokens at $15/MTok plus the prompt) and
    // costs about $0.0015; the write then needs about $0.0051 more than is left.
    task.budget_micros = Some(6_000);
    let Reply::TaskStarted { task_id, .. } =
        sup.execute(Command::StartTask { task }).await.unwrap()
    else {
        panic!()
    };
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.status_reason.as_deref(), Some("budget"));
    assert!(t.cost_micros <= 6_000);
    assert_eq!(t.model_calls, 1, "only the plan was made");
    assert_no_call_started_past(6_000, &rows(sup.store().path(), "acme"));
}

/// model, purpose, input, output, cache write, cache read, cost, simulated, provider
type CostLogRow = (String, String, i64, i64, i64, i64, i64, bool, String);

/// Which call the engine is making, from its system prompt.
fn purpose_of(body: &serde_json::Value) -> Purpose {
    match body["system"].as_str().unwrap_or("") {
        s if s == prompts::SYSTEM_PLANNER => Purpose::Plan,
        s if s == prompts::SYSTEM_BATCH_WRITER => Purpose::WriteBatch,
        s if s == prompts::SYSTEM_TESTER => Purpose::Tests,
        s if s == prompts::SYSTEM_EVALUATOR => Purpose::Evaluate,
        _ => Purpose::Write,
    }
}

#[tokio::test]
async fn a_run_on_anthropic_is_priced_exactly_from_the_reported_usage() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    // The server answers like a model would, reporting distinct usage for every call.
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(move |body: &serde_json::Value| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let request = ModelRequest {
                model: body["model"].as_str().unwrap().into(),
                purpose: purpose_of(body),
                system: String::new(),
                prompt: body["messages"][0]["content"].as_str().unwrap().into(),
                max_tokens: 4096,
            };
            Scripted::sse(anthropic_stream(
                &offline_answer(&request),
                1_000 + n,
                200 + n,
                50,
                300,
            ))
        })),
    )
    .await;
    let mut config = Config::default();
    config.models.provider = ProviderKind::Anthropic;
    config.providers.anthropic.base_url = Some(server.url.clone());
    config.providers.anthropic.max_retries = Some(0);
    let dir = tempfile::tempdir().unwrap();
    let mut options = SupervisorOptions::new(dir.path().to_path_buf(), config);
    options.env = Arc::new(|k| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-test".to_string()));
    let sup = Supervisor::start(options).await.unwrap();
    add_client(&sup, "acme", 100_000_000).await;
    let mut task = hello("acme");
    task.provider = None; // the configured provider
    let Reply::TaskStarted { task_id, .. } =
        sup.execute(Command::StartTask { task }).await.unwrap()
    else {
        panic!()
    };
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    assert_eq!(t.model_mode, "anthropic");

    let conn = Connection::open(sup.store().path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT model, purpose, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_micros, simulated, provider FROM cost_log ORDER BY id")
        .unwrap();
    let rows: Vec<CostLogRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.len() as u64,
        calls.load(Ordering::SeqCst),
        "one cost row per call made"
    );
    let sonnet = Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30);
    let haiku = Price::per_mtok_usd(1.0, 5.0, 1.25, 0.10);
    let mut total = 0;
    for (i, (model, purpose, input, output, cw, cr, cost, simulated, provider)) in
        rows.iter().enumerate()
    {
        let n = i as i64;
        assert_eq!(
            (*input, *output, *cw, *cr),
            (1_000 + n, 200 + n, 50, 300),
            "usage as reported"
        );
        assert!(!simulated);
        assert_eq!(provider, "anthropic");
        let price = if purpose == "evaluate" { haiku } else { sonnet };
        assert_eq!(
            model,
            if purpose == "evaluate" {
                "claude-haiku-4-5"
            } else {
                "claude-sonnet-4-5"
            }
        );
        let usage = Usage {
            input_tokens: *input as u64,
            output_tokens: *output as u64,
            cache_write_tokens: *cw as u64,
            cache_read_tokens: *cr as u64,
        };
        assert_eq!(*cost, price.cost(&usage), "row {i} priced from the table");
        total += cost;
    }
    assert_eq!(t.cost_micros, total);
    assert_eq!(t.model_calls as usize, rows.len());
}

/// A supervisor whose configured provider (`kind`) is the local server at `url`, with a
/// client `acme` ($100 a month), and one hello-world task started on it.
async fn run_on(dir: &std::path::Path, kind: ProviderKind, url: &str) -> (Supervisor, String) {
    let mut config = Config::default();
    config.models.provider = kind;
    match kind {
        ProviderKind::Openai => {
            config.providers.openai.base_url = Some(format!("{url}/v1"));
            config.providers.openai.max_retries = Some(0);
        }
        _ => {
            config.providers.anthropic.base_url = Some(url.to_string());
            config.providers.anthropic.max_retries = Some(0);
        }
    }
    let mut options = SupervisorOptions::new(dir.to_path_buf(), config);
    options.env = Arc::new(|k| {
        (k == "ANTHROPIC_API_KEY" || k == "OPENAI_API_KEY").then(|| "sk-test".to_string())
    });
    let sup = Supervisor::start(options).await.unwrap();
    add_client(&sup, "acme", 100_000_000).await;
    let mut task = hello("acme");
    task.provider = None; // the configured provider
    let Reply::TaskStarted { task_id, .. } =
        sup.execute(Command::StartTask { task }).await.unwrap()
    else {
        panic!()
    };
    (sup, task_id)
}

/// The request the server got, as the model call it stands for.
fn as_request(body: &serde_json::Value) -> ModelRequest {
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    ModelRequest {
        model: body["model"].as_str().unwrap_or("").into(),
        purpose: purpose_of(body),
        system: String::new(),
        prompt: prompt.into(),
        max_tokens: 4096,
    }
}

/// OpenAI-compatible requests carry the system prompt as the first message.
fn openai_purpose(body: &serde_json::Value) -> serde_json::Value {
    let mut b = body.clone();
    b["system"] = body["messages"][0]["content"].clone();
    b
}

#[tokio::test]
async fn a_call_whose_stream_reports_no_usage_is_charged_at_an_estimate_marked_so() {
    // An OpenAI-compatible server that never sends usage (no include_usage support).
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(|body: &serde_json::Value| {
            let body = openai_purpose(body);
            let mut events = openai_stream(&offline_answer(&as_request(&body)), 0, 0, 0);
            events.retain(|e| !e.contains("\"usage\":{"));
            Scripted::sse(events)
        })),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sup, task_id) = run_on(dir.path(), ProviderKind::Openai, &server.url).await;
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    let conn = Connection::open(sup.store().path()).unwrap();
    let rows: Vec<(i64, i64, i64, bool)> = conn
        .prepare(
            "SELECT input_tokens, output_tokens, cost_micros, estimated FROM cost_log ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.len(),
        server.request_count(),
        "every call that happened has a cost row"
    );
    for (input, output, cost, estimated) in &rows {
        assert!(
            estimated,
            "a row without reported usage is marked estimated"
        );
        assert!(
            *input > 0 && *output > 0 && *cost > 0,
            "never free: {rows:?}"
        );
    }
    let total: i64 = rows.iter().map(|r| r.2).sum();
    assert_eq!(t.cost_micros, total, "the task is charged the estimates");
    assert!(t.cost_estimated, "the task's cost is marked as estimated");
    let run = sup.store().latest_run(&task_id).unwrap().unwrap();
    assert!(
        conn.query_row(
            "SELECT cost_estimated FROM runs WHERE id = ?1",
            [&run.id],
            |r| r.get::<_, bool>(0)
        )
        .unwrap(),
        "the run's cost is marked as estimated"
    );
    // `ecca tasks` marks the estimated cost.
    let out = std::process::Command::new(common::ecca_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("tasks")
        .env_remove("ECCA_CONFIG")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with(&task_id))
        .unwrap_or_else(|| panic!("{task_id} is listed: {listing}"));
    assert!(
        line.contains(&format!("~{}", ecca::money::format_usd(total))),
        "{line}"
    );
    assert!(listing.contains("~ estimated cost"), "{listing}");
}

#[test]
fn the_console_marks_an_estimated_cost_in_every_cost_column_and_the_meter() {
    use ecca::console::app::View;
    use ecca::console::keymap::Keymap;
    use ecca::console::theme::Theme;
    use ecca::console::{fixture, render, svg};
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&std::collections::BTreeMap::new()).unwrap();
    for view in [View::Runs, View::Approvals, View::Detail] {
        let mut app = fixture::app(theme.clone(), keymap.clone(), view);
        let plain = svg::text(&render(&app, 160, 48).unwrap());
        assert!(
            !plain.contains("~$"),
            "{view:?} without estimates has no mark"
        );
        for row in &mut app.rows {
            row.cost_estimated = true;
        }
        let marked = svg::text(&render(&app, 160, 48).unwrap());
        assert!(
            marked.contains("~$"),
            "{view:?} marks the estimate:\n{marked}"
        );
    }
}

#[tokio::test]
async fn a_refused_key_fails_the_run_after_one_request() {
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(|_: &serde_json::Value| {
            Scripted::status(
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            )
        })),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sup, task_id) = run_on(dir.path(), ProviderKind::Anthropic, &server.url).await;
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let reason = t.status_reason.unwrap_or_default();
    assert!(reason.contains("refused the key"), "{reason}");
    assert_eq!(
        server.request_count(),
        1,
        "a refused key is not asked again"
    );
}

#[tokio::test]
async fn a_rejected_request_fails_the_run_after_one_request() {
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(|_: &serde_json::Value| {
            Scripted::status(
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#,
            )
        })),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sup, task_id) = run_on(dir.path(), ProviderKind::Anthropic, &server.url).await;
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    let reason = t.status_reason.unwrap_or_default();
    assert!(reason.contains("max_tokens: too large"), "{reason}");
    assert_eq!(
        server.request_count(),
        1,
        "a rejected request is not sent again"
    );
}

/// An Anthropic stream of `text` that stopped at its output limit.
fn cut_off(text: &str) -> Vec<String> {
    anthropic_stream(text, 500, 300, 0, 0)
        .into_iter()
        .map(|e| e.replace("\"end_turn\"", "\"max_tokens\""))
        .collect()
}

#[tokio::test]
async fn a_reply_cut_off_at_its_limit_is_asked_again_with_room_and_noted() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(move |body: &serde_json::Value| {
            let answer = offline_answer(&as_request(body));
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                // The plan, cut off half-way.
                Scripted::sse(cut_off(&answer[..answer.len() / 2]))
            } else {
                Scripted::sse(anthropic_stream(&answer, 500, 300, 0, 0))
            }
        })),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sup, task_id) = run_on(dir.path(), ProviderKind::Anthropic, &server.url).await;
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    let (first, second) = {
        let reqs = server.requests.lock().unwrap();
        (reqs[0].body.clone(), reqs[1].body.clone())
    };
    assert_eq!(purpose_of(&first), Purpose::Plan);
    assert_eq!(
        purpose_of(&second),
        Purpose::Plan,
        "the same call, asked again"
    );
    assert_eq!(
        second["max_tokens"].as_u64().unwrap(),
        2 * first["max_tokens"].as_u64().unwrap(),
        "with twice the room"
    );
    let run = sup.store().latest_run(&task_id).unwrap().unwrap();
    let events = sup.store().run_events(&run.id).unwrap();
    assert!(
        events
            .iter()
            .any(|(kind, payload)| kind == "note" && payload.contains("was cut off")),
        "the timeline says the reply was cut off: {events:?}"
    );
    let conn = Connection::open(sup.store().path()).unwrap();
    let outcomes: Vec<String> = conn
        .prepare("SELECT outcome FROM cost_log ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(outcomes[0], "truncated", "the cut-off call is charged");
    assert_eq!(outcomes.len(), server.request_count());
}

#[tokio::test]
async fn a_reply_that_stays_cut_off_fails_the_run_clearly() {
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(|body: &serde_json::Value| {
            Scripted::sse(cut_off(&offline_answer(&as_request(body))))
        })),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sup, task_id) = run_on(dir.path(), ProviderKind::Anthropic, &server.url).await;
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::Failed,
        "a cut-off reply is never accepted"
    );
    let reason = t.status_reason.unwrap_or_default();
    assert!(reason.contains("cut off"), "{reason}");
    assert!(reason.contains("[max_tokens]"), "says what to do: {reason}");
    assert_eq!(
        server.request_count(),
        2,
        "asked once more with room, then stopped"
    );
}
