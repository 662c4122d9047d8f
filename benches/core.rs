//! Core benchmarks: the supervisor's event bus and the ledger's cost rows.
//!
//! Run with `cargo bench --bench core`. Each figure is the median of several rounds; the
//! ledger is compared with plain rusqlite inserting the same rows in one transaction on
//! the same schema (the ceiling), and the ratio is what the target is stated against.

use ecca::ledger::{CallQuote, CallScope, Ledger};
use ecca::money::{Price, Usage};
use ecca::store::{ClientRecord, CostRow, RunRecord, Store, TaskRecord, WriteOp, insert_cost_row};
use ecca::supervisor::{Delivery, Event, EventBus};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const BUS_EVENTS: usize = 2_000_000;
const LEDGER_ROWS: usize = 50_000;
const LEDGER_IN_FLIGHT: usize = 256;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Events per second from one publisher thread to one subscriber task.
fn bus_round(rt: &tokio::runtime::Runtime) -> f64 {
    let bus = EventBus::new(4096);
    let mut sub = bus.subscribe();
    let text: Arc<str> = Arc::from("print('hello')\n");
    let run_id = "T-0001/r1".to_string();
    let started = Instant::now();
    let receiver = rt.spawn(async move {
        let mut got = 0usize;
        let mut lagged = 0u64;
        while got + (lagged as usize) < BUS_EVENTS {
            match sub.next().await {
                Some(Delivery::Event(_)) => got += 1,
                Some(Delivery::Lagged { missed }) => lagged += missed,
                None => break,
            }
        }
        (got, lagged)
    });
    let publisher = std::thread::spawn(move || {
        for i in 0..BUS_EVENTS {
            // A publisher that outruns the subscriber would only measure drops: every 1024
            // events it waits until at most 2048 are queued (so never more than 3072 of the
            // 4096 held). `backlog` walks the ring, so it is not asked on every event.
            if i % 1024 == 0 {
                while bus.backlog() > 2048 {
                    std::thread::yield_now();
                }
            }
            bus.publish(Event::ModelDelta {
                run_id: run_id.clone(),
                text: text.clone(),
            });
        }
        bus
    });
    let (got, lagged) = rt.block_on(receiver).expect("receiver");
    let elapsed = started.elapsed();
    drop(publisher.join());
    assert_eq!(lagged, 0, "the subscriber lagged during the bus benchmark");
    got as f64 / elapsed.as_secs_f64()
}

/// A store with one client, task and run to charge.
fn seeded_store(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Store {
    let store = Store::open(dir).expect("store");
    let now = ecca::time::now_ms();
    let ops = vec![
        WriteOp::InsertClient(ClientRecord {
            id: "acme".into(),
            name: "Acme".into(),
            monthly_budget_micros: i64::MAX / 4,
            repo_url: None,
            created_at: now,
        }),
        WriteOp::InsertTask(Box::new(TaskRecord {
            id: "T-0001".into(),
            client_id: "acme".into(),
            title: "bench".into(),
            description: String::new(),
            stack: "python".into(),
            source: "manual".into(),
            agent_kind: "builtin".into(),
            model_mode: "offline".into(),
            status: ecca::domain::TaskStatus::Running,
            status_reason: None,
            budget_micros: i64::MAX / 4,
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
            batch_id: None,
            batch_app: None,
            price_micros: None,
            compare_group: None,
        })),
        WriteOp::InsertRun(RunRecord {
            id: "T-0001/r1".into(),
            task_id: "T-0001".into(),
            attempt: 1,
            status: ecca::domain::TaskStatus::Running,
            agent_state: "coding".into(),
            fsm_state: "{}".into(),
            tokens_used: 0,
            cost_micros: 0,
            model_calls: 0,
            owner_pid: None,
            started_at: now,
            updated_at: now,
            finished_at: None,
        }),
    ];
    rt.block_on(store.write(ops)).expect("seed");
    store
}

fn usage(i: usize) -> Usage {
    Usage {
        input_tokens: 1_000 + i as u64 % 97,
        output_tokens: 200,
        cache_write_tokens: 0,
        cache_read_tokens: 50,
    }
}

const SONNET: Price = Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30);

