//! Console benchmarks. Run with `cargo bench --bench console`.
//! - frame render time, Runs view with 200 runs, 160×48;
//! - frame render time, Run detail with 100,000 output lines and a 5,000-line diff, 160×48;
//! - streaming 50,000 lines a second into a pane: memory against the ring's cap;
//! - start to first frame with a store holding 10,000 finished tasks.

use ecca::console::app::{App, Header, View};
use ecca::console::keymap::Keymap;
use ecca::console::model::{RunRow, load_rows};
use ecca::console::theme::Theme;
use ecca::console::{fixture, views};
use ecca::domain::TaskStatus;
use ecca::store::{ClientRecord, Store, TaskRecord, WriteOp};
use ecca::supervisor::{Delivery, Event, Supervisor, SupervisorOptions};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn look() -> (Theme, Keymap) {
    (
        Theme::load("dark", None, false).expect("theme"),
        Keymap::load(&BTreeMap::new()).expect("keymap"),
    )
}

fn frame_times(app: &App, rounds: usize) -> (f64, f64) {
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        term.draw(|f| views::draw(f, app)).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (percentile(times.clone(), 0.5), percentile(times, 0.99))
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn main() {
    let (theme, keymap) = look();
    println!("| benchmark | result |");
    println!("|---|---|");

    // Runs view, 200 runs.
    let mut app = fixture::app(theme.clone(), keymap.clone(), View::Runs);
    let template = fixture::rows();
    app.rows = (0..200)
        .map(|i| {
            let mut r: RunRow = template[i % template.len()].clone();
            r.task_id = format!("T-{:04}", 200 - i);
            r.created_at -= i as i64;
            r
        })
        .collect();
    let (p50, p99) = frame_times(&app, 500);
    println!(
        "| frame, Runs view with 200 runs, 160×48: median / p99 of 500 | {p50:.3} ms / {p99:.3} ms |"
    );

    // Run detail, 100,000 output lines and a 5,000-line diff.
    let mut app = fixture::app(theme.clone(), keymap.clone(), View::Detail);
    {
        let d = app.detail.loaded.as_mut().expect("detail");
        for i in 0..100_000 {
            d.output.push_line(format!(
                "{i:06} model output line with some text to make it realistic, about eighty bytes"
            ));
        }
        d.diff = (0..5_000usize)
            .map(|i| {
                format!(
                    "+    value_{i} = compute(value_{}, factor={i})",
                    i.saturating_sub(1)
                )
            })
            .collect();
    }
    app.detail.pane = 0;
    let kept = app.detail.loaded.as_ref().expect("detail").output.len();
    let (o50, o99) = frame_times(&app, 500);
    app.detail.pane = 1;
    let (d50, d99) = frame_times(&app, 500);
    app.detail.scroll = 2_500;
    let (m50, m99) = frame_times(&app, 500);
    println!(
        "| frame, Run detail, Output pane after 100,000 lines streamed ({kept} newest kept under the 4 MiB cap), 160×48: median / p99 | {o50:.3} ms / {o99:.3} ms |"
    );
    println!(
        "| frame, Run detail, Diff pane of 5,000 lines (at the end / scrolled to the middle): median / p99 | {d50:.3} / {d99:.3} ms, {m50:.3} / {m99:.3} ms |"
    );

    // Streaming 50,000 lines a second for 5 s through the app, as model deltas.
    let mut app = fixture::app(theme.clone(), keymap.clone(), View::Detail);
    let run_id = app.detail.loaded.as_ref().expect("detail").run_id.clone();
    let line: Arc<str> =
        Arc::from("streamed model output, a line of about sixty-four bytes of text\n");
    let before = rss_kib();
    let started = Instant::now();
    let mut peak_ring = 0usize;
    let mut rss_by_second = Vec::new();
    for second in 0..5 {
        let until = std::time::Duration::from_secs(second + 1);
        for _ in 0..50_000 {
            app.apply(&Delivery::Event(Arc::new(Event::ModelDelta {
                run_id: run_id.clone(),
                text: line.clone(),
            })));
        }
        peak_ring = peak_ring.max(app.detail.loaded.as_ref().expect("detail").output.bytes());
        rss_by_second.push(rss_kib() as i64 - before as i64);
        while started.elapsed() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let d = app.detail.loaded.as_ref().expect("detail");
    let growth: Vec<String> = rss_by_second
        .iter()
        .map(|k| format!("{:+.1}", *k as f64 / 1024.0))
        .collect();
    println!(
        "| streaming 250,000 lines at 50,000/s into the Output pane: ring peak / cap; lines dropped; RSS growth after each second (MiB) | {:.2} MiB / {:.2} MiB; {}; {} |",
        peak_ring as f64 / 1048576.0,
        d.output.cap() as f64 / 1048576.0,
        d.output.dropped,
        growth.join(", ")
    );

    // Start to first frame with 10,000 finished tasks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = Store::open(dir.path()).expect("store");
        let mut ops = vec![WriteOp::InsertClient(ClientRecord {
            id: "acme".into(),
            name: "Acme".into(),
            monthly_budget_micros: 1,
            repo_url: None,
            created_at: 0,
        })];
        for i in 1..=10_000 {
            ops.push(WriteOp::InsertTask(Box::new(TaskRecord {
                id: format!("T-{i:05}"),
                client_id: "acme".into(),
                title: format!("finished task {i}"),
                description: String::new(),
                stack: "python".into(),
                source: "batch".into(),
                agent_kind: "builtin".into(),
                model_mode: "offline".into(),
                status: TaskStatus::Delivered,
                status_reason: None,
                budget_micros: 1_000_000,
                deliverable_url: None,
                iterations: 1,
                quality_score: Some(8.0),
                tokens_used: 900,
                cost_micros: 4_000,
                cost_estimated: false,
                model_calls: 4,
                created_at: i,
                updated_at: i,
                completed_at: Some(i),
                base_branch: None,
                acceptance: Vec::new(),
                result_status: None,
                batch_id: None,
                batch_app: None,
                price_micros: None,
                compare_group: None,
            })));
        }
        store.write(ops).await.expect("seed");
    });
    let mut firsts = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        rt.block_on(async {
            let store = Store::open(dir.path()).expect("store");
            let mut options =
                SupervisorOptions::new(dir.path().to_path_buf(), ecca::config::Config::default());
            options.store = Some(store.clone());
            let sup = Supervisor::start(options).await.expect("supervisor");
            let rows = load_rows(&store).expect("rows");
            let (theme, keymap) = look();
            let header = Header {
                provider: ecca::config::ProviderKind::Offline,
                tools: sup.tools_description(),
                schedule: None,
            };
            let app = App::new(
                keymap,
                theme,
                header,
                rows,
                vec!["acme".into()],
                ecca::time::now_ms(),
            );
            let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
            term.draw(|f| views::draw(f, &app)).expect("draw");
        });
        firsts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "| start to first frame, store with 10,000 finished tasks (open store, start supervisor, load rows, draw): median of 7 | {:.1} ms |",
        percentile(firsts, 0.5)
    );
}
