//! Batches end to end: the 21-app example manifest to the approval gate with the offline
//! model (through the real binary), the forecast against the actual, retry of failed apps,
//! cancel, the batch cap, and an over-budget launch refused without a trace.

use crate::common;

use common::ecca_command;
use ecca::batch::forecast::forecast;
use ecca::batch::manifest;
use ecca::config::{Config, ProviderKind};
use ecca::domain::TaskStatus;
use ecca::supervisor::{Command, NewBatch, Reply, Supervisor, SupervisorOptions};

const EXAMPLE: &str = include_str!("../../examples/rork-batch.toml");

async fn supervisor(dir: &std::path::Path) -> Supervisor {
    let sup = Supervisor::start(SupervisorOptions::new(dir.to_path_buf(), Config::default()))
        .await
        .unwrap();
    sup.execute(Command::UpsertClient {
        id: "rork".into(),
        name: "Rork".into(),
        monthly_budget_micros: 200_000_000,
    })
    .await
    .unwrap();
    sup
}

fn batch(manifest: &str) -> Command {
    Command::StartBatch {
        batch: Box::new(NewBatch {
            manifest: manifest.into(),
            source: "test.toml".into(),
            concurrency: None,
            confirmed_over_budget: false,
            provider: Some(ProviderKind::Offline),
        }),
    }
}

/// Launches and waits until the batch is no longer running.
async fn run_batch(sup: &Supervisor, command: Command) -> (String, Vec<String>) {
    let Reply::BatchStarted { batch_id, task_ids } = sup.execute(command).await.unwrap() else {
        panic!("not a batch reply")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let b = sup.store().batch(&batch_id).unwrap().unwrap();
        if b.status != "running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "batch {batch_id} never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sup.wait_all_settled().await;
    (batch_id, task_ids)
}

fn small(apps: usize, extra: &str) -> String {
    let mut m = format!("[batch]\nname = \"small\"\nclient = \"rork\"\nconcurrency = 1\n{extra}\n");
    for i in 0..apps {
        m.push_str(&format!(
            "[[apps]]\nname = \"app-{i}\"\ndescription = \"A counter app number {i} with a reset button\"\n"
        ));
    }
    m
}

#[test]
fn the_example_batch_of_21_apps_reaches_the_approval_gate_headless() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let out = ecca_command(d).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&[
        "clients",
        "add",
        "rork",
        "--name",
        "Rork",
        "--budget-usd",
        "200",
    ]);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rork-batch.toml");
    let plan = ok(&["batch", "plan", example, "--dry-run"]);
    assert!(
        plan.contains("no history: estimate from the price table only"),
        "{plan}"
    );
    assert!(
        plan.contains("habit-tracker") && plan.contains("TOTAL"),
        "{plan}"
    );
    let run = ok(&["batch", "run", example, "--dry-run", "--concurrency", "3"]);
    assert!(run.contains("21 app(s): 21 awaiting approval"), "{run}");
    let status = ok(&["batch", "status", "B-0001", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(doc["batch"]["status"], "finished");
    assert_eq!(doc["batch"]["concurrency"], 3);
    let apps = doc["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 21);
    for a in apps {
        assert_eq!(a["task"]["status"], "awaiting_approval", "{a}");
        assert_eq!(a["task"]["source"], "batch");
        assert_eq!(a["task"]["stack"], "react-native");
        assert!(a["task"]["cost_micros"].as_i64().unwrap() > 0);
    }
    let sum: i64 = apps
        .iter()
        .map(|a| a["task"]["cost_micros"].as_i64().unwrap())
        .sum();
    assert_eq!(doc["cost_micros"], sum);
    // The apps are ordinary tasks: each is approved one by one, never in bulk.
    let tasks = ok(&["tasks", "--json"]);
    let tasks: serde_json::Value = serde_json::from_str(&tasks).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 21);
}

#[tokio::test]
async fn with_history_the_forecast_holds_the_actual() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path()).await;
    // The first batch is the history.
    run_batch(&sup, batch(EXAMPLE)).await;
    let m = manifest::parse(EXAMPLE, "example").unwrap();
    let f = forecast(
        sup.store(),
        sup.config(),
        &m,
        "offline",
        &ecca::time::current_month(),
    )
    .unwrap();
    assert!(f.basis.contains("calibrated on 21"), "{}", f.basis);
    let (batch_id, _) = run_batch(&sup, batch(EXAMPLE)).await;
    let tasks = sup.store().batch_tasks(&batch_id).unwrap();
    let actual: i64 = tasks.iter().map(|t| t.cost_micros).sum();
    let mut inside = 0;
    for t in &tasks {
        let a = f
            .apps
            .iter()
            .find(|a| Some(&a.name) == t.batch_app.as_ref())
            .unwrap();
        let ok = a.low_micros <= t.cost_micros && t.cost_micros <= a.high_micros;
        println!(
            "{:<20} low {:>6} expected {:>6} high {:>6} actual {:>6} {}",
            a.name,
            a.low_micros,
            a.expected_micros,
            a.high_micros,
            t.cost_micros,
            if ok { "in" } else { "OUT" }
        );
        inside += usize::from(ok);
    }
    let error = (f.expected_micros - actual).abs() as f64 / actual as f64;
    println!(
        "expected {} actual {actual} error {:.1}%",
        f.expected_micros,
        error * 100.0
    );
    assert!(
        error <= 0.25,
        "expected {} vs actual {actual}",
        f.expected_micros
    );
    assert!(inside >= 19, "only {inside} of 21 apps inside their range");
}

