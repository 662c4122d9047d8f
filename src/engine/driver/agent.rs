//! The driver's side of a third-party agent run (Claude Code, Codex CLI, Aider): the CLI
//! runs in the worktree as a supervised child, its parsed events drive the run's panes,
//! every model call it reports becomes a cost row, and it is stopped at the task's budget.
//! Whether it succeeded is judged from its output stream and from the worktree, never from
//! its exit code; the checks, evaluator and approval gate after it are the built-in loop's.

use super::{Driver, event_op};
use crate::agents::events::{AgentEvent as Seen, AgentOutcome, CallUsage, StreamParser};
use crate::agents::process::{self, Launch, StopReason};
use crate::agents::registry::{self, AgentKindSpec, Fill};
use crate::agents::{AiderStdout, ClaudeStream, CodexStream};
use crate::config::Config;
use crate::engine::fsm::{Agent, AgentEvent, Effect};
use crate::ledger::{CallQuote, Reservation};
use crate::money::{Micros, Price, Usage, format_usd};
use crate::store::{CostRow, StoreError};
use crate::supervisor::Event;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything fixed before an agent kind can run: what to start, against which endpoint,
/// with which key, for how long.
#[derive(Clone)]
pub struct AgentSetup {
    pub spec: AgentKindSpec,
    pub agents_dir: PathBuf,
    pub model: String,
    pub base_url: String,
    /// Only ever put in the child's environment.
    pub api_key: String,
    pub timeout: Duration,
    pub stall: Duration,
    pub config: Config,
}

impl std::fmt::Debug for AgentSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("AgentSetup")
            .field("kind", &self.spec.name)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// The setup of agent kind `kind` for client `client_id` from the config, the client's
/// stored key (`stored_key(provider)`, from `ecca credentials`) or else ecca's environment,
/// or why it cannot run (unknown kind, no key).
pub fn setup_for(
    kind: &str,
    client_id: &str,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    stored_key: &dyn Fn(&str) -> Result<Option<String>, String>,
) -> Result<AgentSetup, String> {
    let spec = registry::kind(kind)?;
    let endpoint = match spec.provider.as_str() {
        "anthropic" => config.providers.anthropic(env),
        _ => config.providers.openai(env),
    };
    let api_key = match stored_key(&spec.provider)? {
        Some(key) => key,
        None => env(&endpoint.api_key_env)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                format!(
                    "{} needs an API key: store one for the client (`ecca credentials add --client {client_id} --provider {} --from-env VAR`) or set {} in ecca's environment",
                    spec.display, spec.provider, endpoint.api_key_env
                )
            })?,
    };
    let a = &config.agents;
    Ok(AgentSetup {
        agents_dir: a
            .dir
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(registry::default_agents_dir),
        model: a
            .models
            .get(kind)
            .cloned()
            .unwrap_or_else(|| spec.model.clone()),
        base_url: a.base_urls.get(kind).cloned().unwrap_or(endpoint.base_url),
        api_key,
        timeout: Duration::from_secs_f64((a.timeout_minutes * 60.0).max(1.0)),
        stall: Duration::from_secs_f64((a.stall_minutes * 60.0).max(1.0)),
        config: config.clone(),
        spec,
    })
}

/// The parser of the kind's output, given where this run's side files are: Codex's
/// session rollout (per-call usage) under its home, Aider's analytics log (its calls).
fn parser_for(spec: &AgentKindSpec, model: &str, fill: &Fill) -> Box<dyn StreamParser + Send> {
    match spec.parser.as_str() {
        "codex" => Box::new(
            CodexStream::new(model)
                .with_cwd(fill.worktree.to_string_lossy())
                .with_codex_home(fill.home.join(".codex")),
        ),
        "aider" => Box::new(AiderStdout::new().with_analytics_log(fill.analytics)),
        _ => Box::new(ClaudeStream::new()),
    }
}

/// What one agent run cost, as ecca recorded it while it ran.
#[derive(Default)]
struct Spend {
    /// Per model: what the rows of this run hold.
    by_model: BTreeMap<String, Micros>,
    total: Micros,
}

/// How the agent's run ended, for the machine.
struct Judged {
    ok: bool,
    reason: String,
    changed: Vec<String>,
}

impl Judged {
    /// A run that failed before the agent changed anything.
    fn failed(reason: String) -> Judged {
        Judged {
            ok: false,
            reason,
            changed: vec![],
        }
    }
}

