//! The operator's money: a client's cap and a task's budget changed with a note (stored,
//! audited, effective at once; a raised cap resumes the runs it paused), the month's
//! figures, and the client report whose totals equal the ledger to the micro-dollar.

use crate::common;

use common::{MockLlm, Scripted, anthropic_stream, ecca_command};
use ecca::budgets::month::{MonthInputs, client_months};
use ecca::budgets::report::{client_report, to_csv, to_markdown};
use ecca::config::{Config, ProviderKind};
use ecca::domain::TaskStatus;
use ecca::engine::prompts;
use ecca::llm::{ModelRequest, Purpose, offline_answer};
use ecca::money::Micros;
use ecca::supervisor::{Command, Event, NewTask, Reply, Supervisor, SupervisorOptions};
use std::sync::Arc;

fn hello(client: &str, provider: ProviderKind) -> NewTask {
    NewTask {
        client_id: client.into(),
        title: "Write a Python hello world".into(),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        budget_micros: None,
        provider: Some(provider),
        base_branch: None,
        acceptance: Vec::new(),
        price_micros: None,
    }
}

fn purpose_of(body: &serde_json::Value) -> Purpose {
    match body["system"].as_str().unwrap_or("") {
        s if s == prompts::SYSTEM_PLANNER => Purpose::Plan,
        s if s == prompts::SYSTEM_BATCH_WRITER => Purpose::WriteBatch,
        s if s == prompts::SYSTEM_TESTER => Purpose::Tests,
        s if s == prompts::SYSTEM_EVALUATOR => Purpose::Evaluate,
        _ => Purpose::Write,
    }
}

