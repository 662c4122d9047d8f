//! Frame benchmarks of the Clients and Batch views. Run with
//! `cargo bench --bench console_money`.
//! - Batch view scoreboard, 21 and 500 apps, among 2,000 other task rows, 160×48 and 80×24;
//! - Clients view, 200 clients with 30 tasks each, 160×48 and 80×24.

use ecca::budgets::ClientMonth;
use ecca::console::app::{App, View};
use ecca::console::keymap::Keymap;
use ecca::console::model::RunRow;
use ecca::console::theme::Theme;
use ecca::console::{fixture, fixture_money, views};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::BTreeMap;
use std::time::Instant;

const ROUNDS: usize = 500;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn sample_app() -> App {
    let theme = Theme::load("dark", None, false).expect("theme");
    let keymap = Keymap::load(&BTreeMap::new()).expect("keymap");
    let mut app = fixture::app(theme, keymap, View::Runs);
    // Other tasks of the store: the scoreboard must not scan them per app.
    let template: RunRow = app.rows[0].clone();
    for i in 0..2_000 {
        app.rows.push(RunRow {
            task_id: format!("T-9{i:04}"),
            ..template.clone()
        });
    }
    app
}

fn frame_times(app: &App, w: u16, h: u16) -> (f64, f64) {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        term.draw(|f| views::draw(f, app)).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (percentile(times.clone(), 0.5), percentile(times, 0.99))
}

fn clients(n: usize) -> Vec<ClientMonth> {
    let base = fixture_money::months();
    (0..n)
        .map(|i| {
            let mut m = base[i % base.len()].clone();
            m.client_id = format!("client-{i:03}");
            m.name = format!("Client {i}");
            let task = m.tasks[0].clone();
            m.tasks = (0..30)
                .map(|k| ecca::budgets::TaskMonth {
                    task_id: format!("T-{:04}", i * 30 + k),
                    ..task.clone()
                })
                .collect();
            m
        })
        .collect()
}

fn main() {
    println!("| benchmark | median / p99 of {ROUNDS} |");
    println!("|---|---|");
    for apps in [21, 500] {
        let mut app = sample_app();
        fixture_money::stage_board(&mut app, apps);
        app.batch.sel = apps / 2;
        for (w, h) in [(160, 48), (80, 24)] {
            let (p50, p99) = frame_times(&app, w, h);
            println!(
                "| frame, Batch view scoreboard, {apps} apps among {} task rows, {w}×{h} | {p50:.3} ms / {p99:.3} ms |",
                app.rows.len()
            );
        }
    }
    let mut app = sample_app();
    app.view = View::Clients;
    fixture_money::load_months(&mut app, clients(200));
    app.clients.sel = 120;
    for (w, h) in [(160, 48), (80, 24)] {
        let (p50, p99) = frame_times(&app, w, h);
        println!(
            "| frame, Clients view, 200 clients × 30 tasks (header warning on), {w}×{h} | {p50:.3} ms / {p99:.3} ms |"
        );
    }
}
