//! Batches: many apps launched from one manifest, run under their own concurrency limit
//! inside the global one, retried or cancelled as one.
//!
//! Every app is a task created `pending` at launch, so the whole batch is visible at once.
//! A driver per batch starts apps while fewer than the batch's concurrency are working and
//! the batch's cap is not reached; it wakes when a run rests, and ends the batch when no
//! app is working and none is left to start.

use super::{Event, NewBatch, Reply, Supervisor, SupervisorError};
use crate::batch::forecast::forecast;
use crate::batch::manifest::{self, Manifest};
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::store::{BatchRecord, TaskRecord, WriteOp};
use std::collections::HashSet;

/// One batch is numbered and stored at a time.
static LAUNCHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The reason an app that never started is marked failed when its batch's cap is reached.
pub const BATCH_CAP_REASON: &str = "budget: the batch's cap was reached before this app started";

impl Supervisor {
    pub(super) async fn start_batch(&self, batch: NewBatch) -> Result<Reply, SupervisorError> {
        let source = if batch.source.is_empty() {
            "the manifest".to_string()
        } else {
            batch.source.clone()
        };
        let manifest = manifest::parse(&batch.manifest, &source).map_err(SupervisorError)?;
        let mode = self.resolved_mode(batch.provider);
        // A missing key is refused before anything is stored.
        self.router(mode.as_str(), true)?;
        let concurrency = batch
            .concurrency
            .unwrap_or(manifest.concurrency)
            .clamp(1, 64);
        let store = &self.inner.store;
        let month = crate::time::current_month();
        let plan = forecast(store, &self.inner.config, &manifest, mode.as_str(), &month)
            .map_err(SupervisorError)?;
        if let Some(why) = plan.over_budget()
            && !batch.confirmed_over_budget
        {
            return Err(SupervisorError(format!(
                "batch {:?} was not launched: {why}; confirm to launch it anyway (the ledger \
                 still refuses any call past the client's cap), or lower the apps' budgets",
                manifest.name
            )));
        }
        let _one_at_a_time = LAUNCHING.lock().await;
        let batch_id = format!("B-{:04}", store.max_batch_number()? + 1);
        let now = crate::time::now_ms();
        let tasks = self.batch_task_records(&manifest, &batch_id, mode, now)?;
        let record = BatchRecord {
            id: batch_id.clone(),
            client_id: manifest.client.clone(),
            name: manifest.name.clone(),
            manifest: batch.manifest.clone(),
            status: "running".into(),
            concurrency,
            budget_micros: manifest.budget_micros,
            forecast: serde_json::to_string(&plan).ok(),
            created_at: now,
            finished_at: None,
        };
        let mut ops = vec![WriteOp::InsertBatch(Box::new(record))];
        ops.extend(
            tasks
                .iter()
                .map(|t| WriteOp::InsertTask(Box::new(t.clone()))),
        );
        store.write(ops).await?;
        self.inner.bus.publish(Event::BatchStarted {
            batch_id: batch_id.clone(),
            client_id: manifest.client.clone(),
            name: manifest.name.clone(),
            apps: tasks.len(),
        });
        for t in &tasks {
            self.inner.bus.publish(super::runs::task_created(t));
        }
        let task_ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        self.drive_batch(batch_id.clone(), task_ids.clone(), false);
        Ok(Reply::BatchStarted { batch_id, task_ids })
    }

    fn batch_task_records(
        &self,
        manifest: &Manifest,
        batch_id: &str,
        mode: ProviderKind,
        now: i64,
    ) -> Result<Vec<TaskRecord>, SupervisorError> {
        let mut out = Vec::with_capacity(manifest.apps.len());
        for app in &manifest.apps {
            let new = super::NewTask {
                client_id: manifest.client.clone(),
                title: app.name.clone(),
                description: app.description.clone(),
                stack: app.stack.clone(),
                source: "batch".into(),
                agent_kind: "builtin".into(),
                budget_micros: app.budget_micros,
                provider: Some(mode),
                base_branch: None,
                acceptance: app.acceptance.clone(),
                price_micros: app.price_micros,
            };
            self.validate_task(&new)
                .map_err(|e| SupervisorError(format!("app {:?}: {}", app.name, e.0)))?;
            let mut record = self.new_task_record(&new, mode, now);
            record.batch_id = Some(batch_id.to_string());
            record.batch_app = Some(app.name.clone());
            out.push(record);
        }
        Ok(out)
    }