/// A supervisor whose Anthropic endpoint is a local server answering like a model, with
/// usage reported on every call; offline (simulated) tasks run beside it.
async fn supervisor_with_anthropic(dir: &std::path::Path) -> (Supervisor, MockLlm) {
    let server = MockLlm::start(
        vec![],
        Some(Arc::new(|body: &serde_json::Value| {
            let request = ModelRequest {
                model: body["model"].as_str().unwrap().into(),
                purpose: purpose_of(body),
                system: String::new(),
                prompt: body["messages"][0]["content"].as_str().unwrap().into(),
                max_tokens: 4096,
            };
            Scripted::sse(anthropic_stream(
                &offline_answer(&request),
                1_234,
                321,
                0,
                0,
            ))
        })),
    )
    .await;
    let mut config = Config::default();
    config.providers.anthropic.base_url = Some(server.url.clone());
    config.providers.anthropic.max_retries = Some(0);
    let mut options = SupervisorOptions::new(dir.to_path_buf(), config);
    options.env = Arc::new(|k| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant-test".to_string()));
    let sup = Supervisor::start(options).await.unwrap();
    (sup, server)
}

async fn add_client(sup: &Supervisor, id: &str, cap: Micros) {
    sup.execute(Command::UpsertClient {
        id: id.into(),
        name: format!("{id} Ltd"),
        monthly_budget_micros: cap,
    })
    .await
    .unwrap();
}

async fn start(sup: &Supervisor, task: NewTask) -> String {
    match sup.execute(Command::StartTask { task }).await.unwrap() {
        Reply::TaskStarted { task_id, .. } => task_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_report_equals_the_ledger_to_the_micro_dollar_with_real_and_simulated_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (sup, _server) = supervisor_with_anthropic(dir.path()).await;
    add_client(&sup, "acme", 100_000_000).await;
    add_client(&sup, "other", 100_000_000).await;
    sup.execute(Command::SetClientRetainer {
        client_id: "acme".into(),
        retainer_micros: Some(1_500_000_000),
    })
    .await
    .unwrap();
    let mut priced = hello("acme", ProviderKind::Anthropic);
    priced.price_micros = Some(150_000_000);
    let mut ids = vec![start(&sup, priced).await];
    ids.push(start(&sup, hello("acme", ProviderKind::Anthropic)).await);
    ids.push(start(&sup, hello("acme", ProviderKind::Offline)).await);
    let other = start(&sup, hello("other", ProviderKind::Anthropic)).await;
    for id in ids.iter().chain([&other]) {
        let t = sup.wait_settled(id).await.unwrap();
        assert_eq!(
            t.status,
            TaskStatus::AwaitingApproval,
            "{:?}",
            t.status_reason
        );
    }
    sup.execute(Command::Reject {
        task_id: ids[1].clone(),
        note: "not what | the client asked".into(),
    })
    .await
    .unwrap();
    sup.wait_settled(&ids[1]).await.unwrap();

    let store = sup.store();
    let month = ecca::time::current_month();
    let report = client_report(store, "acme", &month, 50).unwrap();
    // Σ cost_log(client, month), straight from SQL, split by kind.
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let sum = |simulated: i64| -> i64 {
        conn.query_row(
            "SELECT COALESCE(SUM(cost_micros), 0) FROM cost_log WHERE client_id = 'acme' AND month = ?1 AND simulated = ?2",
            rusqlite::params![month, simulated],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (real, simulated) = (sum(0), sum(1));
    assert!(
        real > 0 && simulated > 0,
        "both kinds spent: {real} {simulated}"
    );
    assert_eq!(report.totals.real_micros, real);
    assert_eq!(report.totals.simulated_micros, simulated);
    assert_eq!(
        report.totals.real_micros + report.totals.simulated_micros,
        store.client_month_spend("acme", &month).unwrap(),
        "report = the client's month-to-date"
    );
    assert_eq!(report.totals.ledger_month_micros, real + simulated);
    let per_task: i64 = report.tasks.iter().map(|t| t.task.cost_micros).sum();
    assert_eq!(per_task, real + simulated, "Σ tasks = Σ cost_log");
    let per_model: i64 = report.models.iter().map(|m| m.cost_micros).sum();
    assert_eq!(per_model, real + simulated, "Σ models = Σ cost_log");
    assert_eq!(
        report.tasks.len(),
        3,
        "the other client's task is not in it"
    );
    let offline = report
        .tasks
        .iter()
        .find(|t| t.task.task_id == ids[2])
        .unwrap();
    assert!(offline.task.simulated);
    assert!(
        report.models.iter().any(|m| m.simulated) && report.models.iter().any(|m| !m.simulated)
    );
    // Revenue: the retainer plus the priced task; margin against real spend only.
    assert_eq!(report.totals.revenue_micros, Some(1_650_000_000));
    assert_eq!(report.totals.margin_micros, Some(1_650_000_000 - real));
    assert_eq!(report.decisions.len(), 1);
    assert_eq!(report.decisions[0].decision, "reject");

    // The three formats carry the same totals.
    let md = to_markdown(&report);
    assert!(md.contains(&ecca::money::format_usd(real)), "{md}");
    assert!(md.contains("not what \\| the client asked"), "{md}");
    let csv = to_csv(&report);
    let total_line = csv.lines().find(|l| l.starts_with("total_real,")).unwrap();
    assert!(total_line.contains(&format!(",{real},")), "{total_line}");
    let task_sum: i64 = csv
        .lines()
        .filter(|l| l.starts_with("task,"))
        .map(|l| l.split(',').nth(5).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(task_sum, real + simulated);
    drop(sup);

    // And through the binary, as JSON.
    let out = ecca_command(dir.path())
        .args([
            "report", "--client", "acme", "--month", &month, "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["totals"]["real_micros"], real);
    assert_eq!(json["totals"]["simulated_micros"], simulated);
    let out = ecca_command(dir.path())
        .args(["report", "--client", "acme", "--month", "2026-13"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM"));
}

#[tokio::test]
async fn a_raised_cap_is_audited_and_resumes_the_runs_the_old_cap_paused() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::start(SupervisorOptions::new(
        dir.path().to_path_buf(),
        Config::default(),
    ))
    .await
    .unwrap();
    // A cap too small for the first call: the run pauses on it.
    add_client(&sup, "acme", 1_000).await;
    let mut events = sup.subscribe();
    let id = start(&sup, hello("acme", ProviderKind::Offline)).await;
    let t = sup.wait_settled(&id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Paused, "{:?}", t.status_reason);

    // A change without a note is refused and changes nothing.
    let refused = sup
        .execute(Command::SetClientCap {
            client_id: "acme".into(),
            monthly_budget_micros: 50_000_000,
            note: "  ".into(),
        })
        .await
        .unwrap_err();
    assert!(refused.0.contains("note"), "{}", refused.0);
    assert!(
        sup.store()
            .budget_changes(Some("acme"), None)
            .unwrap()
            .is_empty()
    );

    sup.execute(Command::SetClientCap {
        client_id: "acme".into(),
        monthly_budget_micros: 50_000_000,
        note: "client approved more for November".into(),
    })
    .await
    .unwrap();
    let t = sup.wait_settled(&id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    let changes = sup.store().budget_changes(Some("acme"), None).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].old_micros, changes[0].new_micros),
        (1_000, 50_000_000)
    );
    assert_eq!(changes[0].note, "client approved more for November");
    assert_eq!(
        sup.store()
            .client("acme")
            .unwrap()
            .unwrap()
            .monthly_budget_micros,
        50_000_000
    );
    let mut announced = false;
    while let Ok(Some(d)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await
    {
        if let ecca::supervisor::Delivery::Event(e) = d
            && matches!(&*e, Event::BudgetChanged { client_id, task_id: None, new_micros: 50_000_000, .. } if client_id == "acme")
        {
            announced = true;
            break;
        }
    }
    assert!(announced, "the change was announced to subscribers");
    drop(sup);

    let out = ecca_command(dir.path())
        .args(["audit", "--client", "acme"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("monthly cap $0.001000 -> $50.000000: client approved more for November"),
        "{text}"
    );
}

#[tokio::test]
async fn a_raised_task_budget_is_audited_and_a_budget_failed_task_retries_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::start(SupervisorOptions::new(
        dir.path().to_path_buf(),
        Config::default(),
    ))
    .await
    .unwrap();
    add_client(&sup, "acme", 100_000_000).await;
    let mut task = hello("acme", ProviderKind::Offline);
    task.budget_micros = Some(1_000);
    let id = start(&sup, task).await;
    let t = sup.wait_settled(&id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.status_reason.as_deref(), Some("budget"));
    // A retry on the old budget fails the same way.
    sup.execute(Command::SetTaskBudget {
        task_id: id.clone(),
        budget_micros: 5_000_000,
        note: "the spec grew".into(),
    })
    .await
    .unwrap();
    sup.execute(Command::Retry {
        task_id: id.clone(),
    })
    .await
    .unwrap();
    let t = sup.wait_settled(&id).await.unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    assert_eq!(t.budget_micros, 5_000_000);
    // An ended task's budget cannot change.
    sup.execute(Command::Reject {
        task_id: id.clone(),
        note: "no".into(),
    })
    .await
    .unwrap();
    sup.wait_settled(&id).await.unwrap();
    let err = sup
        .execute(Command::SetTaskBudget {
            task_id: id.clone(),
            budget_micros: 9_000_000,
            note: "late".into(),
        })
        .await
        .unwrap_err();
    assert!(err.0.contains("can no longer change"), "{}", err.0);
    drop(sup);

    let out = ecca_command(dir.path())
        .args(["audit", "--task", &id, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let budget: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tool"] == "budget")
        .collect();
    assert_eq!(budget.len(), 1, "{rows}");
    assert_eq!(
        budget[0]["outcome"],
        "task budget $0.001000 -> $5.000000: the spec grew"
    );
}

#[tokio::test]
async fn the_month_figures_follow_known_rows() {
    use ecca::store::{ClientRecord, CostRow, RunRecord, TaskRecord, WriteOp};
    let dir = tempfile::tempdir().unwrap();
    let store = ecca::store::Store::open(dir.path()).unwrap();
    // 2026-11-22 12:00 UTC; the month has 8 more days after today.
    let now: i64 = 1_795_348_800_000;
    let day: i64 = 86_400_000;
    assert_eq!(ecca::time::month_of(now), "2026-11");
    let mut ops = vec![WriteOp::InsertClient(ClientRecord {
        id: "acme".into(),
        name: "Acme".into(),
        monthly_budget_micros: 10_000_000,
        repo_url: None,
        created_at: now - 30 * day,
    })];
    let task = |id: &str, price: Option<Micros>, status: TaskStatus| TaskRecord {
        id: id.into(),
        client_id: "acme".into(),
        title: format!("task {id}"),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        model_mode: "anthropic".into(),
        status,
        status_reason: None,
        budget_micros: 5_000_000,
        deliverable_url: None,
        iterations: 1,
        quality_score: None,
        tokens_used: 0,
        cost_micros: 0,
        cost_estimated: false,
        model_calls: 0,
        created_at: now - 10 * day,
        updated_at: now,
        completed_at: None,
        base_branch: None,
        acceptance: Vec::new(),
        result_status: None,
        batch_id: None,
        batch_app: None,
        price_micros: price,
        compare_group: None,
    };
    ops.push(WriteOp::InsertTask(Box::new(task(
        "T-0001",
        Some(2_000_000),
        TaskStatus::Delivered,
    ))));
    ops.push(WriteOp::InsertTask(Box::new(task(
        "T-0002",
        None,
        TaskStatus::Failed,
    ))));
    for t in ["T-0001", "T-0002"] {
        ops.push(WriteOp::InsertRun(RunRecord {
            id: format!("{t}/r1"),
            task_id: t.into(),
            attempt: 1,
            status: TaskStatus::Running,
            agent_state: "coding".into(),
            fsm_state: "{}".into(),
            tokens_used: 0,
            cost_micros: 0,
            model_calls: 0,
            owner_pid: None,
            started_at: now - 10 * day,
            updated_at: now,
            finished_at: None,
        }));
    }
    // Real spend: $0.70 a day over the last 7 days (today included) on T-0001, $1.10
    // ten days ago on T-0002, plus $0.50 simulated today.
    let cost = |task: &str, at: i64, micros: Micros, simulated: bool| CostRow {
        at,
        month: ecca::time::month_of(at),
        client_id: "acme".into(),
        task_id: task.into(),
        run_id: format!("{task}/r1"),
        provider: if simulated { "offline" } else { "anthropic" }.into(),
        model: if simulated {
            "offline"
        } else {
            "claude-sonnet-4-5"
        }
        .into(),
        purpose: "write".into(),
        simulated,
        usage: ecca::money::Usage {
            input_tokens: 100,
            output_tokens: 10,
            cache_write_tokens: 0,
            cache_read_tokens: 0,
        },
        cost_micros: micros,
        reserved_micros: micros,
        outcome: "ok".into(),
        estimated: false,
    };
    for d in 0..7 {
        ops.push(WriteOp::Cost(cost("T-0001", now - d * day, 700_000, false)));
    }
    ops.push(WriteOp::Cost(cost(
        "T-0002",
        now - 10 * day,
        1_100_000,
        false,
    )));
    ops.push(WriteOp::Cost(cost("T-0002", now, 500_000, true)));
    store.write(ops).await.unwrap();

    let inputs = MonthInputs {
        month: "2026-11",
        now_ms: now,
        reserved: &|c| if c == "acme" { 42 } else { 0 },
        price_share_warn_percent: 50,
    };
    let months = client_months(&store, &inputs, None).unwrap();
    let m = &months[0];
    assert_eq!(m.spent_real_micros, 7 * 700_000 + 1_100_000);
    assert_eq!(m.spent_simulated_micros, 500_000);
    assert_eq!(m.reserved_micros, 42);
    assert_eq!(m.burn_per_day_micros, 700_000);
    // 8 days left after the 22nd of a 30-day month.
    assert_eq!(m.projected_month_micros, 6_000_000 + 8 * 700_000);
    // $10 cap, $6.50 charged: $3.50 left at $0.70 a day is 5 days: the 27th.
    assert_eq!(m.cap_reached_on.as_deref(), Some("2026-11-27"));
    assert_eq!(m.percent_of_cap(), 65);
    assert!(!m.warned());
    assert_eq!(m.revenue_micros, Some(2_000_000));
    assert_eq!(m.margin_micros, Some(2_000_000 - 6_000_000));
    assert_eq!(m.cost_per_approved_micros, Some(6_000_000));
    let t1 = m.tasks.iter().find(|t| t.task_id == "T-0001").unwrap();
    assert_eq!(t1.cost_micros, 4_900_000);
    assert!(t1.over_price_share, "$4.90 spent on a $2.00 job");
    assert_eq!(t1.attempts, 1);
    let t2 = m.tasks.iter().find(|t| t.task_id == "T-0002").unwrap();
    assert_eq!(t2.cost_micros, 1_600_000);
    assert!(!t2.simulated, "partly real is not simulated");
    assert_eq!(m.by_model[0].model, "claude-sonnet-4-5");
    assert_eq!(m.by_model[0].cost_micros, 6_000_000);
    assert!(
        m.by_model
            .iter()
            .any(|s| s.simulated && s.cost_micros == 500_000)
    );
}
