//! The console's one loop: terminal input, supervisor events, finished background work and
//! a frame deadline, in one `select!`. A frame is drawn only when something changed, and at
//! most 60 times a second; with nothing happening, nothing is drawn. Anything slow (store
//! reads, commands) runs off the loop and comes back as a message.

use super::app::{App, Effect};
use super::link::{Events, Link};
use super::model::load_detail;
use super::views;
use crate::containers::watch::ContainerWatch;
use crate::store::Store;
use crate::supervisor::Command;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{Event as TermEvent, KeyEventKind};
use std::io::Write as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Shortest time between two frames (60 frames a second).
pub const FRAME: Duration = Duration::from_millis(16);

/// A terminal that can ring and show a notification; test backends stay silent.
pub trait Notifier {
    fn notify(&mut self, _text: &str) {}
}

impl<W: std::io::Write> Notifier for ratatui::backend::CrosstermBackend<W> {
    /// OSC 9 (a desktop notification in iTerm2, WezTerm, kitty, foot, Windows Terminal),
    /// then a bell for the others. Control characters are dropped from the text: it names
    /// tasks and reasons that came from outside.
    fn notify(&mut self, text: &str) {
        let clean: String = text.chars().filter(|c| !c.is_control()).collect();
        let _ = write!(self, "\x1b]9;ecca: {clean}\x07\x07");
        let _ = std::io::Write::flush(self);
    }
}

impl Notifier for ratatui::backend::TestBackend {}

/// How often a console whose daemon went away looks for it again.
const REATTACH: Duration = Duration::from_millis(500);

/// Events taken from the bus in one wake-up, at most.
const DRAIN: usize = 256;

/// Work that finished off the loop.
enum Done {
    Detail(u64, Box<Result<super::model::Detail, String>>),
    Sibling(u64, Box<Result<super::model::Detail, String>>),
    Rows(Result<Vec<super::model::RunRow>, String>),
    Highlighted(super::highlight::Reply),
    Command(Box<Command>, Result<(), String>),
    Clients(u64, Result<Vec<crate::budgets::ClientMonth>, String>),
    Forecast(
        u64,
        Box<Result<super::views::batch::LoadedForecast, String>>,
    ),
    Batches(u64, Result<Vec<crate::store::BatchRecord>, String>),
    Board(u64, Box<Result<super::views::batch::Board, String>>),
    Logs(u64, Vec<String>),
    ToolStats(Vec<crate::engine::tools::ToolCallStats>),
}

/// What ended the loop, and how many frames it drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopReport {
    pub frames: u64,
}

