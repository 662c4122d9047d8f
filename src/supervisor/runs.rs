//! Starting, deciding on, cancelling, retrying and resuming runs.

use super::{Event, NewTask, Reply, Supervisor, SupervisorError, expect_status};
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::engine::driver::{Kick, KickStart, RunContext, RunExit, drive};
use crate::engine::fsm::{Agent, AgentEvent, Limits, Phase};
use crate::engine::prompts::TaskBrief;
use crate::ledger::CallScope;
use crate::store::{RunRecord, TaskRecord, WriteOp};
use tokio_util::sync::CancellationToken;

/// What subscribers are told when a task is created.
pub(super) fn task_created(record: &TaskRecord) -> Event {
    Event::TaskCreated {
        task_id: record.id.clone(),
        client_id: record.client_id.clone(),
        title: record.title.clone(),
        stack: record.stack.clone(),
        agent_kind: record.agent_kind.clone(),
        compare_group: record.compare_group.clone(),
    }
}

impl Supervisor {
    pub(super) async fn start_task(&self, task: NewTask) -> Result<Reply, SupervisorError> {
        self.validate_task(&task)?;
        let mode = self.resolved_mode(task.provider);
        // Builds the provider first: a missing key is refused before anything is stored.
        self.router(mode.as_str(), true)?;
        let record = self.new_task_record(&task, mode, crate::time::now_ms());
        let created = task_created(&record);
        let first = vec![WriteOp::InsertTask(Box::new(record.clone()))];
        self.launch(record, 1, first, Some(created)).await
    }

    /// Creates a task that waits, pending, for the daily loop.
    pub(super) async fn queue_task(&self, task: NewTask) -> Result<Reply, SupervisorError> {
        self.validate_task(&task)?;
        let mode = self.resolved_mode(task.provider);
        self.router(mode.as_str(), true)?;
        let record = self.new_task_record(&task, mode, crate::time::now_ms());
        let created = task_created(&record);
        self.inner
            .store
            .write(vec![WriteOp::InsertTask(Box::new(record.clone()))])
            .await?;
        self.inner.bus.publish(created);
        Ok(Reply::TaskQueued { task_id: record.id })
    }

    /// Starts every task queued for the daily loop (oldest first; the concurrency limit
    /// holds them as usual); returns the ids started.
    pub async fn start_queued(&self) -> Result<Vec<String>, SupervisorError> {
        let mut started = Vec::new();
        for task in self.inner.store.queued_tasks()? {
            let id = task.id.clone();
            match self.launch(task, 1, Vec::new(), None).await {
                Ok(_) => started.push(id),
                Err(e) => tracing::warn!(task = %id, error = %e.0, "a queued task did not start"),
            }
        }
        Ok(started)
    }

    /// Starts a task for a job received from outside (`source`: `upwork`): the job is
    /// recorded with the task in one transaction, so a job creates one task however often
    /// it is delivered (a second delivery racing the first fails on the job's key).
    pub async fn start_intake_task(
        &self,
        task: NewTask,
        job_id: &str,
    ) -> Result<Reply, SupervisorError> {
        self.validate_task(&task)?;
        let mode = self.resolved_mode(task.provider);
        self.router(mode.as_str(), true)?;
        let now = crate::time::now_ms();
        let record = self.new_task_record(&task, mode, now);
        let created = task_created(&record);
        let first = vec![
            WriteOp::InsertTask(Box::new(record.clone())),
            WriteOp::IntakeJob {
                source: task.source.clone(),
                job_id: job_id.to_string(),
                task_id: record.id.clone(),
                at: now,
            },
        ];
        self.launch(record, 1, first, Some(created)).await
    }

    /// The provider a task runs on: the one asked for, else the configured one (`auto`
    /// resolved).
    pub(super) fn resolved_mode(&self, requested: Option<ProviderKind>) -> ProviderKind {
        match requested.unwrap_or_else(|| self.default_provider()) {
            ProviderKind::Auto => self.default_provider(),
            mode => mode,
        }
    }

    /// A new task, `pending`, numbered with the next task id.
    pub(super) fn new_task_record(
        &self,
        task: &NewTask,
        mode: ProviderKind,
        now: i64,
    ) -> TaskRecord {
        let n = self
            .inner
            .next_task
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TaskRecord {
            id: format!("T-{n:04}"),
            client_id: task.client_id.clone(),
            title: task.title.trim().to_string(),
            description: task.description.clone(),
            stack: task.stack.clone(),
            source: task.source.clone(),
            agent_kind: task.agent_kind.clone(),
            model_mode: mode.as_str().into(),
            status: TaskStatus::Pending,
            status_reason: None,
            budget_micros: task
                .budget_micros
                .unwrap_or_else(|| self.inner.config.task_budget_micros()),
            deliverable_url: None,
            iterations: 0,
            quality_score: None,
            tokens_used: 0,
            cost_micros: 0,
            cost_estimated: false,
            model_calls: 0,
            created_at: now,
            updated_at: now,
            completed_at: None,
            base_branch: task.base_branch.clone(),
            acceptance: crate::engine::criteria::collect(&task.description, &task.acceptance),
            result_status: None,
            batch_id: None,
            batch_app: None,
            price_micros: task.price_micros,
            compare_group: None,
        }
    }

