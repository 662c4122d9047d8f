//! The console attached to `ecca serve`, measured in one process holding both halves: a
//! supervisor serving its socket on one runtime (the daemon's part: `socket::serve`, JSON
//! lines out), and the console's own loop (`event_loop::run` on `Link::Daemon`, JSON lines
//! in, drawn into an in-memory terminal) on this thread. Runs are stood in for by tasks
//! publishing streamed text on the supervisor's bus, as the engine does.
//!
//! 1. CPU with 20 runs streaming 100 lines a second each (4 deltas a line), Runs view, 10 s:
//!    the whole process (daemon + console + the stand-in runs) and the console's loop
//!    thread, attached and, for comparison, with the console in-process.
//! 2. Event → screen through the socket: while those 20 runs stream, a 21st run streams a
//!    numbered line 50 times a second; the Run detail shows it. Each line is timed from its
//!    publication to the end of the first frame whose buffer holds it.
//! 3. Three attached consoles, 1,000 deltas a second (20 runs × 50), 10 s: the same timing
//!    in each console, first and last two seconds apart (a backlog would grow).
//! 4. Keystroke → redrawn frame with 100 live runs (each 10 lines a second) on the Runs
//!    view: 200 keys (j, k), each timed from entering the console's input to the end of
//!    the next frame.
//!
//! Run: cargo bench --bench attached

use ecca::console::app::View;
use ecca::console::event_loop::{self, Notifier};
use ecca::console::fixture;
use ecca::console::keymap::Keymap;
use ecca::console::link::{Events, Link};
use ecca::console::theme::Theme;
use ecca::supervisor::{EventBus, Supervisor, SupervisorOptions};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Size};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/proc_usage.rs"]
mod proc_usage;
use proc_usage::{process_cpu, thread_usage};

const SECONDS: u64 = 10;
/// The run the Run detail shows (the fixture's).
const SHOWN_RUN: &str = "T-0005/r1";

/// When each numbered line (`probe N`) was published, and when a frame first showed it.
#[derive(Default)]
struct Probes {
    published: Mutex<HashMap<u64, Instant>>,
    seen: Mutex<HashMap<u64, Instant>>,
}

impl Probes {
    /// Publication → first frame, in ms, for probes published in `from..to` seconds of
    /// `start`.
    fn latencies(&self, start: Instant, from: f64, to: f64) -> Vec<f64> {
        let published = self.published.lock().expect("probes");
        let seen = self.seen.lock().expect("probes");
        let mut out: Vec<f64> = seen
            .iter()
            .filter_map(|(n, at)| {
                let sent = published.get(n)?;
                let t = sent.duration_since(start).as_secs_f64();
                (t >= from && t < to).then(|| at.duration_since(*sent).as_secs_f64() * 1000.0)
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// An in-memory terminal that notes, at the end of each frame, which probes its buffer
/// shows and how long the newest keystroke took to reach the screen.
struct Stamped {
    inner: TestBackend,
    probes: Option<Arc<Probes>>,
    key_taken: Arc<Mutex<Option<Instant>>>,
    key_latencies: Arc<Mutex<Vec<f64>>>,
}

impl Stamped {
    fn new(cols: u16, rows: u16, probes: Option<Arc<Probes>>) -> Stamped {
        Stamped {
            inner: TestBackend::new(cols, rows),
            probes,
            key_taken: Arc::default(),
            key_latencies: Arc::default(),
        }
    }
}

impl Notifier for Stamped {}

impl Backend for Stamped {
    type Error = std::convert::Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        let now = Instant::now();
        if let Some(taken) = self.key_taken.lock().expect("key").take() {
            self.key_latencies
                .lock()
                .expect("keys")
                .push(now.duration_since(taken).as_secs_f64() * 1000.0);
        }
        if let Some(probes) = &self.probes {
            let buffer = self.inner.buffer();
            let width = buffer.area.width as usize;
            let text: String = buffer.content.iter().map(|c| c.symbol()).collect();
            let mut seen = probes.seen.lock().expect("probes");
            for row in text.as_bytes().chunks(width.max(1)) {
                let row = String::from_utf8_lossy(row);
                for part in row.split("probe ").skip(1) {
                    let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(n) = digits.parse::<u64>() {
                        seen.entry(n).or_insert(now);
                    }
                }
            }
        }
        Ok(())
    }
}

/// `runs` runs streaming `lines_per_second` lines each, 4 deltas a line, into `bus` until
/// `stop`; with `probes`, the shown run streams numbered lines 50 times a second instead.
fn stream(
    bus: EventBus,
    runs: usize,
    lines_per_second: u64,
    probes: Option<Arc<Probes>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for i in 0..runs {
                let bus = bus.clone();
                let stop = stop.clone();
                let run_id = format!("T-9{i:03}/r1");
                tasks.push(tokio::spawn(async move {
                    let period = Duration::from_micros(1_000_000 / lines_per_second);
                    tokio::time::sleep(period * i as u32 / runs as u32).await;
                    let mut tick = tokio::time::interval(period);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        n += 1;
                        let line = format!("{n:>15} line of code from the model, streamed …\n");
                        let step = line.len().div_ceil(4);
                        for chunk in line.as_bytes().chunks(step) {
                            bus.publish_delta(&run_id, &String::from_utf8_lossy(chunk));
                        }
                    }
                }));
            }
            if let Some(probes) = probes {
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(20));
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        n += 1;
                        probes
                            .published
                            .lock()
                            .expect("probes")
                            .insert(n, Instant::now());
                        bus.publish_delta(SHOWN_RUN, &format!("probe {n}\n"));
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    })
}

