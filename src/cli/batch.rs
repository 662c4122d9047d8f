//! `ecca batch`: plan a manifest's cost, run it headless, follow, retry, cancel, list.

use super::{Setup, output, run};
use crate::batch::forecast::{Forecast, forecast};
use crate::batch::manifest;
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::money::format_usd;
use crate::store::{BatchRecord, Store, TaskRecord};
use crate::supervisor::socket::{Events, Remote, socket_path};
use crate::supervisor::{Command, Delivery, Event, NewBatch, Reply, Supervisor};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Print the cost forecast of a manifest: per app and for the batch, against the
    /// client's month and the batch's cap.
    Plan {
        file: PathBuf,
        /// Forecast for the offline simulated model.
        #[arg(long)]
        dry_run: bool,
    },
    /// Launch a manifest and follow it until every app has ended or awaits approval.
    Run {
        file: PathBuf,
        /// Apps working at once (inside the global limit); the manifest's otherwise.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Launch even when the forecast passes what remains of the month or the batch cap.
        #[arg(long)]
        yes: bool,
        /// Use the offline simulated model for every app.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every app of a batch: state, iteration, quality, cost, elapsed and result.
    Status {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Start a fresh attempt of every failed or cancelled app of a finished batch.
    Retry { id: String },
    /// Cancel every app of a batch that has not ended.
    Cancel { id: String },
    /// List batches, newest first.
    List,
}

fn read_manifest(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| {
        format!(
            "could not read the batch manifest {}: {e}; check the path (examples/rork-batch.toml is a sample)",
            file.display()
        )
    })
}

fn mode_for(setup: &Setup, dry_run: bool) -> ProviderKind {
    if dry_run {
        return ProviderKind::Offline;
    }
    let env = |k: &str| std::env::var(k).ok();
    setup.config.resolve_provider(&env)
}

pub(super) async fn command(setup: &Setup, command: BatchCommand) -> Result<(), String> {
    match command {
        BatchCommand::Plan { file, dry_run } => plan(setup, &file, dry_run),
        BatchCommand::Run {
            file,
            concurrency,
            yes,
            dry_run,
        } => {
            let text = read_manifest(&file)?;
            let new = NewBatch {
                manifest: text,
                source: file.display().to_string(),
                concurrency,
                confirmed_over_budget: yes,
                provider: Some(mode_for(setup, dry_run)),
            };
            follow_batch(
                setup,
                Command::StartBatch {
                    batch: Box::new(new),
                },
            )
            .await
        }
        BatchCommand::Status { id, json } => {
            let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
            status(&store, &id, json)
        }
        BatchCommand::Retry { id } => {
            follow_batch(setup, Command::RetryBatch { batch_id: id }).await
        }
        BatchCommand::Cancel { id } => {
            let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
            if let Some(remote) = Remote::connect(&setup.data_dir).await {
                return cancel_through_daemon(setup, remote, store, &id).await;
            }
            let (sup, tools) = run::start(setup, store).await?;
            let done = sup
                .execute(Command::CancelBatch {
                    batch_id: id.clone(),
                })
                .await
                .map_err(|e| e.0);
            sup.wait_all_settled().await;
            let shown = done.and_then(|_| status(sup.store(), &id, false));
            tools.stop().await;
            shown
        }
        BatchCommand::List => list(setup),
    }
}

fn plan(setup: &Setup, file: &Path, dry_run: bool) -> Result<(), String> {
    let text = read_manifest(file)?;
    let m = manifest::parse(&text, &file.display().to_string())?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let mode = mode_for(setup, dry_run);
    let f = forecast(
        &store,
        &setup.config,
        &m,
        mode.as_str(),
        &crate::time::current_month(),
    )?;
    output::say(&format!(
        "{} for {}: {} app(s), {} at once, {} model",
        m.name,
        m.client,
        m.apps.len(),
        m.concurrency,
        mode.as_str()
    ));
    print_forecast(&f);
    Ok(())
}

fn print_forecast(f: &Forecast) {
    output::say(&format!(
        "{:<28} {:>12} {:>12} {:>12}",
        "APP", "LOW", "EXPECTED", "HIGH"
    ));
    for a in &f.apps {
        output::say(&format!(
            "{:<28} {:>12} {:>12} {:>12}",
            super::lists::truncate(&a.name, 28),
            format_usd(a.low_micros),
            format_usd(a.expected_micros),
            format_usd(a.high_micros)
        ));
    }
    output::say(&format!(
        "{:<28} {:>12} {:>12} {:>12}",
        "TOTAL",
        format_usd(f.low_micros),
        format_usd(f.expected_micros),
        format_usd(f.high_micros)
    ));
    output::say(&f.basis);
    output::say(&format!(
        "left in the client's month: {}; batch cap: {}",
        format_usd(f.remaining_month_micros),
        f.batch_cap_micros
            .map(format_usd)
            .unwrap_or_else(|| "none".into())
    ));
    if let Some(why) = f.over_budget() {
        output::say(&format!(
            "over budget: {why}; `ecca batch run --yes` launches it anyway"
        ));
    }
}

