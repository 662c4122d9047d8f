//! The driver performs an agent's effects and feeds the results back. It is the only place
//! where a run touches the world: models through the ledger, tools through [`Tools`],
//! files through [`crate::delivery`], and the store through checkpoints.
//!
//! Every answer is folded into the machine *before* it is persisted, and the new checkpoint
//! commits in the same transaction as the cost row of the call that produced it. A crash
//! therefore either loses the call entirely (it is made again on resume) or keeps both the
//! cost and its effect: never a cost without its result, never a result counted twice.

use super::fsm::{Agent, AgentEvent, AgentState, Effect, End, ModelCall, Phase, Refusal, Tier};
use super::tools::{ToolOutcome, ToolReply, Tools};
use crate::delivery::{BundleInfo, write_bundle};
use crate::domain::TaskStatus;
use crate::ledger::{CallQuote, CallScope, Ledger, Refused, Settled};
use crate::llm::{ModelRequest, Provider, complete};
use crate::money::{Price, Usage};
use crate::store::{Store, StoreError, WriteOp};
use crate::supervisor::{Event, EventBus};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

mod agent;
mod repo;

pub use agent::{AgentSetup, setup_for};

/// Which model serves each tier, on which provider, at what price.
pub struct ModelRouter {
    pub provider: Arc<dyn Provider>,
    pub planner: String,
    pub writer: String,
    pub cheap: String,
    pub prices: Vec<(String, Price)>,
}

impl ModelRouter {
    pub fn model_for(&self, tier: Tier) -> &str {
        match tier {
            Tier::Planner => &self.planner,
            Tier::Writer => &self.writer,
            Tier::Cheap => &self.cheap,
        }
    }

    fn price_of(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .find(|(m, _)| m == model)
            .map(|(_, p)| *p)
    }
}

/// Everything a run needs from its surroundings.
pub struct RunContext {
    pub scope: CallScope,
    pub task_title: String,
    pub store: Store,
    pub ledger: Ledger,
    pub models: Arc<ModelRouter>,
    pub tools: Arc<dyn Tools>,
    pub bus: EventBus,
    pub cancel: CancellationToken,
    pub data_dir: PathBuf,
    /// The client's repository, for runs that work in one.
    pub workspaces: Arc<dyn super::workspace::Workspaces>,
    /// Which attempt of the task this run is (names its worktree).
    pub attempt: i64,
    /// The task's base branch, when it names one.
    pub base_branch: Option<String>,
    /// For a task of a third-party agent kind: its setup, or why it cannot run.
    pub agent: Option<Result<AgentSetup, String>>,
}

/// Why a drive stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum RunExit {
    AwaitingApproval,
    Paused(String),
    Ended(End),
    /// The store refused a checkpoint; the run is left as last committed.
    StoreFailed(String),
}

/// The task status and reason that an agent's phase stands for.
pub fn task_status(agent: &Agent) -> (TaskStatus, Option<String>) {
    match &agent.phase {
        Phase::Pending => (TaskStatus::Pending, None),
        Phase::AwaitingApproval => (TaskStatus::AwaitingApproval, None),
        Phase::Delivering | Phase::Storing => (TaskStatus::Delivering, None),
        Phase::Paused { reason, .. } => (TaskStatus::Paused, Some(reason.clone())),
        Phase::Done {
            end: End::Delivered,
        } => (TaskStatus::Delivered, None),
        Phase::Done {
            end: End::Failed { reason },
        } => (TaskStatus::Failed, Some(reason.clone())),
        Phase::Done {
            end: End::Rejected { note },
        } => (TaskStatus::Rejected, Some(note.clone())),
        Phase::Done {
            end: End::Cancelled,
        } => (
            TaskStatus::Cancelled,
            Some("cancelled by the operator".into()),
        ),
        _ if agent.revision_note.is_some() => (TaskStatus::Revising, None),
        _ => (TaskStatus::Running, None),
    }
}

