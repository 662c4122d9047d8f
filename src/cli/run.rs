//! `ecca run` and the decisions (`approve`, `revise`, `reject`, `resume`, `retry`,
//! `cancel`): each starts an in-process supervisor, follows the run on the event bus and
//! prints where it ended.

use super::handle::Handle;
use super::{Setup, output};
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::engine::fsm::Agent;
use crate::money::{format_usd, usd_to_micros};
use crate::store::{Store, TaskRecord};
use crate::supervisor::{
    Command, Delivery, Event, NewTask, Reply, Subscription, Supervisor, SupervisorOptions,
};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// What to build, in one line.
    #[arg(long, allow_hyphen_values = true)]
    pub task: String,
    /// More detail; bullet lines (`- …`) become separate subtasks.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub description: String,
    /// The client the work is for (default: `default`, created on first use).
    #[arg(long)]
    pub client: Option<String>,
    /// python, typescript, javascript, react-native or bash.
    #[arg(long, default_value = "python")]
    pub stack: String,
    /// This task's budget in US dollars (default: budgets.task_usd from the config).
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub budget_usd: Option<f64>,
    /// What the client pays for this task (a fixed-price job), e.g. 150 or $150.00: the
    /// revenue its margin is counted against.
    #[arg(long, value_name = "USD")]
    pub price: Option<String>,
    /// Use the offline simulated model and deliver nothing outside the data dir.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document at the end.
    #[arg(long)]
    pub json: bool,
    /// Create the task and leave it for the daily loop (`[schedule]`) to start.
    #[arg(long, conflicts_with = "auto_approve")]
    pub queue: bool,
    /// Approve the deliverable as soon as it is ready.
    #[arg(long)]
    pub auto_approve: bool,
    /// For a client with a repository: the branch to start from and open the pull request
    /// against (default: the client's configured base, else the remote's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base_branch: Option<String>,
    /// An acceptance criterion the harness must see proven by a passing command before the
    /// approval gate; repeat for several (`- [ ] …` lines of the description count too).
    #[arg(long = "accept", value_name = "TEXT", allow_hyphen_values = true)]
    pub accept: Vec<String>,
    /// Who writes the change: builtin (ecca's own loop), or, for a client with a repository,
    /// claude-code, codex or aider (`ecca agents check` says which are installed).
    #[arg(long, value_name = "KIND", default_value = "builtin")]
    pub agent: String,
    /// Also run the same spec with agent KIND, as a sibling task in its own worktree with
    /// the same budget: the two wait side by side in the console's Approvals view, and
    /// delivering one rejects the other.
    #[arg(long, value_name = "KIND", conflicts_with_all = ["queue", "auto_approve"])]
    pub compare: Option<String>,
}

const DEFAULT_CLIENT: &str = "default";