    /// Starts the batch's driver: `queue` holds the tasks to start, in order; `retry` says
    /// they start as fresh attempts of ended tasks rather than first runs.
    fn drive_batch(&self, batch_id: String, queue: Vec<String>, retry: bool) {
        let sup = self.clone();
        tokio::spawn(async move {
            if let Err(e) = sup.batch_loop(&batch_id, queue, retry).await {
                tracing::warn!(batch = %batch_id, error = %e.0, "the batch driver stopped");
            }
        });
    }

    async fn batch_loop(
        &self,
        batch_id: &str,
        mut queue: Vec<String>,
        retry: bool,
    ) -> Result<(), SupervisorError> {
        queue.reverse();
        let store = &self.inner.store;
        loop {
            // Armed before looking, so a run resting meanwhile still wakes this loop.
            let rested = self.inner.run_exited.notified();
            tokio::pin!(rested);
            rested.as_mut().enable();
            let Some(batch) = store.batch(batch_id)? else {
                return Ok(());
            };
            if batch.status != "running" {
                return Ok(());
            }
            let tasks = store.batch_tasks(batch_id)?;
            let active = self.active_tasks();
            let mut working = tasks.iter().filter(|t| active.contains(&t.id)).count();
            let spent: i64 = tasks.iter().map(|t| t.cost_micros).sum();
            let capped = batch.budget_micros.is_some_and(|cap| spent >= cap);
            while !capped && working < batch.concurrency as usize {
                // A cancel between the look above and this launch must win.
                if store.batch(batch_id)?.is_none_or(|b| b.status != "running") {
                    return Ok(());
                }
                let Some(id) = queue.pop() else { break };
                let started = if retry {
                    self.retry(&id).await
                } else {
                    match tasks.iter().find(|t| t.id == id) {
                        Some(t) if t.status == TaskStatus::Pending => {
                            self.launch(t.clone(), 1, Vec::new(), None).await
                        }
                        _ => continue,
                    }
                };
                match started {
                    Ok(_) => working += 1,
                    Err(e) => tracing::warn!(task = %id, error = %e.0, "a batch app did not start"),
                }
            }
            if working == 0 && (queue.is_empty() || capped) {
                let now = crate::time::now_ms();
                let mut ops: Vec<WriteOp> = queue
                    .iter()
                    .map(|id| WriteOp::UpdateTask {
                        task_id: id.clone(),
                        status: TaskStatus::Failed,
                        reason: Some(BATCH_CAP_REASON.into()),
                        iterations: 0,
                        quality_score: None,
                        deliverable_url: None,
                        completed_at: Some(now),
                    })
                    .collect();
                ops.push(WriteOp::BatchStatus {
                    batch_id: batch_id.to_string(),
                    status: "finished".into(),
                    finished_at: Some(now),
                });
                store.write(ops).await?;
                self.inner.bus.publish(Event::BatchFinished {
                    batch_id: batch_id.to_string(),
                    status: "finished".into(),
                });
                return Ok(());
            }
            tokio::select! {
                _ = &mut rested => {}
                // A safety net: a run that rests without a notification is still seen.
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = self.inner.shutdown.cancelled() => return Ok(()),
            }
        }
    }