/// The writes that record an agent's state: run checkpoint and task summary.
pub fn checkpoint_ops(scope: &CallScope, agent: &Agent) -> Vec<WriteOp> {
    let (status, reason) = task_status(agent);
    let now = crate::time::now_ms();
    let ended = status.is_terminal().then_some(now);
    let result = agent
        .repo
        .as_ref()
        .and_then(|r| r.result)
        .map(|r| WriteOp::ResultStatus {
            task_id: scope.task_id.clone(),
            run_id: scope.run_id.clone(),
            status: r.as_str().to_string(),
        });
    let mut ops = vec![
        WriteOp::UpdateRun {
            run_id: scope.run_id.clone(),
            status,
            agent_state: agent.state().as_str().to_string(),
            fsm_state: serde_json::to_string(agent).unwrap_or_else(|_| "{}".into()),
            finished_at: ended,
        },
        WriteOp::UpdateTask {
            task_id: scope.task_id.clone(),
            status,
            reason,
            iterations: agent.iterations as i64,
            quality_score: agent.quality_score(),
            deliverable_url: agent.deliverable.clone(),
            completed_at: ended,
        },
    ];
    ops.extend(result);
    ops
}

fn event_op(scope: &CallScope, kind: &str, payload: serde_json::Value) -> WriteOp {
    WriteOp::Event {
        run_id: scope.run_id.clone(),
        at: crate::time::now_ms(),
        kind: kind.into(),
        payload: payload.to_string(),
    }
}

struct Driver<'a> {
    ctx: &'a RunContext,
    last_state: AgentState,
    last_step: &'static str,
}

/// How a drive begins: an event for the machine, or effects to pick up from a checkpoint,
/// plus writes that must commit with the first checkpoint (an operator's decision).
pub struct Kick {
    pub start: KickStart,
    pub with: Vec<WriteOp>,
}

pub enum KickStart {
    Event(AgentEvent),
    Effects(Vec<Effect>),
}

impl Kick {
    /// Starts with an event; `with` commits with the first checkpoint.
    pub fn event(event: AgentEvent, with: Vec<WriteOp>) -> Kick {
        Kick {
            start: KickStart::Event(event),
            with,
        }
    }
}

/// Performs the kick and everything it leads to, until the run waits or ends.
pub async fn drive(ctx: &RunContext, agent: &mut Agent, kick: Kick) -> RunExit {
    let mut d = Driver {
        ctx,
        last_state: agent.state(),
        last_step: agent.phase.step(),
    };
    let effects = match kick.start {
        KickStart::Event(event) => agent.handle(event),
        KickStart::Effects(effects) => effects,
    };
    let mut queue: VecDeque<Effect> = effects.into();
    if let Err(e) = d.persist(agent, kick.with).await {
        return RunExit::StoreFailed(e.0);
    }
    while let Some(effect) = queue.pop_front() {
        if ctx.cancel.is_cancelled() && !agent.is_done() {
            queue = agent.handle(AgentEvent::Cancel).into();
            continue;
        }
        let next = match effect {
            Effect::CallModel(call) => d.call_model(agent, call).await,
            Effect::CallTool { request } => {
                let started = crate::time::now_ms();
                let outcome = tokio::select! {
                    o = ctx.tools.call(&request) => o,
                    _ = ctx.cancel.cancelled() => ToolOutcome::Failed { error: "cancelled".into() },
                };
                let audit = WriteOp::Audit {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    entry: crate::repo::AuditEntry::finished(
                        &format!("{}: {}", request.server(), request.step()),
                        &serde_json::to_string(&request).unwrap_or_default(),
                        &audit_outcome(&outcome),
                        started,
                    ),
                };
                let summary = tool_summary(&outcome);
                ctx.bus.publish(Event::ToolFinished {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    step: request.step().into(),
                    outcome: outcome.label().into(),
                    summary: summary.clone(),
                });
                let record = event_op(
                    &ctx.scope,
                    "tool",
                    serde_json::json!({"step": request.step(), "outcome": outcome.label(), "summary": summary, "result": outcome}),
                );
                let next = agent.handle(AgentEvent::ToolReturned { outcome });
                d.persist(agent, vec![record, audit]).await.map(|()| next)
            }
            Effect::AwaitApproval => {
                ctx.bus.publish(Event::AwaitingApproval {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    quality_score: agent.quality_score(),
                });
                return match d.persist(agent, Vec::new()).await {
                    Ok(()) => RunExit::AwaitingApproval,
                    Err(e) => RunExit::StoreFailed(e.0),
                };
            }
            Effect::Deliver { .. } if agent.repo.is_some() => d.deliver_repo(agent).await,
            Effect::Deliver { files } => d.deliver(agent, files).await,
            Effect::PrepareRepo => d.prepare_repo(agent).await,
            Effect::InspectDiff => d.inspect_diff(agent).await,
            Effect::RunAgent { kind, prompt } => d.run_agent(agent, &kind, &prompt).await,
            Effect::Pause { reason } => {
                ctx.bus.publish(Event::Paused {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    reason: reason.clone(),
                });
                return match d
                    .persist(
                        agent,
                        vec![event_op(
                            &ctx.scope,
                            "paused",
                            serde_json::json!({"reason": reason}),
                        )],
                    )
                    .await
                {
                    Ok(()) => RunExit::Paused(reason),
                    Err(e) => RunExit::StoreFailed(e.0),
                };
            }
            Effect::Note { text } => {
                ctx.bus.publish(Event::Note {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    text: text.clone(),
                });
                ctx.store
                    .write_later(vec![event_op(
                        &ctx.scope,
                        "note",
                        serde_json::json!({"text": text}),
                    )])
                    .await;
                Ok(Vec::new())
            }
            Effect::Finish { end } => {
                let (status, reason) = task_status(agent);
                let cleanup = d.remove_worktree(agent).await;
                let persisted = d.persist(agent, cleanup).await;
                ctx.bus.publish(Event::RunFinished {
                    task_id: ctx.scope.task_id.clone(),
                    run_id: ctx.scope.run_id.clone(),
                    status: status.as_str().into(),
                    reason,
                });
                return match persisted {
                    Ok(()) => RunExit::Ended(end),
                    Err(e) => RunExit::StoreFailed(e.0),
                };
            }
            Effect::Invalid { why } => {
                tracing::warn!(task = %ctx.scope.task_id, "ignored: {why}");
                Ok(Vec::new())
            }
        };
        match next {
            Ok(effects) => queue.extend(effects),
            Err(e) => return RunExit::StoreFailed(e.0),
        }
    }
    RunExit::StoreFailed(format!(
        "run {} stopped with nothing left to do while {}",
        ctx.scope.run_id,
        agent.state().as_str()
    ))
}