pub(super) async fn run(setup: &Setup, args: RunArgs) -> Result<(), String> {
    let mut signals = StopSignals::listen()?;
    if args.queue {
        // A [schedule] that cannot run is said before anything is stored.
        setup.config.daily_schedule()?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let provider = if args.dry_run {
        ProviderKind::Offline
    } else {
        setup.config.resolve_provider(&env)
    };
    if !args.dry_run
        && setup.config.models.provider == ProviderKind::Auto
        && provider == ProviderKind::Offline
    {
        return Err(
            "no model key is configured; set ANTHROPIC_API_KEY (or OPENAI_API_KEY), or pass --dry-run to use the offline simulated model"
                .into(),
        );
    }
    let budget_micros = args
        .budget_usd
        .map(usd_to_micros)
        .transpose()
        .map_err(|e| format!("--budget-usd: {e}"))?;
    let client_id = args.client.clone().unwrap_or_else(|| DEFAULT_CLIENT.into());
    let task = NewTask {
        client_id: client_id.clone(),
        title: args.task.clone(),
        description: args.description.clone(),
        stack: args.stack.clone(),
        source: "manual".into(),
        agent_kind: args.agent.clone(),
        budget_micros,
        provider: Some(provider),
        base_branch: args.base_branch.clone(),
        acceptance: args.accept.clone(),
        price_micros: args
            .price
            .as_deref()
            .map(crate::money::parse_usd)
            .transpose()
            .map_err(|e| format!("--price: {e}"))?,
    };
    // Everything is checked before the store changes.
    crate::supervisor::validate_task_fields(&task).map_err(|e| e.0)?;
    let compared: Option<Vec<String>> = match &args.compare {
        Some(other) => Some(
            crate::supervisor::compare_kinds(&[args.agent.clone(), other.clone()])
                .map_err(|e| e.0)?,
        ),
        None => None,
    };
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let client_missing = store.client(&client_id).map_err(|e| e.0)?.is_none();
    if client_missing && client_id != DEFAULT_CLIENT {
        crate::supervisor::validate_task(&store, &task).map_err(|e| e.0)?;
    }
    preflight(setup, provider).await?;

    let mut handle = Handle::open(setup, store).await?;
    // The tools are stopped however the run ends.
    let reported = async {
        if client_missing {
            let budget = setup.config.default_client_budget_micros();
            handle
                .execute(Command::UpsertClient {
                    id: client_id.clone(),
                    name: "Default client".into(),
                    monthly_budget_micros: budget,
                })
                .await?;
        }
        if args.queue {
            // Checked before the task is stored: a bad [schedule] queues nothing.
            let schedule = setup.config.daily_schedule()?;
            let reply = handle
                .execute(Command::QueueTask {
                    task: Box::new(task),
                })
                .await?;
            let Reply::TaskQueued { task_id } = reply else {
                return Err("the supervisor did not queue the task".into());
            };
            let next =
                schedule.and_then(|s| s.next_after(crate::time::now_ms()).map(|at| s.describe(at)));
            say_queued(&task_id, next.as_deref(), args.json);
            return Ok(());
        }
        if let Some(agents) = compared {
            return super::compare::run_compare(&mut handle, task, agents, &mut signals, args.json)
                .await;
        }
        let reply = handle.execute(Command::StartTask { task }).await?;
        let Reply::TaskStarted { task_id, .. } = reply else {
            return Err("the supervisor did not start the task".into());
        };
        let mut settled = handle.settle(&task_id, &mut signals).await?;
        if args.auto_approve && settled.status == TaskStatus::AwaitingApproval {
            handle
                .execute(Command::Approve {
                    task_id: task_id.clone(),
                    review: Default::default(),
                })
                .await?;
            settled = handle.settle(&task_id, &mut signals).await?;
        }
        report(handle.store(), &settled, args.json)
    }
    .await;
    handle.close().await;
    reported
}

fn say_queued(task_id: &str, next: Option<&str>, json: bool) {
    if json {
        let doc = serde_json::json!({ "task_id": task_id, "status": "pending", "next_loop": next });
        println!("{doc}");
        return;
    }
    match next {
        Some(at) => output::say(&format!(
            "{task_id} queued: the daily loop starts it at {at} (while the console or `ecca serve` runs)"
        )),
        None => output::say(&format!(
            "{task_id} queued, but the daily loop is off: set [schedule] enabled = true in the config to have it started"
        )),
    }
}

/// Which decision a command carries.
pub(super) enum Decision {
    Approve(crate::supervisor::ApprovalReview),
    Revise,
    Reject,
    Resume,
    Retry,
    Cancel,
}

pub(super) async fn decide(
    setup: &Setup,
    decision: Decision,
    task_id: &str,
    note: String,
) -> Result<(), String> {
    let mut signals = StopSignals::listen()?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    if store.task(task_id).map_err(|e| e.0)?.is_none() {
        return Err(format!(
            "task {task_id} does not exist; `ecca tasks` lists the tasks"
        ));
    }
    let mut handle = Handle::open(setup, store).await?;
    let task_id = task_id.to_string();
    let approving = matches!(decision, Decision::Approve(_));
    let command = match decision {
        Decision::Approve(review) => Command::Approve {
            task_id: task_id.clone(),
            review,
        },
        Decision::Revise => Command::Revise {
            task_id: task_id.clone(),
            note,
        },
        Decision::Reject => Command::Reject {
            task_id: task_id.clone(),
            note,
        },
        Decision::Resume => Command::Resume {
            task_id: task_id.clone(),
        },
        Decision::Retry => Command::Retry {
            task_id: task_id.clone(),
        },
        Decision::Cancel => Command::Cancel {
            task_id: task_id.clone(),
        },
    };
    let reported = async {
        handle.execute(command).await?;
        let settled = handle.settle(&task_id, &mut signals).await?;
        report(handle.store(), &settled, false)?;
        if approving && settled.status == TaskStatus::Delivered {
            super::compare::follow_siblings(&mut handle, &task_id, &mut signals).await?;
        }
        // A delivery that failed puts the task back at the gate; a script must not read
        // that as delivered.
        if approving && settled.status == TaskStatus::AwaitingApproval {
            return Err(format!(
                "task {task_id} was approved but not delivered, so it is awaiting approval again; fix what the delivery failure above names, then run `ecca approve {task_id}` again"
            ));
        }
        Ok(())
    }
    .await;
    handle.close().await;
    reported
}

/// Runs one command on a supervisor of this process, then follows the tasks it set going
/// (`follow`) until they rest, reporting each: the runs a raised cap resumed.
pub(super) async fn execute_and_follow(
    setup: &Setup,
    store: Store,
    command: Command,
    follow_tasks: &[String],
) -> Result<(), String> {
    let mut signals = StopSignals::listen()?;
    let mut handle = Handle::open(setup, store).await?;
    let reported = async {
        handle.execute(command).await?;
        for task_id in follow_tasks {
            let settled = handle.settle(task_id, &mut signals).await?;
            report(handle.store(), &settled, false)?;
        }
        Ok(())
    }
    .await;
    handle.close().await;
    reported
}

/// SIGTERM and SIGINT, listened for from the start of a command: a signal that arrived
/// before a listener existed would kill the process with the run left unmarked.
pub(super) struct StopSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn listen() -> Result<StopSignals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind| {
            signal(kind).map_err(|e| {
                format!("could not listen for stop signals: {e}; the process may be out of file descriptors")
            })
        };
        Ok(StopSignals {
            term: listen(SignalKind::terminate())?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }

    /// The name of the next stop signal.
    pub(super) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Waits until the task's run rests. A stop signal instead interrupts every run at its
/// last checkpoint and ends the command with the way to go on.
pub(super) async fn settle(
    sup: &Supervisor,
    task_id: &str,
    signals: &mut StopSignals,
) -> Result<TaskRecord, String> {
    tokio::select! {
        settled = sup.wait_settled(task_id) => settled.map_err(|e| e.0),
        signal = signals.next() => {
            let stopped = sup.interrupt_all().await.map_err(|e| e.0)?;
            let resume: Vec<String> = stopped.iter().map(|id| format!("`ecca resume {id}`")).collect();
            for id in &stopped {
                output::say(&format!("{id} interrupted: `ecca resume {id}` continues it from its last checkpoint"));
            }
            Err(if resume.is_empty() {
                format!("stopped by {signal}; no run was working")
            } else {
                format!(
                    "stopped by {signal}; {} interrupted at its last checkpoint; {} continues it",
                    stopped.join(", "),
                    resume.join(", ")
                )
            })
        }
    }
}

pub(super) async fn start(
    setup: &Setup,
    store: Store,
) -> Result<(Supervisor, super::mcp::ToolsGuard), String> {
    let tools = super::mcp::tools(setup).await?;
    let mut options = SupervisorOptions::new(setup.data_dir.clone(), setup.config.clone());
    options.store = Some(store);
    options.tools = tools.tools.clone();
    let sup = Supervisor::start(options).await.map_err(|e| e.0)?;
    tracing::info!(tools = %sup.tools_description(), "supervisor started");
    Ok((sup, tools))
}

/// Refuses an endpoint that does not answer before a task is stored against it.
async fn preflight(setup: &Setup, provider: ProviderKind) -> Result<(), String> {
    let env = |k: &str| std::env::var(k).ok();
    let endpoint = match provider {
        ProviderKind::Anthropic => setup.config.providers.anthropic(&env),
        ProviderKind::Openai => setup.config.providers.openai(&env),
        _ => return Ok(()),
    };
    crate::llm::preflight(provider.as_str(), &endpoint.base_url)
        .await
        .map_err(|e| e.to_string())
}

/// Stops printing progress and waits until the printer has finished its line, so that
/// nothing it prints lands after the command's last word.
pub(super) async fn stop_following(progress: tokio::task::JoinHandle<()>) {
    progress.abort();
    let _ = progress.await;
}

/// Prints the run's progress to stderr as it happens (stdout keeps only the result).
pub(super) fn follow(mut sub: Subscription) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(delivery) = sub.next().await {
            let event = match delivery {
                Delivery::Event(e) => e,
                Delivery::Lagged { missed } => {
                    output::tell(&format!(
                        "(progress display fell behind; {missed} updates not shown)"
                    ));
                    continue;
                }
            };
            if let Some(line) = progress_line(&event) {
                output::tell(&line);
            }
        }
    })
}