#[tokio::test]
async fn failed_apps_retry_and_cancel_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path()).await;
    // Budgets too small for the first call: every app fails on its budget.
    let m = small(3, "").replace(
        "with a reset button\"\n",
        "with a reset button\"\nbudget_usd = \"0.0001\"\n",
    );
    let (batch_id, ids) = run_batch(&sup, batch(&m)).await;
    for id in &ids {
        let t = sup.store().task(id).unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Failed, "{id}");
        sup.execute(Command::SetTaskBudget {
            task_id: id.clone(),
            budget_micros: 2_000_000,
            note: "too tight".into(),
        })
        .await
        .unwrap();
    }
    let (again, retried) = run_batch(
        &sup,
        Command::RetryBatch {
            batch_id: batch_id.clone(),
        },
    )
    .await;
    assert_eq!(again, batch_id);
    assert_eq!(retried, ids);
    for id in &ids {
        let t = sup.store().task(id).unwrap().unwrap();
        assert_eq!(
            t.status,
            TaskStatus::AwaitingApproval,
            "{id}: {:?}",
            t.status_reason
        );
        assert_eq!(sup.store().latest_run(id).unwrap().unwrap().attempt, 2);
    }
    let err = sup
        .execute(Command::RetryBatch {
            batch_id: batch_id.clone(),
        })
        .await
        .unwrap_err();
    assert!(err.0.contains("no failed or cancelled app"), "{}", err.0);

    // Cancel a fresh batch at once: nothing is left working or pending.
    let Reply::BatchStarted {
        batch_id: b2,
        task_ids,
    } = sup.execute(batch(&small(6, ""))).await.unwrap()
    else {
        panic!()
    };
    sup.execute(Command::CancelBatch {
        batch_id: b2.clone(),
    })
    .await
    .unwrap();
    sup.wait_all_settled().await;
    assert_eq!(sup.active_count(), 0);
    assert_eq!(sup.store().batch(&b2).unwrap().unwrap().status, "cancelled");
    for id in &task_ids {
        let t = sup.store().task(id).unwrap().unwrap();
        assert_eq!(
            t.status,
            TaskStatus::Cancelled,
            "{id}: {:?}",
            t.status_reason
        );
    }
}