impl Driver<'_> {
    /// Writes the checkpoint (plus `also`) and tells subscribers about a state change.
    async fn persist(&mut self, agent: &Agent, mut also: Vec<WriteOp>) -> Result<(), StoreError> {
        let change = self.state_change(agent);
        if let Some((_, op)) = &change {
            also.push(op.clone());
        }
        let mut ops = checkpoint_ops(&self.ctx.scope, agent);
        ops.extend(also);
        let written = self.ctx.store.write(ops).await;
        if let Some((event, _)) = change {
            self.ctx.bus.publish(event);
        }
        written
    }

    /// The event and run-event row of a state change, if the state or step moved.
    fn state_change(&mut self, agent: &Agent) -> Option<(Event, WriteOp)> {
        let (state, step) = (agent.state(), agent.phase.step());
        if state == self.last_state && step == self.last_step {
            return None;
        }
        self.last_state = state;
        self.last_step = step;
        let event = Event::StateChanged {
            task_id: self.ctx.scope.task_id.clone(),
            run_id: self.ctx.scope.run_id.clone(),
            state,
            step: step.into(),
            iteration: agent.iterations,
        };
        let op = event_op(
            &self.ctx.scope,
            "state",
            serde_json::json!({"state": state, "step": step, "iteration": agent.iterations}),
        );
        Some((event, op))
    }

    async fn call_model(
        &mut self,
        agent: &mut Agent,
        call: ModelCall,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let provider = ctx.models.provider.clone();
        let model = ctx.models.model_for(call.tier).to_string();
        let Some(price) = ctx.models.price_of(&model) else {
            let error = format!("model {model} has no price; add it to [prices] in the config");
            return Ok(agent.handle(AgentEvent::ModelFailed {
                purpose: call.purpose,
                error,
                permanent: true,
            }));
        };
        let mut request = ModelRequest {
            model: model.clone(),
            purpose: call.purpose,
            system: call.system,
            prompt: call.prompt,
            max_tokens: call.max_tokens,
        };
        // A reply cut off at its output limit is asked for once more with more room; the
        // cut-off call is charged on its own row and noted in the timeline.
        let mut asked_again = false;
        let (reservation, result, seen) = loop {
            let quote = CallQuote {
                provider: provider.name().into(),
                model: model.clone(),
                purpose: call.purpose.as_str().into(),
                simulated: provider.simulated(),
                price,
                prompt_tokens_estimate: request.estimated_prompt_tokens(),
                max_output_tokens: request.max_tokens,
            };
            let reservation =
                match ctx
                    .ledger
                    .reserve(ctx.scope.clone(), quote, &crate::time::current_month())
                {
                    Ok(r) => r,
                    Err(refused) => return self.refused(agent, call.purpose, refused).await,
                };
            ctx.bus.publish(Event::ModelStarted {
                task_id: ctx.scope.task_id.clone(),
                run_id: ctx.scope.run_id.clone(),
                purpose: call.purpose.as_str().into(),
                provider: provider.name().into(),
                model: model.clone(),
                simulated: provider.simulated(),
                prompt_estimate_micros: price.cost(&Usage {
                    input_tokens: crate::llm::estimate_tokens(&request.system)
                        + crate::llm::estimate_tokens(&request.prompt),
                    ..Usage::default()
                }),
                output_price_micros: price.output,
            });
            let seen = Mutex::new(String::new());
            let on_text = |t: &str| {
                if let Ok(mut s) = seen.lock() {
                    s.push_str(t);
                }
                ctx.bus.publish_delta(&ctx.scope.run_id, t);
            };
            let result = tokio::select! {
                r = complete(provider.as_ref(), &request, on_text) => Some(r),
                _ = ctx.cancel.cancelled() => None,
            };
            let seen = seen.into_inner().unwrap_or_default();
            let room = more_room(request.max_tokens);
            match &result {
                Some(Ok(c)) if c.truncated() && !asked_again && room > request.max_tokens => {
                    let text = format!(
                        "the {} reply was cut off at its limit of {} output tokens; asking again once with room for {room}",
                        call.purpose.as_str(),
                        request.max_tokens
                    );
                    let note = event_op(&ctx.scope, "note", serde_json::json!({"text": text}));
                    let settled = ctx
                        .ledger
                        .settle(reservation, c.usage, c.estimated, "truncated", vec![note])
                        .await?;
                    self.publish_cost(&model, c.usage, c.estimated, settled);
                    ctx.bus.publish(Event::Note {
                        task_id: ctx.scope.task_id.clone(),
                        run_id: ctx.scope.run_id.clone(),
                        text,
                    });
                    // A stop requested while the cut-off call was settled: the second ask
                    // must not go out, nor be reserved or charged.
                    if ctx.cancel.is_cancelled() {
                        return self.cancelled_before_asking(agent, call.purpose).await;
                    }
                    request.max_tokens = room;
                    asked_again = true;
                }
                _ => break (reservation, result, seen),
            }
        };
        let (event, usage, estimated, outcome) = match result {
            Some(Ok(c)) if c.truncated() => (
                AgentEvent::ModelFailed {
                    purpose: call.purpose,
                    error: format!(
                        "the {} reply was cut off at its limit of {} output tokens{}; raise [max_tokens] {} in the config",
                        call.purpose.as_str(),
                        request.max_tokens,
                        if asked_again {
                            " even after asking again with more room"
                        } else {
                            ""
                        },
                        call.purpose.as_str()
                    ),
                    permanent: true,
                },
                c.usage,
                c.estimated,
                "truncated",
            ),
            Some(Ok(c)) => {
                let cost = price.cost(&c.usage);
                let task_spent = ctx.ledger.task_spent(&ctx.scope.task_id) + cost;
                (
                    AgentEvent::ModelReplied {
                        purpose: call.purpose,
                        text: c.text,
                        task_spent,
                    },
                    c.usage,
                    c.estimated,
                    "ok",
                )
            }
            Some(Err(f)) => {
                let outcome = if matches!(f.error, crate::llm::LlmError::Cut { .. }) {
                    "cut"
                } else {
                    "error"
                };
                (
                    AgentEvent::ModelFailed {
                        purpose: call.purpose,
                        error: f.error.to_string(),
                        permanent: f.error.is_permanent(),
                    },
                    f.usage,
                    f.estimated,
                    outcome,
                )
            }
            None => {
                // Cancelled mid-stream: charge the prompt and whatever output arrived.
                let usage = crate::llm::estimate_usage(&request, &seen);
                (AgentEvent::Cancel, usage, true, "cancelled")
            }
        };
        let record = match &event {
            AgentEvent::ModelReplied { text, .. } => event_op(
                &ctx.scope,
                "model_reply",
                serde_json::json!({"purpose": call.purpose, "model": model, "simulated": provider.simulated(), "text": truncate(text, 64 * 1024)}),
            ),
            AgentEvent::ModelFailed { error, .. } => event_op(
                &ctx.scope,
                "model_error",
                serde_json::json!({"purpose": call.purpose, "error": error}),
            ),
            _ => event_op(
                &ctx.scope,
                "model_cancelled",
                serde_json::json!({"purpose": call.purpose}),
            ),
        };
        let next = agent.handle(event);
        let mut also = checkpoint_ops(&ctx.scope, agent);
        also.push(record);
        let change = self.state_change(agent);
        if let Some((_, op)) = &change {
            also.push(op.clone());
        }
        if usage.total() == 0 {
            ctx.ledger.release(reservation);
            ctx.store.write(also).await?;
            if let Some((event, _)) = change {
                ctx.bus.publish(event);
            }
            return Ok(next);
        }
        let settled = ctx
            .ledger
            .settle(reservation, usage, estimated, outcome, also)
            .await?;
        self.publish_cost(&model, usage, estimated, settled);
        if let Some((event, _)) = change {
            ctx.bus.publish(event);
        }
        Ok(next)
    }

    fn publish_cost(&self, model: &str, usage: Usage, estimated: bool, settled: Settled) {
        let simulated = self.ctx.models.provider.simulated();
        self.publish_cost_as(model, usage, estimated, simulated, settled);
    }

    fn publish_cost_as(
        &self,
        model: &str,
        usage: Usage,
        estimated: bool,
        simulated: bool,
        settled: Settled,
    ) {
        let ctx = self.ctx;
        ctx.bus.publish(Event::CostRecorded {
            task_id: ctx.scope.task_id.clone(),
            run_id: ctx.scope.run_id.clone(),
            client_id: ctx.scope.client_id.clone(),
            model: model.to_string(),
            simulated,
            usage,
            estimated,
            cost_micros: settled.cost,
            task_total_micros: settled.task_total,
            client_month_micros: settled.client_month_total,
        });
    }

    /// Folds a stop that came before a model call went out into the machine and records
    /// it; nothing was reserved for the call, so nothing is charged.
    async fn cancelled_before_asking(
        &mut self,
        agent: &mut Agent,
        purpose: crate::llm::Purpose,
    ) -> Result<Vec<Effect>, StoreError> {
        let record = event_op(
            &self.ctx.scope,
            "model_cancelled",
            serde_json::json!({"purpose": purpose}),
        );
        let next = agent.handle(AgentEvent::Cancel);
        self.persist(agent, vec![record]).await.map(|()| next)
    }

    /// Folds a ledger refusal into the machine and records it.
    async fn refused(
        &mut self,
        agent: &mut Agent,
        purpose: crate::llm::Purpose,
        refused: Refused,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let refusal = match &refused {
            Refused::Task { spent, cap, .. } => Refusal::TaskBudget {
                spent: *spent,
                cap: *cap,
            },
            other => Refusal::ClientBudget {
                reason: other.to_string(),
            },
        };
        let record = event_op(
            &ctx.scope,
            "refused",
            serde_json::json!({"purpose": purpose, "reason": refused.to_string()}),
        );
        let next = agent.handle(AgentEvent::ModelRefused { purpose, refusal });
        self.persist(agent, vec![record]).await.map(|()| next)
    }

    async fn deliver(
        &mut self,
        agent: &mut Agent,
        files: Vec<super::fsm::DeliverableFile>,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let data_dir = ctx.data_dir.clone();
        let task_id = ctx.scope.task_id.clone();
        let title = ctx.task_title.clone();
        let client_id = ctx.scope.client_id.clone();
        let quality = agent.quality_score();
        let cost = ctx.ledger.task_spent(&task_id);
        let cost_estimated = ctx
            .store
            .task(&task_id)
            .ok()
            .flatten()
            .is_some_and(|t| t.cost_estimated);
        let simulated = ctx.models.provider.simulated();
        let skipped = agent.skipped.clone();
        let bundle_files = files.clone();
        let written = tokio::task::spawn_blocking(move || {
            let info = BundleInfo {
                task_id: &task_id,
                title: &title,
                client_id: &client_id,
                quality_score: quality,
                cost_micros: cost,
                cost_estimated,
                simulated,
                skipped: &skipped,
            };
            write_bundle(&data_dir, &info, &bundle_files)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the delivery task crashed: {e}")));
        let at = crate::time::now_ms();
        let mut also: Vec<WriteOp> = Vec::new();
        let event = match written {
            Ok(path) => {
                let url = path.display().to_string();
                for f in &files {
                    also.push(WriteOp::Artifact {
                        run_id: ctx.scope.run_id.clone(),
                        kind: "file".into(),
                        name: f.path.clone(),
                        content: f.content.clone(),
                        at,
                    });
                }
                also.push(WriteOp::Artifact {
                    run_id: ctx.scope.run_id.clone(),
                    kind: "bundle".into(),
                    name: url.clone(),
                    content: String::new(),
                    at,
                });
                ctx.bus.publish(Event::Delivered {
                    task_id: ctx.scope.task_id.clone(),
                    url: url.clone(),
                });
                AgentEvent::Delivered { url }
            }
            Err(error) => AgentEvent::DeliveryFailed { error },
        };
        let next = agent.handle(event);
        self.persist(agent, also).await.map(|()| next)
    }
}

/// The output room for asking a cut-off reply again: twice the limit, but not past 64,000
/// tokens (about the most current models will write in one reply) unless the limit was
/// already beyond that.
fn more_room(max_tokens: u64) -> u64 {
    max_tokens.saturating_mul(2).min(max_tokens.max(64_000))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… {} more bytes not kept]",
        &text[..end],
        text.len() - end
    )
}