fn say_through_daemon(setup: &Setup) {
    output::tell(&format!(
        "through ecca serve ({}): the batch goes on if this command stops",
        socket_path(&setup.data_dir).display()
    ));
}

/// Cancels a batch of `ecca serve` and waits until none of its apps is working.
async fn cancel_through_daemon(
    setup: &Setup,
    mut remote: Remote,
    store: Store,
    id: &str,
) -> Result<(), String> {
    say_through_daemon(setup);
    remote
        .execute(Command::CancelBatch {
            batch_id: id.to_string(),
        })
        .await?;
    for task in store.batch_tasks(id).map_err(|e| e.0)? {
        remote.wait_settled(&task.id).await?;
    }
    status(&store, id, false)
}

/// Says that the batch started (or started again) and how many apps are going; its id.
fn announce_started(reply: Reply) -> Result<String, String> {
    let Reply::BatchStarted { batch_id, task_ids } = reply else {
        return Err(format!("the supervisor answered {reply:?} to a batch"));
    };
    output::say(&format!(
        "{batch_id}: {} app(s) going; `ecca batch status {batch_id}` shows the scoreboard",
        task_ids.len()
    ));
    Ok(batch_id)
}

/// Starts or retries a batch of `ecca serve` and follows it to its end; a stop signal
/// leaves it working there.
async fn follow_batch_through_daemon(
    setup: &Setup,
    mut remote: Remote,
    command: Command,
) -> Result<(), String> {
    say_through_daemon(setup);
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    // Subscribed before the command, so that no event of the batch is missed.
    let listener = Remote::connect(&setup.data_dir)
        .await
        .ok_or("ecca serve stopped answering; `ecca serve` starts it again")?;
    let mut events = Events::Daemon(listener.subscribe().await?);
    let batch_id = announce_started(remote.execute(command).await?)?;
    follow_until_finished(None, &mut events, &batch_id).await?;
    status(&store, &batch_id, false)
}

/// Starts or retries a batch and follows it to its end: through `ecca serve` when it
/// runs, else on a supervisor of this process.
async fn follow_batch(setup: &Setup, command: Command) -> Result<(), String> {
    if let Some(remote) = Remote::connect(&setup.data_dir).await {
        return follow_batch_through_daemon(setup, remote, command).await;
    }
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let (sup, tools) = run::start(setup, store).await?;
    let followed = async {
        let mut events = Events::Local(sup.subscribe());
        let batch_id = announce_started(sup.execute(command).await.map_err(|e| e.0)?)?;
        follow_until_finished(Some(&sup), &mut events, &batch_id).await?;
        status(sup.store(), &batch_id, false)
    }
    .await;
    tools.stop().await;
    followed
}

/// Prints the batch's progress until it finishes. Ctrl-C interrupts the apps of a
/// supervisor of this process (`sup`) at their checkpoint; a batch of `ecca serve` goes on.
async fn follow_until_finished(
    sup: Option<&Supervisor>,
    events: &mut Events,
    batch_id: &str,
) -> Result<(), String> {
    loop {
        let next = tokio::select! {
            d = events.next() => d,
            _ = tokio::signal::ctrl_c() => {
                let Some(sup) = sup else {
                    return Err(format!(
                        "stopped by SIGINT; {batch_id} goes on in ecca serve (`ecca batch status {batch_id}` shows it)"
                    ));
                };
                let stopped = sup.interrupt_all().await.map_err(|e| e.0)?;
                return Err(format!(
                    "stopped by SIGINT; {} app(s) interrupted at their last checkpoint; `ecca resume TASK` continues one, `ecca batch status {batch_id}` shows them",
                    stopped.len()
                ));
            }
        };
        let Some(delivery) = next else {
            return Err(format!(
                "the supervisor stopped before {batch_id} ended; `ecca batch status {batch_id}` shows where it is"
            ));
        };
        let Delivery::Event(event) = delivery else {
            continue;
        };
        match &*event {
            Event::BatchFinished { batch_id: id, .. } if id == batch_id => return Ok(()),
            Event::AwaitingApproval {
                task_id,
                quality_score,
                ..
            } => output::say(&format!(
                "{task_id} awaiting approval{}",
                quality_score
                    .map(|q| format!(", score {q:.1}/10"))
                    .unwrap_or_default()
            )),
            Event::RunFinished {
                task_id,
                status,
                reason,
                ..
            } => output::say(&format!(
                "{task_id} {status}{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            _ => {}
        }
    }
}

#[derive(serde::Serialize)]
struct StatusDoc<'a> {
    batch: &'a BatchRecord,
    apps: Vec<AppLine<'a>>,
    cost_micros: i64,
    forecast: Option<Forecast>,
}

#[derive(serde::Serialize)]
struct AppLine<'a> {
    app: &'a str,
    task: &'a TaskRecord,
    elapsed_ms: i64,
    expected_micros: Option<i64>,
}