    pub(super) async fn retry_batch(&self, batch_id: &str) -> Result<Reply, SupervisorError> {
        let batch = self.batch_or_error(batch_id)?;
        if batch.status == "running" {
            return Err(SupervisorError(format!(
                "batch {batch_id} is still running; retry its failed apps once it has finished"
            )));
        }
        let failed: Vec<String> = self
            .inner
            .store
            .batch_tasks(batch_id)?
            .into_iter()
            .filter(|t| matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled))
            .map(|t| t.id)
            .collect();
        if failed.is_empty() {
            return Err(SupervisorError(format!(
                "batch {batch_id} has no failed or cancelled app to retry"
            )));
        }
        self.inner
            .store
            .write(vec![WriteOp::BatchStatus {
                batch_id: batch_id.to_string(),
                status: "running".into(),
                finished_at: None,
            }])
            .await?;
        self.drive_batch(batch_id.to_string(), failed.clone(), true);
        Ok(Reply::BatchStarted {
            batch_id: batch_id.to_string(),
            task_ids: failed,
        })
    }

    pub(super) async fn cancel_batch(&self, batch_id: &str) -> Result<Reply, SupervisorError> {
        let batch = self.batch_or_error(batch_id)?;
        if batch.status == "cancelled" {
            return Err(SupervisorError(format!(
                "batch {batch_id} is already cancelled"
            )));
        }
        let now = crate::time::now_ms();
        // The driver sees this first and starts nothing more.
        self.inner
            .store
            .write(vec![WriteOp::BatchStatus {
                batch_id: batch_id.to_string(),
                status: "cancelled".into(),
                finished_at: Some(now),
            }])
            .await?;
        // Twice: a run that rests at the gate just as its cancel arrives (or an app the
        // driver started a moment before it saw the cancel) is caught by the second pass,
        // after every run of the batch has stopped working.
        self.cancel_batch_apps(batch_id, now).await?;
        self.wait_batch_idle(batch_id).await?;
        self.cancel_batch_apps(batch_id, now).await?;
        self.wait_batch_idle(batch_id).await?;
        self.inner.bus.publish(Event::BatchFinished {
            batch_id: batch_id.to_string(),
            status: "cancelled".into(),
        });
        Ok(Reply::Done)
    }

    fn active_tasks(&self) -> HashSet<String> {
        self.inner
            .active
            .lock()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn cancel_batch_apps(&self, batch_id: &str, now: i64) -> Result<(), SupervisorError> {
        let active = self.active_tasks();
        let mut never_started = Vec::new();
        for t in self.inner.store.batch_tasks(batch_id)? {
            let startable = matches!(
                t.status,
                TaskStatus::AwaitingApproval | TaskStatus::Paused | TaskStatus::Interrupted
            );
            if active.contains(&t.id) || startable {
                if let Err(e) = self.cancel(&t.id).await {
                    tracing::warn!(task = %t.id, error = %e.0, "a batch app was not cancelled");
                }
            } else if t.status == TaskStatus::Pending {
                never_started.push(WriteOp::UpdateTask {
                    task_id: t.id.clone(),
                    status: TaskStatus::Cancelled,
                    reason: Some(format!("batch {batch_id} was cancelled")),
                    iterations: 0,
                    quality_score: None,
                    deliverable_url: None,
                    completed_at: Some(now),
                });
            }
        }
        self.inner.store.write(never_started).await?;
        Ok(())
    }

    /// Waits until no app of the batch is working.
    async fn wait_batch_idle(&self, batch_id: &str) -> Result<(), SupervisorError> {
        loop {
            let rested = self.inner.run_exited.notified();
            tokio::pin!(rested);
            rested.as_mut().enable();
            let active = self.active_tasks();
            let busy = self
                .inner
                .store
                .batch_tasks(batch_id)?
                .iter()
                .any(|t| active.contains(&t.id));
            if !busy {
                return Ok(());
            }
            tokio::select! {
                _ = &mut rested => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
        }
    }

    /// After a restart: every batch still running gets its driver back for the apps that
    /// never started (apps interrupted mid-run are resumed like any task, by the operator).
    /// Only a long-lived process calls this (the console): a one-shot command such as
    /// `ecca approve` must not start apps it would abandon when it exits.
    pub fn resume_batches(&self) -> Result<(), SupervisorError> {
        for batch in self.inner.store.batches()? {
            if batch.status != "running" {
                continue;
            }
            let queue: Vec<String> = self
                .inner
                .store
                .batch_tasks(&batch.id)?
                .into_iter()
                .filter(|t| t.status == TaskStatus::Pending)
                .map(|t| t.id)
                .collect();
            self.drive_batch(batch.id, queue, false);
        }
        Ok(())
    }

    fn batch_or_error(&self, batch_id: &str) -> Result<BatchRecord, SupervisorError> {
        self.inner.store.batch(batch_id)?.ok_or_else(|| {
            SupervisorError(format!(
                "batch {batch_id} does not exist; `ecca batch list` lists the batches"
            ))
        })
    }
}