/// The daemon's half: a supervisor on `dir` serving `ecca.sock`, on a runtime of its own.
fn daemon(dir: &std::path::Path) -> (Supervisor, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sup = rt.block_on(async {
        let options = SupervisorOptions::new(dir.to_path_buf(), ecca::config::Config::default());
        let sup = Supervisor::start(options).await.expect("supervisor");
        let listener = ecca::supervisor::socket::bind(dir).expect("socket");
        tokio::spawn(ecca::supervisor::socket::serve(
            sup.clone(),
            listener,
            tokio_util::sync::CancellationToken::new(),
        ));
        sup
    });
    (sup, rt)
}

fn attached(dir: &std::path::Path) -> Link {
    Link::Daemon {
        data_dir: dir.to_path_buf(),
        config: Box::new(ecca::config::Config::default()),
    }
}

fn app(view: View) -> ecca::console::app::App {
    let theme = Theme::load("dark", None, false).expect("theme");
    let keymap = Keymap::load(&BTreeMap::new()).expect("keymap");
    fixture::app(theme, keymap, view)
}

struct Figures {
    process_cpu: f64,
    loop_cpu: f64,
    switches_per_second: f64,
    frames: u64,
}

/// Runs one console loop on this thread for `SECONDS`, fed keys from `keys`.
fn console_loop(
    terminal: &mut Terminal<Stamped>,
    app: &mut ecca::console::app::App,
    link: &Link,
    sup: &Supervisor,
    keys: Option<std::sync::mpsc::Receiver<Instant>>,
) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let taken = terminal.backend().key_taken.clone();
    let (cpu0, sw0) = thread_usage();
    let p0 = process_cpu();
    let t0 = Instant::now();
    let report = rt.block_on(async {
        let events = match link {
            Link::Local(sup) => Events::Local(sup.subscribe()),
            Link::Daemon { .. } => link.subscribe().await.expect("the daemon answers"),
        };
        // Keys come from a thread; the moment the loop takes one is noted for the frame.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        if let Some(keys) = keys {
            std::thread::spawn(move || {
                while let Ok(at) = keys.recv() {
                    if tx.send(at).is_err() {
                        return;
                    }
                }
            });
        }
        let mut down = false;
        let keys =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|at| (at, rx)) },
            );
        let input = Box::pin(keys.map(move |at| {
            *taken.lock().expect("key") = Some(at);
            down = !down;
            let code = if down { 'j' } else { 'k' };
            Ok(TermEvent::Key(KeyEvent::new(
                KeyCode::Char(code),
                KeyModifiers::NONE,
            )))
        }));
        event_loop::run(
            terminal,
            app,
            input,
            events,
            link,
            sup.store().clone(),
            tokio::time::sleep(Duration::from_secs(SECONDS)),
        )
        .await
    });
    let report = report.expect("loop");
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, sw1) = thread_usage();
    let p1 = process_cpu();
    Figures {
        process_cpu: (p1 - p0) / wall,
        loop_cpu: (cpu1 - cpu0) / wall,
        switches_per_second: (sw1 - sw0) as f64 / wall,
        frames: report.frames,
    }
}

fn cpu(dir: &std::path::Path, sup: &Supervisor) {
    println!("1. 20 runs × 100 lines/s (4 deltas a line), Runs view, {SECONDS} s:");
    // The stand-in runs alone, no console: what the figures below include for them.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = stream(sup.event_bus(), 20, 100, None, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let p0 = process_cpu();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(SECONDS));
    let alone = (process_cpu() - p0) / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    println!(
        "   the stand-in runs alone, no console: process {:.2} % of a core",
        alone * 100.0
    );
    for (name, link) in [
        ("attached to the daemon", attached(dir)),
        ("in-process (for comparison)", Link::Local(sup.clone())),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = stream(sup.event_bus(), 20, 100, None, stop.clone());
        std::thread::sleep(Duration::from_millis(500));
        let mut terminal = Terminal::new(Stamped::new(160, 48, None)).expect("terminal");
        let mut app = app(View::Runs);
        let f = console_loop(&mut terminal, &mut app, &link, sup, None);
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.join();
        println!(
            "   {name}: process (daemon + console + stand-in runs) {:.2} % of a core; console loop thread {:.2} %, {:.0} voluntary switches/s; {} frames",
            f.process_cpu * 100.0,
            f.loop_cpu * 100.0,
            f.switches_per_second,
            f.frames
        );
    }
}