#[tokio::test]
async fn the_batch_cap_stops_starting_apps_and_an_over_budget_launch_needs_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path()).await;
    // One offline app costs about $0.004: a cap of $0.001 is reached by the first. The
    // forecast passes the cap, so the launch is confirmed.
    let (_, ids) = run_batch(&sup, confirmed(&small(4, "budget_usd = \"0.001\""))).await;
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| sup.store().task(id).unwrap().unwrap())
        .collect();
    assert_eq!(tasks[0].status, TaskStatus::AwaitingApproval);
    for t in &tasks[1..] {
        assert_eq!(t.status, TaskStatus::Failed, "{}", t.id);
        assert_eq!(
            t.status_reason.as_deref(),
            Some(ecca::supervisor::BATCH_CAP_REASON)
        );
    }

    // A client with almost nothing left: refused, and nothing is stored.
    sup.execute(Command::UpsertClient {
        id: "tight".into(),
        name: "Tight".into(),
        monthly_budget_micros: 10_000,
    })
    .await
    .unwrap();
    let before = sup.store().batches().unwrap().len();
    let tasks_before = sup.store().tasks(1000).unwrap().len();
    let m = small(5, "").replace("client = \"rork\"", "client = \"tight\"");
    let err = sup.execute(batch(&m)).await.unwrap_err();
    assert!(
        err.0.contains("was not launched") && err.0.contains("left in the client's month"),
        "{}",
        err.0
    );
    assert_eq!(sup.store().batches().unwrap().len(), before);
    assert_eq!(sup.store().tasks(1000).unwrap().len(), tasks_before);
    // Confirmed, it launches; the ledger still refuses calls past the cap, so apps pause.
    let (b, ids) = run_batch(&sup, confirmed(&m)).await;
    assert_eq!(sup.store().batch(&b).unwrap().unwrap().status, "finished");
    assert!(ids.iter().all(|id| {
        let t = sup.store().task(id).unwrap().unwrap();
        t.status == TaskStatus::Paused || t.status == TaskStatus::AwaitingApproval
    }));
    assert!(
        sup.store()
            .client_month_spend("tight", &ecca::time::current_month())
            .unwrap()
            <= 10_000
    );

    // Manifest errors name the file and what to fix.
    let err = sup
        .execute(batch_text("[batch]\nname = \"x\"\n"))
        .await
        .unwrap_err();
    assert!(
        err.0.contains("test.toml") && err.0.contains("client"),
        "{}",
        err.0
    );
}

fn batch_text(text: &str) -> Command {
    batch(text)
}

fn confirmed(manifest: &str) -> Command {
    let Command::StartBatch { mut batch } = batch(manifest) else {
        unreachable!()
    };
    batch.confirmed_over_budget = true;
    Command::StartBatch { batch }
}

/// A batch whose process stopped with apps not yet started: a long-lived process (the
/// console calls this at start) takes the batch up again and runs those apps.
#[tokio::test]
async fn a_batch_left_running_is_taken_up_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(supervisor(dir.path()).await);
    // What a stopped process leaves: the batch running, its apps pending, none started.
    let batch_id = "B-0001".to_string();
    let ids: Vec<String> = (1..=3).map(|n| format!("T-{n:04}")).collect();
    {
        use ecca::store::{BatchRecord, Store, TaskRecord, WriteOp};
        let store = Store::open(dir.path()).unwrap();
        let now = ecca::time::now_ms();
        let mut ops = vec![WriteOp::InsertBatch(Box::new(BatchRecord {
            id: batch_id.clone(),
            client_id: "rork".into(),
            name: "small".into(),
            manifest: small(3, ""),
            status: "running".into(),
            concurrency: 1,
            budget_micros: None,
            forecast: None,
            created_at: now,
            finished_at: None,
        }))];
        for (i, id) in ids.iter().enumerate() {
            ops.push(WriteOp::InsertTask(Box::new(TaskRecord {
                id: id.clone(),
                client_id: "rork".into(),
                title: format!("app-{i}"),
                description: format!("A counter app number {i} with a reset button"),
                stack: "react-native".into(),
                source: "batch".into(),
                agent_kind: "builtin".into(),
                model_mode: "offline".into(),
                status: TaskStatus::Pending,
                status_reason: None,
                budget_micros: 1_000_000,
                deliverable_url: None,
                iterations: 0,
                quality_score: None,
                tokens_used: 0,
                cost_micros: 0,
                cost_estimated: false,
                model_calls: 0,
                created_at: now,
                updated_at: now,
                completed_at: None,
                base_branch: None,
                acceptance: Vec::new(),
                result_status: None,
                batch_id: Some(batch_id.clone()),
                batch_app: Some(format!("app-{i}")),
                price_micros: None,
                compare_group: None,
            })));
        }
        store.write(ops).await.unwrap();
    }
    let sup = Supervisor::start(SupervisorOptions::new(
        dir.path().to_path_buf(),
        Config::default(),
    ))
    .await
    .unwrap();
    assert_eq!(
        sup.store().task(&ids[1]).unwrap().unwrap().status,
        TaskStatus::Pending,
        "starting a supervisor alone starts no batch app"
    );
    sup.resume_batches().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while sup.store().batch(&batch_id).unwrap().unwrap().status == "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sup.wait_all_settled().await;
    for id in &ids {
        assert_eq!(
            sup.store().task(id).unwrap().unwrap().status,
            TaskStatus::AwaitingApproval,
            "{id}"
        );
    }
}