pub(super) fn progress_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::TaskCreated {
            task_id,
            client_id,
            title,
            stack,
            agent_kind,
            ..
        } => match agent_kind.as_str() {
            "builtin" => format!("{task_id} created for {client_id} ({stack}): {title}"),
            agent => format!("{task_id} created for {client_id} ({stack}, {agent}): {title}"),
        },
        Event::StateChanged {
            task_id,
            state,
            step,
            ..
        } => format!("{task_id} {} · {step}", state.as_str()),
        Event::CostRecorded {
            task_id,
            model,
            simulated,
            usage,
            estimated,
            cost_micros,
            task_total_micros,
            ..
        } => format!(
            "{task_id}   {model}{}: {} tokens{}, {} (task {})",
            if *simulated { " [simulated]" } else { "" },
            usage.total(),
            if *estimated { " (estimated)" } else { "" },
            format_usd(*cost_micros),
            format_usd(*task_total_micros)
        ),
        Event::ToolFinished {
            task_id,
            step,
            summary,
            ..
        } => format!("{task_id}   {step}: {summary}"),
        Event::Note { task_id, text, .. } => format!("{task_id}   note: {text}"),
        Event::Paused {
            task_id, reason, ..
        } => format!("{task_id} paused: {reason}"),
        Event::Delivered { task_id, url } => format!("{task_id} delivered to {url}"),
        Event::Recovered { interrupted } => format!(
            "{interrupted} run(s) were interrupted when ecca last stopped; `ecca resume ID` continues one"
        ),
        _ => return None,
    })
}