/// Runs the console until the operator quits, `stop` resolves, or input ends.
pub async fn run<B: Backend + Notifier, I>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut input: I,
    events: Events,
    link: &Link,
    store: Store,
    stop: impl std::future::Future<Output = ()>,
) -> Result<LoopReport, String>
where
    I: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(256);
    let to_loop = done_tx.clone();
    let highlighter = super::highlight::Highlighter::spawn(move |reply| {
        let _ = to_loop.blocking_send(Done::Highlighted(reply));
    });
    let switch_percent = link.config().budgets.switch_at_percent;
    // `None` while the daemon the console is attached to is away; then it is asked again
    // every half second.
    let mut events = Some(events);
    let mut reattach_at: Option<Instant> = None;
    // Effects to act on before waiting again: the start's loads, and loads that finished
    // work asks for.
    let mut pending: Vec<Effect> = app.start();
    let mut frames = 0u64;
    let mut last_frame = Instant::now() - FRAME;
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    // The containers' watcher, from the first time the Containers view opens.
    let mut containers: Option<ContainerWatch> = None;
    let mut logs_task: Option<tokio::task::JoinHandle<()>> = None;
    tokio::pin!(stop);
    loop {
        if app.dirty {
            app.now_ms = crate::time::now_ms();
            let due = last_frame + FRAME;
            if Instant::now() >= due {
                // Drawing records which diff lines it shows; start from none.
                app.detail.diff_view.set(None);
                terminal
                    .draw(|f| views::draw(f, app))
                    .map_err(|e| format!("could not draw: {e}"))?;
                frames += 1;
                last_frame = Instant::now();
                app.dirty = false;
                if let Some(request) = app.highlight_request() {
                    highlighter.ask(request);
                }
            }
        }
        let frame_due = app.dirty.then_some(last_frame + FRAME);
        // Elapsed times only move while something works: tick once a second then.
        let ticking = app.rows.iter().any(|r| {
            r.ended_at.is_none()
                && r.started_at.is_some()
                && !r.status.is_terminal()
                && r.waiting_since.is_none()
        });
        let effects: Vec<Effect> = if !pending.is_empty() {
            std::mem::take(&mut pending)
        } else {
            tokio::select! {
                _ = &mut stop => break,
                input = input.next() => match input {
                    None => break,
                    Some(Err(e)) => return Err(format!("could not read the terminal: {e}")),
                    Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => app.key(k),
                    Some(Ok(TermEvent::Mouse(m))) => app.mouse(m),
                    Some(Ok(TermEvent::Paste(text))) => {
                        app.paste(&text);
                        vec![]
                    }
                    Some(Ok(TermEvent::Resize(_, _))) => {
                        app.dirty = true;
                        vec![]
                    }
                    Some(Ok(_)) => vec![],
                },
                delivery = next_delivery(&mut events) => match (delivery, &mut events) {
                    (Some(d), Some(source)) => {
                        // The events already waiting go in the same wake-up (a bounded
                        // number, so keys are never kept waiting behind a flood).
                        let mut effects = app.apply(&d);
                        for _ in 0..DRAIN {
                            match source.try_next() {
                                Some(d) => effects.extend(app.apply(&d)),
                                None => break,
                            }
                        }
                        effects
                    }
                    _ if link.is_daemon() => {
                        // The daemon went away (stopped, restarted, killed): its runs are
                        // its own; say so and look for it again.
                        events = None;
                        reattach_at = Some(Instant::now() + REATTACH);
                        app.report_error(format!(
                            "lost ecca serve for {}; reattaching when it is back (`ecca serve` starts it)",
                            link.data_dir().display()
                        ));
                        vec![]
                    }
                    _ => break,
                },
                _ = sleep_until(reattach_at) => match link.subscribe().await {
                    Some(source) => {
                        events = Some(source);
                        reattach_at = None;
                        app.notice = Some(("attached to ecca serve again".into(), false));
                        app.dirty = true;
                        // What happened while away is in the store.
                        vec![Effect::ReloadRows]
                    }
                    None => {
                        reattach_at = Some(Instant::now() + REATTACH);
                        vec![]
                    }
                },
                done = done_rx.recv() => {
                    match done {
                        Some(Done::Detail(req, result)) => app.detail_loaded(req, *result),
                        Some(Done::Sibling(req, result)) => app.sibling_loaded(req, *result),
                        Some(Done::Command(cmd, result)) => app.command_done(&cmd, result),
                        Some(Done::Rows(Ok(rows))) => app.rows_loaded(rows),
                        Some(Done::Highlighted(reply)) => app.highlighted(reply),
                        Some(Done::Rows(Err(e))) => app.report_error(e),
                        Some(Done::Clients(req, months)) => {
                            // Off the Clients view only the header's warning shows them.
                            let before = app.clients.warning_text();
                            pending.extend(app.clients.loaded(req, months));
                            app.dirty |= app.view == super::app::View::Clients
                                || app.clients.warning_text() != before;
                        }
                        Some(Done::Forecast(req, f)) => {
                            app.dirty = true;
                            app.batch.forecast_loaded(req, *f);
                        }
                        Some(Done::Batches(req, b)) => {
                            app.dirty = true;
                            app.batch.batches_loaded(req, b);
                        }
                        Some(Done::Board(req, b)) => {
                            app.dirty = true;
                            app.batch.board_loaded(req, *b);
                        }
                        Some(Done::Logs(req, lines)) => app.container_logs(req, lines),
                        Some(Done::ToolStats(stats)) => app.tool_stats_loaded(stats),
                        None => {}
                    }
                    vec![]
                }
                snapshot = snapshot_changed(&mut containers) => app.containers_changed(snapshot),
                _ = sleep_until(frame_due) => vec![],
                _ = sleep_until(ticking.then_some(next_tick)) => {
                    next_tick = Instant::now() + Duration::from_secs(1);
                    app.dirty = true;
                    vec![]
                }
            }
        };
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(LoopReport { frames }),
                Effect::Notify(text) => terminal.backend_mut().notify(&text),
                Effect::LoadDetail { task_id, request } => {
                    let store = store.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = load_detail(&store, &task_id, switch_percent);
                        let _ = tx.blocking_send(Done::Detail(request, Box::new(result)));
                    });
                }
                Effect::LoadSibling { task_id, request } => {
                    let store = store.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = load_detail(&store, &task_id, switch_percent);
                        let _ = tx.blocking_send(Done::Sibling(request, Box::new(result)));
                    });
                }
                Effect::ReloadRows => {
                    let store = store.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let rows = super::model::load_rows(&store);
                        let _ = tx.blocking_send(Done::Rows(rows));
                    });
                }
                Effect::LoadClients { request } => {
                    let store = store.clone();
                    let link = link.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        let held = link.reserved().await;
                        let _ = tokio::task::spawn_blocking(move || {
                            let reserved = |client: &str| held.get(client).copied().unwrap_or(0);
                            let months = super::loads::clients(
                                &store,
                                link.config(),
                                &reserved,
                                crate::time::now_ms(),
                            );
                            let _ = tx.blocking_send(Done::Clients(request, months));
                        })
                        .await;
                    });
                }
                Effect::LoadForecast { path, request } => {
                    let store = store.clone();
                    let config = link.config().clone();
                    let tx = done_tx.clone();
                    let mode = app.header.provider.as_str().to_string();
                    tokio::task::spawn_blocking(move || {
                        let f = super::loads::forecast_of(&store, &config, &path, &mode);
                        let _ = tx.blocking_send(Done::Forecast(request, Box::new(f)));
                    });
                }
                Effect::LoadBatches { request } => {
                    let store = store.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let b = super::loads::batches(&store);
                        let _ = tx.blocking_send(Done::Batches(request, b));
                    });
                }
                Effect::LoadBatch { batch_id, request } => {
                    let store = store.clone();
                    let tx = done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let b = super::loads::board(&store, &batch_id);
                        let _ = tx.blocking_send(Done::Board(request, Box::new(b)));
                    });
                }
                Effect::WatchContainers => {
                    if containers.is_none() {
                        containers = Some(ContainerWatch::spawn());
                    }
                    app.containers.servers =
                        crate::mcp::registry::Registry::of_data_dir(link.data_dir())
                            .map(|r| r.servers.keys().cloned().collect())
                            .unwrap_or_default();
                }
                Effect::LoadToolStats => {
                    let link = link.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(Done::ToolStats(link.tool_stats().await)).await;
                    });
                }
                Effect::StopLogs => {
                    if let Some(task) = logs_task.take() {
                        task.abort();
                    }
                }
                Effect::FollowLogs { container, request } => {
                    if let Some(task) = logs_task.take() {
                        task.abort();
                    }
                    logs_task = Some(tokio::spawn(follow_logs(
                        container,
                        request,
                        done_tx.clone(),
                    )));
                }
                Effect::Send(command) => {
                    let link = link.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        let result = link.execute(command.clone()).await;
                        let _ = tx.send(Done::Command(Box::new(command), result)).await;
                    });
                }
            }
        }
    }
    if let Some(task) = logs_task.take() {
        task.abort();
    }
    Ok(LoopReport { frames })
}

/// The next delivery of the supervisor's events; never, while there is no source.
async fn next_delivery(events: &mut Option<Events>) -> Option<crate::supervisor::Delivery> {
    match events {
        Some(source) => source.next().await,
        None => std::future::pending().await,
    }
}

/// The watcher's next snapshot; never, while there is no watcher.
async fn snapshot_changed(
    watch: &mut Option<ContainerWatch>,
) -> std::sync::Arc<crate::containers::watch::ContainersSnapshot> {
    match watch {
        Some(w) => match w.snapshots.changed().await {
            Ok(()) => w.snapshots.borrow_and_update().clone(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Follows a container's logs, sending what arrived together as one message.
async fn follow_logs(container: String, request: u64, tx: mpsc::Sender<Done>) {
    let engine = match crate::containers::Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.send(Done::Logs(request, vec![e.0])).await;
            return;
        }
    };
    let mut lines = Box::pin(engine.log_lines(&container, true, 500).ready_chunks(512));
    while let Some(chunk) = lines.next().await {
        let text = chunk
            .into_iter()
            .map(|l| l.unwrap_or_else(|e| e.0))
            .collect();
        if tx.send(Done::Logs(request, text)).await.is_err() {
            return;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