/// Cost rows per second through the ledger: reserve, call (none), settle with commit.
fn ledger_round(rt: &tokio::runtime::Runtime) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded_store(rt, dir.path());
    let ledger = Ledger::new(store.clone());
    let month = ecca::time::current_month();
    let started = Instant::now();
    rt.block_on(async {
        let mut workers = Vec::new();
        for w in 0..LEDGER_IN_FLIGHT {
            let ledger = ledger.clone();
            let month = month.clone();
            workers.push(tokio::spawn(async move {
                for i in (w..LEDGER_ROWS).step_by(LEDGER_IN_FLIGHT) {
                    let scope = CallScope {
                        client_id: "acme".into(),
                        task_id: "T-0001".into(),
                        run_id: "T-0001/r1".into(),
                    };
                    let quote = CallQuote {
                        provider: "anthropic".into(),
                        model: "claude-sonnet-4-5".into(),
                        purpose: "write".into(),
                        simulated: false,
                        price: SONNET,
                        prompt_tokens_estimate: 1_200,
                        max_output_tokens: 4_096,
                    };
                    let r = ledger.reserve(scope, quote, &month).expect("reserve");
                    ledger
                        .settle(r, usage(i), false, "ok", Vec::new())
                        .await
                        .expect("settle");
                }
            }));
        }
        for w in workers {
            w.await.expect("worker");
        }
    });
    let elapsed = started.elapsed();
    let totals = store.cost_totals(Some("acme"), None).expect("totals");
    assert_eq!(totals.rows as usize, LEDGER_ROWS);
    LEDGER_ROWS as f64 / elapsed.as_secs_f64()
}

/// The same rows by plain rusqlite, one prepared statement, one transaction.
fn ceiling_round(rt: &tokio::runtime::Runtime) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded_store(rt, dir.path());
    let mut conn = rusqlite::Connection::open(store.path()).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
    let month = ecca::time::current_month();
    let rows: Vec<CostRow> = (0..LEDGER_ROWS)
        .map(|i| CostRow {
            at: ecca::time::now_ms(),
            month: month.clone(),
            client_id: "acme".into(),
            task_id: "T-0001".into(),
            run_id: "T-0001/r1".into(),
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            purpose: "write".into(),
            simulated: false,
            usage: usage(i),
            cost_micros: SONNET.cost(&usage(i)),
            reserved_micros: 0,
            outcome: "ok".into(),
            estimated: false,
        })
        .collect();
    let started = Instant::now();
    let tx = conn.transaction().expect("tx");
    for row in &rows {
        insert_cost_row(&tx, row).expect("insert");
    }
    tx.commit().expect("commit");
    LEDGER_ROWS as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    ecca::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("| benchmark | median | rounds |");
    println!("|---|---|---|");
    if wants("bus") {
        let _ = bus_round(&rt); // warm-up
        let bus: Vec<f64> = (0..ROUNDS).map(|_| bus_round(&rt)).collect();
        println!(
            "| bus: events/s to one subscriber ({BUS_EVENTS} events) | {:.0} | {ROUNDS} |",
            median(bus)
        );
    }
    if wants("ledger") {
        let _ = ledger_round(&rt);
        let ledger: Vec<f64> = (0..ROUNDS).map(|_| ledger_round(&rt)).collect();
        let ceiling: Vec<f64> = (0..ROUNDS).map(|_| ceiling_round(&rt)).collect();
        let (l, c) = (median(ledger), median(ceiling));
        println!(
            "| ledger: cost rows/s, reserve + settle, {LEDGER_IN_FLIGHT} calls in flight ({LEDGER_ROWS} rows) | {l:.0} | {ROUNDS} |"
        );
        println!("| plain rusqlite: same rows, one transaction (ceiling) | {c:.0} | {ROUNDS} |");
        println!("| ledger / ceiling | {:.2} | |", l / c);
    }
    std::thread::sleep(Duration::from_millis(10));
}