/// The repository side of a run: branch, result, checks, criteria and risk.
fn say_repo(r: &crate::engine::fsm::repo::RepoWork, result: Option<&str>) {
    if r.branch.is_empty() {
        return;
    }
    output::say(&format!(
        "  {} from {} @ {}{}",
        r.branch,
        r.base_branch,
        crate::engine::repo_prompts::short(&r.base_commit),
        result.map(|s| format!(" · {s}")).unwrap_or_default()
    ));
    if let Some(d) = &r.diff {
        output::say(&format!(
            "  {} file(s) changed, +{} -{} (`ecca diff` shows it)",
            d.files.len(),
            d.lines_added(),
            d.lines_removed()
        ));
    }
    for c in r.smoke.iter().chain(r.checks.iter()) {
        output::say(&format!(
            "  {} {}: {}{}",
            c.kind,
            c.status.as_str(),
            if c.command.is_empty() {
                "-"
            } else {
                &c.command
            },
            if c.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.reason)
            }
        ));
    }
    for c in &r.criteria {
        output::say(&format!(
            "  [{}] {} — {}",
            if c.met { "x" } else { " " },
            c.text,
            c.evidence
        ));
    }
    if let Some(risk) = &r.risk {
        output::say(&format!(
            "  risk {}/100{}{}",
            risk.score,
            if risk.needs_critical_review() {
                ": needs a critical review (--critical-reviewed)"
            } else {
                ""
            },
            if risk.blocks_approval() {
                "; a secret was found: approval needs --override-secret NOTE"
            } else {
                ""
            }
        ));
        for reason in &risk.reasons {
            output::say(&format!("    {reason}"));
        }
    }
}

/// Prints where a task ended and turns an unhappy end into an error.
pub(super) fn report(store: &Store, task: &TaskRecord, as_json: bool) -> Result<(), String> {
    if as_json {
        output::say_json(&task_doc(store, task)?)?;
    } else {
        say_task(store, task)?;
    }
    outcome(task)
}