impl Driver<'_> {
    pub(super) async fn run_agent(
        &mut self,
        agent: &mut Agent,
        kind: &str,
        prompt: &str,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let judged = self.supervise(agent, kind, prompt).await;
        if ctx.cancel.is_cancelled() {
            let next = agent.handle(AgentEvent::Cancel);
            return self.persist(agent, vec![]).await.map(|()| next);
        }
        let record = event_op(
            &ctx.scope,
            "agent",
            serde_json::json!({"kind": kind, "ok": judged.ok, "reason": judged.reason, "changed": judged.changed}),
        );
        let next = agent.handle(AgentEvent::AgentExited {
            ok: judged.ok,
            reason: judged.reason,
            changed: judged.changed,
        });
        self.persist(agent, vec![record]).await.map(|()| next)
    }

    fn note(&self, text: String) {
        let ctx = self.ctx;
        ctx.bus.publish(Event::Note {
            task_id: ctx.scope.task_id.clone(),
            run_id: ctx.scope.run_id.clone(),
            text,
        });
    }

    async fn supervise(&mut self, agent: &mut Agent, kind: &str, prompt: &str) -> Judged {
        let ctx = self.ctx;
        let failed = Judged::failed;
        let setup = match &ctx.agent {
            Some(Ok(setup)) if setup.spec.name == kind => setup.clone(),
            Some(Err(why)) => return failed(why.clone()),
            _ => return failed(format!("agent {kind} is not set up for this run")),
        };
        let worktree = match &agent.repo {
            Some(r) => crate::repo::worktree::worktrees_dir(&ctx.data_dir).join(&r.worktree),
            None => {
                return failed(format!(
                    "{kind} works in a client's repository, and this task's client has none"
                ));
            }
        };
        // `--version` runs a process: off the runtime's threads.
        let (spec, dir) = (setup.spec.clone(), setup.agents_dir.clone());
        let installed =
            match tokio::task::spawn_blocking(move || registry::check_installed(&spec, &dir)).await
            {
                Ok(installed) => installed,
                Err(e) => return failed(format!("checking {} failed: {e}", setup.spec.display)),
            };
        if !installed.usable {
            return failed(format!("{}: {}", setup.spec.display, installed.detail));
        }
        // The task's remaining budget is held for the whole run, then released to what the
        // calls cost.
        let cap = match ctx.ledger.task_remaining(&ctx.scope.task_id) {
            Ok(left) if left > 0 => left,
            Ok(_) => {
                return failed(format!(
                    "budget: task {} has nothing left of its budget; raise it (`ecca budget {} AMOUNT --note WHY`) and retry",
                    ctx.scope.task_id, ctx.scope.task_id
                ));
            }
            Err(e) => return failed(format!("budget: {e}")),
        };
        let quote = CallQuote {
            provider: setup.spec.provider.clone(),
            model: setup.model.clone(),
            purpose: format!("agent:{kind}"),
            simulated: false,
            price: setup
                .config
                .price_of(&setup.model)
                .unwrap_or(Price::per_mtok_usd(0.0, 0.0, 0.0, 0.0)),
            prompt_tokens_estimate: 0,
            max_output_tokens: 0,
        };
        let month = crate::time::current_month();
        let mut held = match ctx
            .ledger
            .reserve_amount(ctx.scope.clone(), quote, &month, cap)
        {
            Ok(r) => r,
            Err(refused) => return failed(format!("budget: {refused}")),
        };
        let judged = self
            .run_child(&setup, &worktree, prompt, &mut held, cap)
            .await;
        ctx.ledger.release(held);
        judged
    }

    async fn run_child(
        &mut self,
        setup: &AgentSetup,
        worktree: &std::path::Path,
        prompt: &str,
        held: &mut Reservation,
        cap: Micros,
    ) -> Judged {
        let ctx = self.ctx;
        let failed = Judged::failed;
        let homes = ctx.data_dir.join("agent-homes");
        if let Err(e) = std::fs::create_dir_all(&homes) {
            return failed(format!("could not make {}: {e}", homes.display()));
        }
        let home = match tempfile::Builder::new()
            .prefix(&format!("{}-", ctx.scope.task_id))
            .tempdir_in(&homes)
        {
            Ok(h) => h,
            Err(e) => {
                return failed(format!(
                    "could not make the agent's home under {}: {e}",
                    homes.display()
                ));
            }
        };
        let analytics = home.path().join("analytics.jsonl");
        let budget_usd = format!("{:.6}", cap as f64 / 1e6);
        let price = setup.config.price_of(&setup.model);
        // Micro-dollars per million tokens are 1e-12 dollars per token.
        let per_token =
            |micros: Option<Micros>| format!("{:.12}", micros.unwrap_or(0) as f64 / 1e12);
        let input_per_token = per_token(price.map(|p| p.input));
        let output_per_token = per_token(price.map(|p| p.output));
        let fill = Fill {
            prompt,
            model: &setup.model,
            budget_usd: &budget_usd,
            home: home.path(),
            worktree,
            base_url: &setup.base_url,
            api_key: &setup.api_key,
            analytics: &analytics,
            input_per_token: &input_per_token,
            output_per_token: &output_per_token,
        };
        for (path, content) in setup.spec.files(&fill) {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, content));
            if let Err(e) = written {
                return failed(format!("could not write {}: {e}", path.display()));
            }
        }
        let launch = Launch {
            program: setup.spec.program_path(&setup.agents_dir),
            args: setup.spec.args(&fill),
            env: setup.spec.env(&fill),
            cwd: worktree.to_path_buf(),
            timeout: setup.timeout,
            stall: setup.stall,
            grace: Duration::from_secs(5),
            // The home's name is unique among runs, live and past.
            marker: format!(
                "{}:{}",
                ctx.scope.run_id,
                home.path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        };
        let mut running = match process::spawn(launch, parser_for(&setup.spec, &setup.model, &fill))
        {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        ctx.bus.publish(Event::ModelStarted {
            task_id: ctx.scope.task_id.clone(),
            run_id: ctx.scope.run_id.clone(),
            purpose: format!("agent {}", setup.spec.name),
            provider: setup.spec.provider.clone(),
            model: setup.model.clone(),
            simulated: false,
            prompt_estimate_micros: 0,
            output_price_micros: price.map(|p| p.output).unwrap_or(0),
        });
        let mut spend = Spend::default();
        let mut outcome: Option<AgentOutcome> = None;
        let mut cancel_sent = false;
        let mut text = String::new();
        loop {
            let seen = tokio::select! {
                seen = running.next() => seen,
                // Once: a cancelled token stays ready, and polling it again would spin.
                _ = ctx.cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    running.stop(StopReason::Cancelled);
                    continue;
                }
            };
            let Some(seen) = seen else { break };
            // Streamed text and tool lines gathered from one read go out as one delta,
            // before anything else the agent did after them.
            let streamed = matches!(seen, Seen::Text(_) | Seen::ToolCall { .. });
            if !streamed && !text.is_empty() {
                ctx.bus
                    .publish_delta_gathered(&ctx.scope.run_id, &std::mem::take(&mut text));
            }
            match seen {
                Seen::Started { session_id, model } => self.note(format!(
                    "{} started (session {session_id}{})",
                    setup.spec.display,
                    model.map(|m| format!(", model {m}")).unwrap_or_default()
                )),
                Seen::Text(delta) => text.push_str(&delta),
                Seen::ToolCall { name, detail } => {
                    let line = if detail.is_empty() { name } else { detail };
                    text.push_str(&format!("\n▸ {line}\n"));
                }
                Seen::FileEdit { path } => {
                    self.note(format!("{} edited {path}", setup.spec.display))
                }
                Seen::Command {
                    command, exit_code, ..
                } => self.note(format!(
                    "{} ran `{command}`{}",
                    setup.spec.display,
                    exit_code
                        .map(|c| format!(" → exit {c}"))
                        .unwrap_or_default()
                )),
                Seen::Retry { attempt, detail } => self.note(format!(
                    "{} retries (attempt {attempt}): {detail}",
                    setup.spec.display
                )),
                Seen::Call(call) => {
                    if let Err(e) = self.record_call(setup, held, &call, &mut spend).await {
                        tracing::error!(task = %ctx.scope.task_id, "an agent's cost row was not written: {}", e.0);
                    }
                    if spend.total >= cap {
                        running.stop(StopReason::Budget(format!(
                            "the agent's calls reached {} of the task's {} left; it was stopped",
                            format_usd(spend.total),
                            format_usd(cap)
                        )));
                    }
                }
                Seen::Finished(o) => outcome = Some(o),
            }
            if streamed && !text.is_empty() && !running.has_ready() {
                ctx.bus
                    .publish_delta_gathered(&ctx.scope.run_id, &std::mem::take(&mut text));
            }
        }
        if !text.is_empty() {
            ctx.bus.publish_delta_gathered(&ctx.scope.run_id, &text);
        }
        let exit = running.exit().await;
        if let Some(o) = &outcome {
            self.settle_reported(setup, held, o, &mut spend).await;
        }
        let changed = {
            let worktree = worktree.to_path_buf();
            tokio::task::spawn_blocking(move || changed_files(&worktree))
                .await
                .unwrap_or_default()
        };
        let outcome = outcome.unwrap_or(AgentOutcome {
            ok: false,
            reason: "the agent's output ended without a result".into(),
            reported_cost: None,
            per_model: vec![],
            permission_denials: 0,
        });
        let (ok, reason) = match &exit.stopped {
            Some(stop) => (false, stop.sentence()),
            None if !outcome.ok => {
                let tail = exit.stderr_tail.trim();
                let tail = tail.lines().last().unwrap_or("");
                let why = if tail.is_empty() || outcome.reason.contains(tail) {
                    outcome.reason.clone()
                } else {
                    format!("{} (stderr: {tail})", outcome.reason)
                };
                (false, why)
            }
            None => (true, outcome.reason.clone()),
        };
        self.note(format!(
            "{} exited ({}): {} spent; {}",
            setup.spec.display,
            match (exit.code, exit.signal) {
                (Some(c), _) => format!("code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "status unknown".into(),
            },
            format_usd(spend.total),
            if ok { "judged done" } else { "judged failed" }
        ));
        Judged {
            ok,
            reason,
            changed,
        }
    }

    /// One cost row for a call the agent reported, priced by ecca's table (or at the
    /// agent's own figure when ecca has no price for the model).
    async fn record_call(
        &mut self,
        setup: &AgentSetup,
        held: &mut Reservation,
        call: &CallUsage,
        spend: &mut Spend,
    ) -> Result<(), StoreError> {
        let ours = setup
            .config
            .price_of(&call.model)
            .map(|p| p.cost(&call.usage));
        let cost = ours.or(call.reported_cost).unwrap_or(0);
        // No usage priced by ecca and no figure from the agent: the row is a guess.
        let estimated = ours.is_none() && call.reported_cost.is_none();
        let purpose = format!("agent:{}", setup.spec.name);
        self.write_row(
            setup,
            held,
            &call.model,
            call.usage,
            cost,
            purpose,
            estimated,
            spend,
        )
        .await
    }

    /// Writes one of the agent's cost rows within the run's reservation and tells
    /// subscribers.
    #[allow(clippy::too_many_arguments)]
    async fn write_row(
        &mut self,
        setup: &AgentSetup,
        held: &mut Reservation,
        model: &str,
        usage: Usage,
        cost: Micros,
        purpose: String,
        estimated: bool,
        spend: &mut Spend,
    ) -> Result<(), StoreError> {
        let ctx = self.ctx;
        let row = CostRow {
            at: crate::time::now_ms(),
            month: held.month.clone(),
            client_id: ctx.scope.client_id.clone(),
            task_id: ctx.scope.task_id.clone(),
            run_id: ctx.scope.run_id.clone(),
            provider: setup.spec.provider.clone(),
            model: model.to_string(),
            purpose,
            simulated: false,
            usage,
            cost_micros: cost,
            reserved_micros: 0,
            outcome: "ok".into(),
            estimated,
        };
        let settled = ctx.ledger.record_within(held, row).await?;
        *spend.by_model.entry(model.to_string()).or_default() += cost;
        spend.total += cost;
        self.publish_cost_as(model, usage, estimated, false, settled);
        Ok(())
    }

    /// Where the agent reports its own cost per model (Claude Code's `modelUsage`), the
    /// ledger keeps the agent's figure: a settling row carries the difference from ecca's
    /// prices, so both stay visible and the rows add up to what the agent reports.
    async fn settle_reported(
        &mut self,
        setup: &AgentSetup,
        held: &mut Reservation,
        outcome: &AgentOutcome,
        spend: &mut Spend,
    ) {
        for total in &outcome.per_model {
            let Some(reported) = total.reported_cost else {
                continue;
            };
            let recorded = spend.by_model.get(&total.model).copied().unwrap_or(0);
            let difference = reported - recorded;
            if difference == 0 {
                continue;
            }
            self.note(format!(
                "{} reports {} for {}; ecca's prices give {}; the ledger keeps the agent's figure (difference {})",
                setup.spec.display,
                format_usd(reported),
                total.model,
                format_usd(recorded),
                format_usd(difference)
            ));
            let purpose = format!("agent:{}:reported-difference", setup.spec.name);
            let usage = Usage::default();
            if let Err(e) = self
                .write_row(
                    setup,
                    held,
                    &total.model,
                    usage,
                    difference,
                    purpose,
                    false,
                    spend,
                )
                .await
            {
                tracing::error!(task = %self.ctx.scope.task_id, "a settling cost row was not written: {}", e.0);
            }
        }
    }
}

/// The files that differ from the worktree's last commit, tracked or new: what the agent
/// changed, whatever it says it did.
fn changed_files(worktree: &std::path::Path) -> Vec<String> {
    let output = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(worktree)
        .output();
    let Ok(output) = output else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.get(3..))
        .map(str::to_string)
        .collect()
}