    /// Starts attempt `attempt` of a task from scratch: commits `first` with the new run,
    /// tells subscribers `announce`, then queues the run.
    pub(super) async fn launch(
        &self,
        task: TaskRecord,
        attempt: i64,
        mut first: Vec<WriteOp>,
        announce: Option<Event>,
    ) -> Result<Reply, SupervisorError> {
        let agent = self.new_agent(&task)?;
        let run = new_run(&task, attempt, &agent);
        first.push(WriteOp::InsertRun(run.clone()));
        self.inner.store.write(first).await?;
        if let Some(event) = announce {
            self.inner.bus.publish(event);
        }
        let task_id = task.id.clone();
        let kick = Kick::event(AgentEvent::Start, vec![]);
        self.spawn_run(task, run.id.clone(), attempt, agent, kick, false, true)?;
        Ok(Reply::TaskStarted {
            task_id,
            run_id: run.id,
        })
    }

    pub(super) fn new_agent(&self, task: &TaskRecord) -> Result<Agent, SupervisorError> {
        let mut agent = Agent::new(
            TaskBrief {
                client_id: task.client_id.clone(),
                title: task.title.clone(),
                description: task.description.clone(),
                stack: task.stack.clone(),
            },
            Limits::from_config(&self.inner.config, task.budget_micros),
        );
        // A client with a repository gets its work there, as a branch and pull request.
        if self.inner.store.client_repo(&task.client_id)?.is_some() {
            let mut repo =
                crate::engine::fsm::repo::RepoWork::new(&task.acceptance, &self.inner.config.repos);
            if task.agent_kind != "builtin" {
                repo.agent = Some(task.agent_kind.clone());
            }
            agent.repo = Some(repo);
        } else if task.agent_kind != "builtin" {
            return Err(SupervisorError(format!(
                "agent {} works in a client's repository, and client {} has none; store one (`ecca clients token {} --repo URL`) or use the built-in agent",
                task.agent_kind, task.client_id, task.client_id
            )));
        }
        Ok(agent)
    }

    pub(super) async fn decide(
        &self,
        task_id: &str,
        decision: &str,
        note: String,
    ) -> Result<Reply, SupervisorError> {
        let task = self.task_or_error(task_id)?;
        let action = match decision {
            "approve" => "approved",
            "revise" => "sent back for revision",
            _ => "rejected",
        };
        expect_status(&task, &[TaskStatus::AwaitingApproval], action)?;
        let note = note.trim().to_string();
        if decision != "approve" && note.is_empty() {
            return Err(SupervisorError(format!(
                "a {decision} needs a note saying {}; pass --note TEXT",
                if decision == "revise" {
                    "what to change"
                } else {
                    "why"
                }
            )));
        }
        let (run, agent) = self.checkpoint(&task)?;
        let event = match decision {
            "approve" => AgentEvent::Approved,
            "revise" => AgentEvent::Revised { note: note.clone() },
            _ => AgentEvent::Rejected { note: note.clone() },
        };
        let record = WriteOp::Approval {
            task_id: task.id.clone(),
            run_id: run.id.clone(),
            decision: decision.into(),
            note: note.clone(),
            at: crate::time::now_ms(),
        };
        self.inner.bus.publish(Event::DecisionRecorded {
            task_id: task.id.clone(),
            decision: decision.into(),
            note,
        });
        // Only a revision calls the model again; delivering or rejecting needs no key.
        let needs_model = decision == "revise";
        self.spawn_run(
            task,
            run.id,
            run.attempt,
            agent,
            Kick::event(event, vec![record]),
            true,
            needs_model,
        )?;
        Ok(Reply::Done)
    }

