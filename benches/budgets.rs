//! Money benchmarks. Run with `cargo bench --bench budgets`.
//! - every client's month (`client_months`) with 200 clients, each with 10 tasks and 30
//!   cost rows a day for the month so far: what the Clients view loads on each refresh;
//! - the client report of one of them.

use ecca::budgets::month::{MonthInputs, client_months};
use ecca::budgets::report::client_report;
use ecca::domain::TaskStatus;
use ecca::money::Usage;
use ecca::store::{ClientRecord, CostRow, RunRecord, Store, TaskRecord, WriteOp};
use std::time::Instant;

const CLIENTS: usize = 200;
const TASKS: usize = 10;
const DAYS: i64 = 21;
const ROWS_PER_DAY: i64 = 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn task(id: String, client: &str, now: i64) -> TaskRecord {
    TaskRecord {
        id,
        client_id: client.into(),
        title: "bench task".into(),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        model_mode: "anthropic".into(),
        status: TaskStatus::Delivered,
        status_reason: None,
        budget_micros: 5_000_000,
        deliverable_url: None,
        iterations: 1,
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
        batch_id: None,
        batch_app: None,
        price_micros: Some(50_000_000),
        compare_group: None,
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    // 2026-11-22 12:00 UTC.
    let now: i64 = 1_795_348_800_000;
    let day: i64 = 86_400_000;
    let mut rows = 0;
    rt.block_on(async {
        for c in 0..CLIENTS {
            let client = format!("c{c:03}");
            let mut ops = vec![WriteOp::InsertClient(ClientRecord {
                id: client.clone(),
                name: format!("Client {c}"),
                monthly_budget_micros: 500_000_000,
                repo_url: None,
                created_at: now - 60 * day,
            })];
            for t in 0..TASKS {
                let id = format!("T-{:05}", c * TASKS + t);
                ops.push(WriteOp::InsertTask(Box::new(task(
                    id.clone(),
                    &client,
                    now - 20 * day,
                ))));
                ops.push(WriteOp::InsertRun(RunRecord {
                    id: format!("{id}/r1"),
                    task_id: id.clone(),
                    attempt: 1,
                    status: TaskStatus::Delivered,
                    agent_state: "done".into(),
                    fsm_state: "{}".into(),
                    tokens_used: 0,
                    cost_micros: 0,
                    model_calls: 0,
                    owner_pid: None,
                    started_at: now - 20 * day,
                    updated_at: now,
                    finished_at: None,
                }));
            }
            for d in 0..DAYS {
                for r in 0..ROWS_PER_DAY {
                    let t = (r as usize) % TASKS;
                    let at = now - d * day - r * 1000;
                    ops.push(WriteOp::Cost(CostRow {
                        at,
                        month: ecca::time::month_of(at),
                        client_id: client.clone(),
                        task_id: format!("T-{:05}", c * TASKS + t),
                        run_id: format!("T-{:05}/r1", c * TASKS + t),
                        provider: "anthropic".into(),
                        model: if r % 3 == 0 {
                            "claude-haiku-4-5"
                        } else {
                            "claude-sonnet-4-5"
                        }
                        .into(),
                        purpose: "write".into(),
                        simulated: r % 10 == 0,
                        usage: Usage {
                            input_tokens: 1000,
                            output_tokens: 200,
                            cache_write_tokens: 0,
                            cache_read_tokens: 0,
                        },
                        cost_micros: 4_000 + r,
                        reserved_micros: 9_000,
                        outcome: "ok".into(),
                        estimated: false,
                    }));
                    rows += 1;
                }
            }
            store.write(ops).await.expect("seed");
        }
    });
    let inputs = MonthInputs {
        month: "2026-11",
        now_ms: now,
        reserved: &|_| 0,
        price_share_warn_percent: 50,
    };
    let mut months_ms = Vec::new();
    for round in 0..=15 {
        let t = Instant::now();
        let months = client_months(&store, &inputs, None).expect("months");
        assert_eq!(months.len(), CLIENTS);
        if round > 0 {
            months_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mut report_ms = Vec::new();
    for round in 0..=15 {
        let t = Instant::now();
        let r = client_report(&store, "c100", "2026-11", 50).expect("report");
        assert_eq!(r.tasks.len(), TASKS);
        if round > 0 {
            report_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!("{CLIENTS} clients, {rows} cost rows in the month");
    println!(
        "client_months, every client: median {:.2} ms over {} rounds",
        median(months_ms.clone()),
        months_ms.len()
    );
    println!(
        "client_report, one client: median {:.2} ms over {} rounds",
        median(report_ms.clone()),
        report_ms.len()
    );
}