/// An audit row's outcome: `ok`, `skipped: …` or `failed: …`, on one short line.
fn audit_outcome(outcome: &ToolOutcome) -> String {
    let line = match outcome {
        ToolOutcome::Done {
            reply: ToolReply::Check(c),
        } if c.status != crate::repo::CheckStatus::Passed => {
            format!("{}: {}", c.status.as_str(), c.reason)
        }
        ToolOutcome::Done { .. } => "ok".into(),
        ToolOutcome::Skipped { reason } => format!("skipped: {reason}"),
        ToolOutcome::Failed { error } => format!("failed: {error}"),
    };
    let first = line.lines().next().unwrap_or("");
    first.chars().take(200).collect()
}

fn tool_summary(outcome: &ToolOutcome) -> String {
    match outcome {
        ToolOutcome::Done { reply } => match reply {
            ToolReply::Snippets { snippets } => format!("{} snippet(s)", snippets.len()),
            ToolReply::Lint(r) => format!("{}: {} problem(s)", r.linter, r.diagnostics.len()),
            ToolReply::Exec(r) => format!(
                "exit {}{}{}",
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                if r.timed_out { ", timed out" } else { "" },
                if r.oom_killed { ", out of memory" } else { "" }
            ),
            ToolReply::Stored => "stored".into(),
            ToolReply::Text { text, truncated } => format!(
                "{} line(s){}",
                text.lines().count(),
                if *truncated { ", truncated" } else { "" }
            ),
            ToolReply::Applied { files } => format!("applied to {}", files.join(", ")),
            ToolReply::Check(c) => match c.status {
                crate::repo::CheckStatus::Passed => format!("passed: {}", c.command),
                crate::repo::CheckStatus::Failed => format!("failed: {} ({})", c.command, c.reason),
                crate::repo::CheckStatus::Skipped => format!("skipped: {}", c.reason),
            },
        },
        ToolOutcome::Skipped { reason } => format!("skipped: {reason}"),
        ToolOutcome::Failed { error } => format!("failed: {error}"),
    }
}