    pub(super) async fn cancel(&self, task_id: &str) -> Result<Reply, SupervisorError> {
        if let Some(token) = self
            .inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(task_id).cloned())
        {
            token.cancel();
            return Ok(Reply::Done);
        }
        let task = self.task_or_error(task_id)?;
        expect_status(
            &task,
            &[
                TaskStatus::AwaitingApproval,
                TaskStatus::Paused,
                TaskStatus::Interrupted,
                TaskStatus::Pending,
            ],
            "cancelled",
        )?;
        let (run, agent) = self.checkpoint(&task)?;
        self.spawn_run(
            task,
            run.id,
            run.attempt,
            agent,
            Kick::event(AgentEvent::Cancel, vec![]),
            true,
            false,
        )?;
        Ok(Reply::Done)
    }

    pub(super) async fn retry(&self, task_id: &str) -> Result<Reply, SupervisorError> {
        let task = self.task_or_error(task_id)?;
        expect_status(
            &task,
            &[
                TaskStatus::Failed,
                TaskStatus::Rejected,
                TaskStatus::Cancelled,
            ],
            "retried",
        )?;
        let attempt = self
            .inner
            .store
            .latest_run(task_id)?
            .map(|r| r.attempt)
            .unwrap_or(0)
            + 1;
        self.launch(task, attempt, Vec::new(), None).await
    }

    pub(super) async fn resume(&self, task_id: &str) -> Result<Reply, SupervisorError> {
        let task = self.task_or_error(task_id)?;
        expect_status(
            &task,
            &[TaskStatus::Interrupted, TaskStatus::Paused],
            "resumed",
        )?;
        let (run, agent) = self.checkpoint(&task)?;
        self.inner.ledger.refresh_client(&task.client_id);
        let start = match &agent.phase {
            Phase::Pending => KickStart::Event(AgentEvent::Start),
            Phase::Paused { .. } => KickStart::Event(AgentEvent::Resume),
            _ => KickStart::Effects(agent.resume_effects()),
        };
        let note = WriteOp::Event {
            run_id: run.id.clone(),
            at: crate::time::now_ms(),
            kind: "resumed".into(),
            payload: serde_json::json!({"from": task.status.as_str()}).to_string(),
        };
        self.spawn_run(
            task,
            run.id,
            run.attempt,
            agent,
            Kick {
                start,
                with: vec![note],
            },
            true,
            true,
        )?;
        Ok(Reply::Done)
    }

    /// The latest run of a task and its machine, restored from the checkpoint.
    fn checkpoint(&self, task: &TaskRecord) -> Result<(RunRecord, Agent), SupervisorError> {
        let run = self.inner.store.latest_run(&task.id)?.ok_or_else(|| {
            SupervisorError(format!(
                "task {} has no run to continue; `ecca retry {}` starts one",
                task.id, task.id
            ))
        })?;
        let agent: Agent = serde_json::from_str(&run.fsm_state).map_err(|e| {
            SupervisorError(format!(
                "the checkpoint of run {} cannot be read ({e}); `ecca retry {}` starts a fresh attempt",
                run.id, task.id
            ))
        })?;
        Ok((run, agent))
    }

    /// Runs a drive in the background under the concurrency limit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn spawn_run(
        &self,
        task: TaskRecord,
        run_id: String,
        attempt: i64,
        mut agent: Agent,
        kick: Kick,
        resumed: bool,
        needs_model: bool,
    ) -> Result<(), SupervisorError> {
        let router = self.router(&task.model_mode, needs_model)?;
        let cancel = CancellationToken::new();
        {
            let mut active =
                self.inner.active.lock().map_err(|_| {
                    SupervisorError("the run table is unusable; restart ecca".into())
                })?;
            if active.contains_key(&task.id) {
                return Err(SupervisorError(format!(
                    "task {} is already working; wait for it or cancel it",
                    task.id
                )));
            }
            active.insert(task.id.clone(), cancel.clone());
        }
        if let Ok(mut failures) = self.inner.store_failures.lock() {
            failures.remove(&task.id);
        }
        let sup = self.clone();
        let shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let inner = &sup.inner;
            let task_id = task.id.clone();
            // On shutdown the drive is dropped where it waits: what it last committed is
            // its checkpoint, and `interrupt_all` marks the task interrupted.
            tokio::select! {
                _ = sup.run_to_rest(task, run_id, attempt, &mut agent, kick, resumed, router, cancel) => {}
                _ = shutdown.cancelled() => {}
            }
            if let Ok(mut active) = inner.active.lock() {
                active.remove(&task_id);
            }
            inner.run_exited.notify_waiters();
        });
        Ok(())
    }

    /// Waits for a slot, drives the run until it waits or ends, and records a store failure.
    #[allow(clippy::too_many_arguments)]
    async fn run_to_rest(
        &self,
        task: TaskRecord,
        run_id: String,
        attempt: i64,
        agent: &mut Agent,
        kick: Kick,
        resumed: bool,
        router: std::sync::Arc<crate::engine::driver::ModelRouter>,
        cancel: CancellationToken,
    ) {
        let inner = &self.inner;
        let permit = tokio::select! {
            p = inner.slots.clone().acquire_owned() => p.ok(),
            _ = cancel.cancelled() => None,
        };
        let kick = if permit.is_none() {
            Kick::event(AgentEvent::Cancel, kick.with)
        } else {
            kick
        };
        inner.bus.publish(Event::RunStarted {
            task_id: task.id.clone(),
            run_id: run_id.clone(),
            attempt,
            resumed,
        });
        let ctx = RunContext {
            scope: CallScope {
                client_id: task.client_id.clone(),
                task_id: task.id.clone(),
                run_id: run_id.clone(),
            },
            task_title: task.title.clone(),
            store: inner.store.clone(),
            ledger: inner.ledger.clone(),
            models: router,
            tools: inner.tools.clone(),
            bus: inner.bus.clone(),
            cancel,
            data_dir: inner.data_dir.clone(),
            workspaces: inner.workspaces.clone(),
            attempt,
            base_branch: task.base_branch.clone(),
            agent: (task.agent_kind != "builtin").then(|| {
                crate::engine::driver::setup_for(
                    &task.agent_kind,
                    &task.client_id,
                    &inner.config,
                    inner.env.as_ref(),
                    &|provider| {
                        crate::credentials::key_for(&inner.data_dir, &task.client_id, provider)
                    },
                )
            }),
        };
        let exit = drive(&ctx, agent, kick).await;
        drop(permit);
        if task.compare_group.is_some()
            && agent.state() == crate::engine::fsm::AgentState::Delivered
        {
            self.close_comparison(&task).await;
        }
        if let RunExit::StoreFailed(why) = &exit {
            tracing::error!(task = %task.id, "run stopped: {why}");
            if let Ok(mut failures) = inner.store_failures.lock() {
                failures.insert(task.id.clone(), why.clone());
            }
            inner.bus.publish(Event::Note {
                task_id: task.id.clone(),
                run_id: run_id.clone(),
                text: format!("run stopped: {why}"),
            });
        }
    }
}