/// Where a task ended, as one JSON document.
pub(super) fn task_doc(store: &Store, task: &TaskRecord) -> Result<serde_json::Value, String> {
    let run = store.latest_run(&task.id).map_err(|e| e.0)?;
    let agent: Option<Agent> = run
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.fsm_state).ok());
    let states: Vec<&str> = agent
        .as_ref()
        .map(|a| a.visited.iter().map(|s| s.as_str()).collect())
        .unwrap_or_default();
    Ok(json!({
        "task_id": task.id,
        "run_id": run.as_ref().map(|r| r.id.clone()),
        "client_id": task.client_id,
        "agent_kind": task.agent_kind,
        "compare_group": task.compare_group,
        "status": task.status.as_str(),
        "status_reason": task.status_reason,
        "iterations": task.iterations,
        "quality_score": task.quality_score,
        "tokens_used": task.tokens_used,
        "cost_micros": task.cost_micros,
        "cost_usd": format_usd(task.cost_micros),
        "cost_estimated": task.cost_estimated,
        "model_calls": task.model_calls,
        "provider": task.model_mode,
        "simulated": task.model_mode == "offline",
        "states": states,
        "skipped": agent.as_ref().map(|a| a.skipped.clone()).unwrap_or_default(),
        "deliverable": task.deliverable_url,
        "result_status": task.result_status,
        "repo": agent.as_ref().and_then(|a| a.repo.as_ref()).map(|r| json!({
            "worktree": r.worktree,
            "branch": r.branch,
            "base_branch": r.base_branch,
            "base_commit": r.base_commit,
            "commands": r.commands,
            "smoke": r.smoke,
            "checks": r.checks,
            "criteria": r.criteria,
            "files": r.diff.as_ref().map(|d| &d.files),
            "risk": r.risk,
            "commit": r.commit,
            "pushed": r.pushed,
            "pull_request": r.pr_url,
        })),
    }))
}

/// Where a task ended, in words.
pub(super) fn say_task(store: &Store, task: &TaskRecord) -> Result<(), String> {
    let run = store.latest_run(&task.id).map_err(|e| e.0)?;
    let agent: Option<Agent> = run
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.fsm_state).ok());
    let simulated = task.model_mode == "offline";
    {
        output::say(&format!(
            "{} {}: {} iteration(s), score {}, {} tokens, {}{}{} over {} model call(s)",
            task.id,
            task.status,
            task.iterations,
            task.quality_score
                .map(|s| format!("{s:.1}/10"))
                .unwrap_or_else(|| "-".into()),
            task.tokens_used,
            if task.cost_estimated { "~" } else { "" },
            format_usd(task.cost_micros),
            if simulated { " simulated" } else { "" },
            task.model_calls
        ));
        if let Some(a) = &agent {
            if let Some(r) = &a.repo {
                say_repo(r, task.result_status.as_deref());
            }
            for s in &a.skipped {
                output::say(&format!("  not verified: {s}"));
            }
        }
        match task.status {
            TaskStatus::AwaitingApproval => output::say(&format!(
                "  awaiting approval: `ecca approve {0}`, `ecca revise {0} --note TEXT` or `ecca reject {0} --note TEXT`",
                task.id
            )),
            TaskStatus::Delivered => output::say(&format!(
                "  deliverable: {}",
                task.deliverable_url.as_deref().unwrap_or("-")
            )),
            _ => {}
        }
    }
    Ok(())
}

/// A task that failed, paused or was interrupted, as the command's error.
pub(super) fn outcome(task: &TaskRecord) -> Result<(), String> {
    match task.status {
        TaskStatus::Failed if task.status_reason.as_deref() == Some("budget") => Err(format!(
            "task {} failed: it reached its budget of {} after spending {}, and the next call would have gone past it; run it again with a larger --budget-usd, or raise budgets.task_usd in the config",
            task.id,
            format_usd(task.budget_micros),
            format_usd(task.cost_micros)
        )),
        TaskStatus::Failed | TaskStatus::Paused | TaskStatus::Interrupted => Err(format!(
            "task {} {}: {}",
            task.id,
            task.status,
            task.status_reason
                .as_deref()
                .unwrap_or("no reason recorded")
        )),
        _ => Ok(()),
    }
}