fn latency(dir: &std::path::Path, sup: &Supervisor) {
    let probes = Arc::new(Probes::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let publisher = stream(sup.event_bus(), 20, 100, Some(probes.clone()), stop.clone());
    let mut terminal =
        Terminal::new(Stamped::new(160, 48, Some(probes.clone()))).expect("terminal");
    let mut app = app(View::Detail);
    let link = attached(dir);
    let f = console_loop(&mut terminal, &mut app, &link, sup, None);
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let all = probes.latencies(start, 1.0, SECONDS as f64);
    let published = probes.published.lock().expect("probes").len();
    println!(
        "2. event → screen through the socket (Run detail, 20 runs × 100 lines/s beside it): {} of {published} lines timed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} frames",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        f.frames
    );
}

fn three_consoles(dir: &std::path::Path, sup: &Supervisor) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut consoles = Vec::new();
    let p0 = process_cpu();
    for _ in 0..3 {
        let probes = Arc::new(Probes::default());
        let link = attached(dir);
        let sup = sup.clone();
        let mine = probes.clone();
        consoles.push((
            probes,
            std::thread::spawn(move || {
                let mut terminal =
                    Terminal::new(Stamped::new(160, 48, Some(mine))).expect("terminal");
                let mut app = app(View::Detail);
                console_loop(&mut terminal, &mut app, &link, &sup, None)
            }),
        ));
    }
    // One publisher; every console reads the same numbered lines.
    let shared = Arc::new(Probes::default());
    let publisher = stream(sup.event_bus(), 19, 50, Some(shared.clone()), stop.clone());
    let mut results = Vec::new();
    for (probes, handle) in consoles {
        let f = handle.join().expect("console");
        results.push((probes, f));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let wall = start.elapsed().as_secs_f64();
    let p1 = process_cpu();
    println!(
        "3. three attached consoles, 1,000 deltas/s (19 runs × 50 + 50 numbered lines), {SECONDS} s; process {:.2} % of a core:",
        (p1 - p0) / wall * 100.0
    );
    for (i, (probes, f)) in results.iter().enumerate() {
        *probes.published.lock().expect("probes") =
            shared.published.lock().expect("probes").clone();
        let first = probes.latencies(start, 1.0, 3.0);
        let last = probes.latencies(start, SECONDS as f64 - 2.0, SECONDS as f64);
        let all = probes.latencies(start, 1.0, SECONDS as f64);
        println!(
            "   console {}: {} lines timed, p50 {:.1} ms, p99 {:.1} ms; p99 in seconds 1–3 {:.1} ms, in the last two {:.1} ms; loop thread {:.2} %; {} frames",
            i + 1,
            all.len(),
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            percentile(&first, 0.99),
            percentile(&last, 0.99),
            f.loop_cpu * 100.0,
            f.frames
        );
    }
}

fn keystrokes(dir: &std::path::Path, sup: &Supervisor) {
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = stream(sup.event_bus(), 100, 10, None, stop.clone());
    let mut app = app(View::Runs);
    // A hundred live runs, one per stand-in stream.
    let template = app
        .rows
        .iter()
        .find(|r| r.run_id.as_deref() == Some(SHOWN_RUN))
        .cloned()
        .expect("the fixture's streaming run");
    for i in 0..100 {
        let mut row = template.clone();
        row.task_id = format!("T-9{i:03}");
        row.run_id = Some(format!("T-9{i:03}/r1"));
        row.title = format!("Live run {i}");
        app.rows.push(row);
    }
    let (keys_tx, keys_rx) = std::sync::mpsc::channel::<Instant>();
    let typist = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..200 {
            if keys_tx.send(Instant::now()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    let mut terminal = Terminal::new(Stamped::new(160, 48, None)).expect("terminal");
    let latencies = terminal.backend().key_latencies.clone();
    let link = attached(dir);
    let f = console_loop(&mut terminal, &mut app, &link, sup, Some(keys_rx));
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let _ = typist.join();
    let mut all = latencies.lock().expect("keys").clone();
    all.sort_by(f64::total_cmp);
    println!(
        "4. keystroke → redrawn frame, {} runs on the Runs view, 100 streaming 10 lines/s through the socket: {} keys, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; loop thread {:.2} %",
        app.rows.len(),
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        f.loop_cpu * 100.0
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sup, _daemon) = daemon(dir.path());
    cpu(dir.path(), &sup);
    latency(dir.path(), &sup);
    three_consoles(dir.path(), &sup);
    keystrokes(dir.path(), &sup);
}