pub(super) fn new_run(task: &TaskRecord, attempt: i64, agent: &Agent) -> RunRecord {
    let now = crate::time::now_ms();
    RunRecord {
        id: format!("{}/r{attempt}", task.id),
        task_id: task.id.clone(),
        attempt,
        status: TaskStatus::Pending,
        agent_state: agent.state().as_str().into(),
        fsm_state: serde_json::to_string(agent).unwrap_or_else(|_| "{}".into()),
        tokens_used: 0,
        cost_micros: 0,
        model_calls: 0,
        owner_pid: Some(std::process::id() as i64),
        started_at: now,
        updated_at: now,
        finished_at: None,
    }
}

impl Supervisor {
    /// Approves a deliverable, once what its risk asks for has been confirmed: a critical
    /// review above the risk threshold, and a note overriding any secret found in the diff.
    pub(super) async fn approve(
        &self,
        task_id: &str,
        review: super::ApprovalReview,
    ) -> Result<Reply, SupervisorError> {
        let task = self.task_or_error(task_id)?;
        expect_status(&task, &[TaskStatus::AwaitingApproval], "approved")?;
        self.check_compared(&task)?;
        let (_, agent) = self.checkpoint(&task)?;
        if let Some(risk) = agent.repo.as_ref().and_then(|r| r.risk.as_ref()) {
            let override_note = review
                .secret_override
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty());
            if risk.blocks_approval() && override_note.is_none() {
                let found: Vec<String> = risk
                    .secrets
                    .iter()
                    .map(|s| format!("{} in {}:{} ({})", s.kind, s.path, s.line, s.masked))
                    .collect();
                return Err(SupervisorError(format!(
                    "task {task_id} cannot be approved: its diff holds what looks like a secret ({}); remove it with `ecca revise {task_id} --note TEXT`, or approve with `--override-secret NOTE` saying why it is safe",
                    found.join("; ")
                )));
            }
            if risk.needs_critical_review() && !review.critical_reviewed {
                return Err(SupervisorError(format!(
                    "task {task_id} scores {} of 100 for risk ({}); it needs a critical review: read the whole diff (`ecca diff {task_id}`), then approve with `--critical-reviewed`",
                    risk.score,
                    risk.reasons.join("; ")
                )));
            }
            let mut note = Vec::new();
            if review.critical_reviewed {
                note.push("critical review confirmed".to_string());
            }
            if let Some(n) = override_note {
                note.push(format!("secret finding overridden: {n}"));
            }
            return self.decide(task_id, "approve", note.join("; ")).await;
        }
        self.decide(task_id, "approve", String::new()).await
    }
}
