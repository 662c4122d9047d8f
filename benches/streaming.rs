//! The console's loop while 20 runs stream from the model, 100 lines a second each (every
//! line arrives as 4 deltas of 16 bytes, as providers send a few tokens per event).
//!
//! The loop is the console's own (`event_loop::run`) on this thread with a current-thread
//! runtime, drawing into a terminal that discards its bytes; the runs publish on a separate
//! runtime, as the supervisor's tasks do. Measured over 10 s on the Runs view and on the
//! Run detail of one of the streaming runs: the loop thread's CPU time and voluntary
//! context switches (`/proc/thread-self`), the whole process's CPU time (which includes the
//! publishing runtime standing in for the runs) and frames drawn.
//!
//! Both with every delta its own event (as before coalescing) and coalesced.
//!
//! Run: cargo bench --bench streaming

use ecca::console::app::View;
use ecca::console::keymap::Keymap;
use ecca::console::link::{Events, Link};
use ecca::console::theme::Theme;
use ecca::console::{event_loop, fixture};
use ecca::supervisor::{EventBus, Supervisor, SupervisorOptions};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "common/proc_usage.rs"]
mod proc_usage;
use proc_usage::{process_cpu, thread_usage};

const RUNS: usize = 20;
const LINES_PER_SECOND: u64 = 100;
const DELTAS_PER_LINE: usize = 4;
const SECONDS: u64 = 10;

/// 20 runs streaming into `bus` until `stop`.
fn stream(bus: EventBus, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut runs = Vec::new();
            for i in 0..RUNS {
                let bus = bus.clone();
                let stop = stop.clone();
                // The first run is the one the Run detail shows.
                let run_id = if i == 0 {
                    "T-0005/r1".to_string()
                } else {
                    format!("T-9{i:03}/r1")
                };
                runs.push(tokio::spawn(async move {
                    // Spread the runs over the period, as independent streams are.
                    let period = Duration::from_micros(1_000_000 / LINES_PER_SECOND);
                    tokio::time::sleep(period * i as u32 / RUNS as u32).await;
                    let mut tick = tokio::time::interval(period);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        n += 1;
                        let line = format!("{n:>15} line of code from the model, streamed …\n");
                        let bytes = line.as_bytes();
                        let step = bytes.len().div_ceil(DELTAS_PER_LINE);
                        for chunk in bytes.chunks(step) {
                            bus.publish_delta(&run_id, &String::from_utf8_lossy(chunk));
                        }
                    }
                }));
            }
            for r in runs {
                let _ = r.await;
            }
        });
    })
}

struct Figures {
    loop_cpu: f64,
    switches_per_second: f64,
    process_cpu: f64,
    frames: u64,
}

fn measure(view: View, coalesced: bool, sup: &Supervisor) -> Figures {
    let theme = Theme::load("dark", None, false).expect("theme");
    let keymap = Keymap::load(&BTreeMap::new()).expect("keymap");
    let mut app = fixture::app(theme, keymap, view);
    let bus = if coalesced {
        EventBus::new(4096)
    } else {
        EventBus::uncoalesced(4096)
    };
    let events = Events::Local(bus.subscribe());
    let link = Link::Local(sup.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = stream(bus, stop.clone());
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::sink())).expect("terminal");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Let the streams start before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, sw0) = thread_usage();
    let p0 = process_cpu();
    let t0 = Instant::now();
    let report = rt
        .block_on(async {
            // The stop timer is made inside the runtime it runs on.
            event_loop::run(
                &mut terminal,
                &mut app,
                futures::stream::pending(),
                events,
                &link,
                sup.store().clone(),
                tokio::time::sleep(Duration::from_secs(SECONDS)),
            )
            .await
        })
        .expect("loop");
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, sw1) = thread_usage();
    let p1 = process_cpu();
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    Figures {
        loop_cpu: (cpu1 - cpu0) / wall,
        switches_per_second: (sw1 - sw0) as f64 / wall,
        process_cpu: (p1 - p0) / wall,
        frames: report.frames,
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let setup = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sup = setup.block_on(async {
        let options =
            SupervisorOptions::new(dir.path().to_path_buf(), ecca::config::Config::default());
        Supervisor::start(options).await.expect("supervisor")
    });
    println!(
        "{RUNS} runs × {LINES_PER_SECOND} lines/s ({DELTAS_PER_LINE} deltas a line), {SECONDS} s each:"
    );
    for coalesced in [false, true] {
        println!(
            "{}",
            if coalesced {
                "deltas coalesced per run (at most one event per run per 16 ms):"
            } else {
                "every delta its own event (before):"
            }
        );
        for (name, view) in [("Runs view", View::Runs), ("Run detail", View::Detail)] {
            let f = measure(view, coalesced, &sup);
            println!(
                "  {name}: loop thread {:.2} % of a core, {:.0} voluntary context switches/s; process (loop + streams) {:.2} %; {} frames",
                f.loop_cpu * 100.0,
                f.switches_per_second,
                f.process_cpu * 100.0,
                f.frames
            );
        }
    }
}