fn status(store: &Store, id: &str, json: bool) -> Result<(), String> {
    let batch = store
        .batch(id)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("batch {id} does not exist; `ecca batch list` lists the batches"))?;
    let tasks = store.batch_tasks(id).map_err(|e| e.0)?;
    let forecast: Option<Forecast> = batch
        .forecast
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok());
    let now = crate::time::now_ms();
    let apps: Vec<AppLine<'_>> = tasks
        .iter()
        .map(|t| AppLine {
            app: t.batch_app.as_deref().unwrap_or(&t.title),
            task: t,
            elapsed_ms: t.completed_at.unwrap_or(now) - t.created_at,
            expected_micros: forecast.as_ref().and_then(|f| {
                f.apps
                    .iter()
                    .find(|a| Some(&a.name) == t.batch_app.as_ref())
                    .map(|a| a.expected_micros)
            }),
        })
        .collect();
    let cost: i64 = tasks.iter().map(|t| t.cost_micros).sum();
    if json {
        return output::say_json(&StatusDoc {
            batch: &batch,
            apps,
            cost_micros: cost,
            forecast,
        });
    }
    let ended = batch.status != "running";
    output::say(&format!(
        "{} {} ({}, {} at once): {}",
        batch.id, batch.name, batch.client_id, batch.concurrency, batch.status
    ));
    output::say(&format!(
        "{:<8} {:<24} {:<18} {:>4} {:>6} {:>12} {:>12} {:>8}  RESULT",
        "TASK", "APP", "STATE", "ITER", "SCORE", "COST", "FORECAST", "ELAPSED"
    ));
    for a in &apps {
        let t = a.task;
        output::say(&format!(
            "{:<8} {:<24} {:<18} {:>4} {:>6} {:>12} {:>12} {:>7}s  {}",
            t.id,
            super::lists::truncate(a.app, 24),
            t.status.as_str(),
            t.iterations,
            t.quality_score
                .map(|q| format!("{q:.1}"))
                .unwrap_or_else(|| "-".into()),
            format_usd(t.cost_micros),
            a.expected_micros
                .map(format_usd)
                .unwrap_or_else(|| "-".into()),
            a.elapsed_ms / 1000,
            t.result_status
                .clone()
                .or_else(|| t.status_reason.clone())
                .unwrap_or_default()
        ));
    }
    let count = |s: TaskStatus| tasks.iter().filter(|t| t.status == s).count();
    output::say(&format!(
        "{} app(s): {} awaiting approval, {} delivered, {} failed, {} cancelled, {} working or pending; spent {}",
        tasks.len(),
        count(TaskStatus::AwaitingApproval),
        count(TaskStatus::Delivered),
        count(TaskStatus::Failed),
        count(TaskStatus::Cancelled),
        tasks
            .iter()
            .filter(|t| !t.status.is_terminal() && t.status != TaskStatus::AwaitingApproval)
            .count(),
        format_usd(cost)
    ));
    if let Some(f) = &forecast
        && ended
    {
        output::say(&format!(
            "forecast {} (range {} – {}) against actual {}; {}",
            format_usd(f.expected_micros),
            format_usd(f.low_micros),
            format_usd(f.high_micros),
            format_usd(cost),
            f.basis
        ));
    }
    if tasks.iter().any(|t| t.model_mode == "offline") {
        output::say("costs are simulated: the offline model made no real calls");
    }
    Ok(())
}

fn list(setup: &Setup) -> Result<(), String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let batches = store.batches().map_err(|e| e.0)?;
    if batches.is_empty() {
        output::say(
            "no batches yet; plan one with: ecca batch plan examples/rork-batch.toml --dry-run",
        );
        return Ok(());
    }
    for b in batches {
        output::say(&format!(
            "{:<8} {:<10} {:<10} {}  {}",
            b.id,
            super::lists::truncate(&b.client_id, 10),
            b.status,
            crate::time::format_ms(b.created_at),
            super::lists::truncate(&b.name, 40)
        ));
    }
    Ok(())
}
