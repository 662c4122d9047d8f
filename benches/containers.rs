//! The Containers view against a real Docker engine (needs one, and the sandbox image).
//!
//! 1. CPU of the console's side of the view with 12 containers streaming stats: the
//!    watcher (events, 12 stats streams, health probes) plus a redraw of the view at
//!    160×48 for every snapshot it publishes, as the console's loop does, for 20 s; against
//!    the same loop with no container. Measured as this process's user+system CPU time
//!    (/proc/self/stat) over wall time.
//! 2. Time from `docker stop` issued outside ecca to the watcher's snapshot showing the
//!    container exited, 10 times; median and max.
//!
//! 3. The view's frame at 160×48 and 80×24 with 12 containers: the Tools pane, and the
//!    Logs pane with a full ring (256 KiB) filtered by a search, median and p99 of 500.
//!
//! Run: cargo bench --bench containers

use ecca::console::app::App;
use ecca::console::app::View;
use ecca::console::keymap::Keymap;
use ecca::console::theme::Theme;
use ecca::console::views::containers::Pane;
use ecca::console::{fixture, fixture_containers, render};
use ecca::containers::watch::ContainerWatch;
use ecca::containers::watch::ContainersSnapshot;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONTAINERS: usize = 12;
const PREFIX: &str = "ecca-bench-stats";

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; 11 and 12 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI")
}

fn start(i: usize) -> String {
    let name = format!("{PREFIX}-{i:02}");
    let _ = docker(&["rm", "-f", &name]);
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "ecca.managed=true",
        "--label",
        "ecca.role=bench",
        "--memory",
        "64m",
        "--entrypoint",
        "/bin/sh",
        "ecca-sandbox:latest",
        "-c",
        // A little work each second so that the stats move.
        "while true; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 1; done",
    ]);
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// Runs the watcher and redraws on every snapshot for `secs`; returns CPU share of a core
/// and the frames drawn.
async fn measure(secs: u64) -> (f64, u64) {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Runs);
    app.view = View::Containers;
    let mut watch = ContainerWatch::spawn();
    // Settle: the first listing and the first stats.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        let _ = tokio::time::timeout(Duration::from_millis(200), watch.snapshots.changed()).await;
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut frames = 0;
    let end = t0 + Duration::from_secs(secs);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Ok(Ok(())) = tokio::time::timeout(left, watch.snapshots.changed()).await {
            let snap = watch.snapshots.borrow_and_update().clone();
            let _ = app.containers_changed(snap);
            let _ = render(&app, 160, 48).unwrap();
            frames += 1;
        }
    }
    let share = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64();
    drop(watch);
    (share, frames)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn frame_app(logs: bool) -> App {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Runs);
    fixture_containers::stage_containers(&mut app, "containers");
    let _ = app.containers_changed(Arc::new(ContainersSnapshot {
        rows: fixture_containers::containers(12),
        sandboxes: 3,
        error: None,
        loaded: true,
    }));
    if logs {
        app.containers.pane = Pane::Logs;
        app.containers.search = "sandbox".into();
        let mut i = 0u64;
        while app.containers.logs.dropped == 0 {
            app.containers.logs.push(format!(
                "2026-11-22T09:{:02}:{:02}Z sandbox {i:06x}: run_python exited 0 after 0.41 s",
                (i / 60) % 60,
                i % 60
            ));
            i += 1;
        }
    }
    app.view = View::Containers;
    app
}

fn frames(logs: bool) {
    let app = frame_app(logs);
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        let mut times = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let _ = render(&app, w, h).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "Containers view frame, 12 containers, {} pane{}, {w}×{h}: median {:.3} ms, p99 {:.3} ms",
            if logs { "Logs" } else { "Tools" },
            if logs {
                format!(
                    " ({} lines, {} KiB, searched)",
                    app.containers.logs.lines.len(),
                    app.containers.logs.bytes() / 1024
                )
            } else {
                String::new()
            },
            percentile(times.clone(), 0.5),
            percentile(times, 0.99)
        );
    }
}

#[tokio::main]
async fn main() {
    frames(false);
    frames(true);
    let secs = 20;
    let (idle, idle_frames) = measure(secs).await;
    let names: Vec<String> = (0..CONTAINERS).map(start).collect();
    let (busy, busy_frames) = measure(secs).await;
    println!(
        "CPU over {secs} s: idle {:.2} % of a core ({idle_frames} frames); {CONTAINERS} containers streaming stats {:.2} % ({busy_frames} frames); difference {:.2} points",
        idle * 100.0,
        busy * 100.0,
        (busy - idle) * 100.0
    );

    // Stopped outside ecca → seen by the watcher.
    let mut watch = ContainerWatch::spawn();
    while !watch.snapshots.borrow().loaded || watch.snapshots.borrow().rows.len() < CONTAINERS {
        let _ = watch.snapshots.changed().await;
    }
    let mut delays = Vec::new();
    for name in names.iter().take(10) {
        let begun = Instant::now();
        let stopper = {
            let name = name.clone();
            std::thread::spawn(move || docker(&["stop", "-t", "0", &name]))
        };
        loop {
            let seen = watch
                .snapshots
                .borrow()
                .rows
                .iter()
                .any(|r| &r.name == name && !r.running());
            if seen {
                break;
            }
            let _ = watch.snapshots.changed().await;
        }
        delays.push(begun.elapsed().as_secs_f64() * 1000.0);
        let _ = stopper.join();
    }
    let max = delays.iter().cloned().fold(0.0, f64::max);
    println!(
        "docker stop outside ecca → watcher shows it exited, 10 times: median {:.0} ms, max {max:.0} ms",
        median(delays)
    );
    drop(watch);
    for name in names {
        let _ = docker(&["rm", "-f", &name]);
    }
}
