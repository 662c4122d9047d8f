//! The driver's side of a run on a client's repository: making the worktree, reading the
//! change, delivering it after approval, and removing the worktree when the run ends. Each
//! answer is folded into the machine and committed with the audit rows of what it took.

use super::{Driver, event_op};
use crate::delivery::pr_body::{PrEvidence, render, title};
use crate::engine::fsm::{Agent, AgentEvent, Effect};
use crate::engine::workspace::{DeliverRequest, PrepareRequest};
use crate::repo::AuditEntry;
use crate::store::{StoreError, WriteOp};
use crate::supervisor::Event;

impl Driver<'_> {
    fn audit_ops(&self, entries: Vec<AuditEntry>) -> Vec<WriteOp> {
        entries
            .into_iter()
            .map(|entry| WriteOp::Audit {
                task_id: self.ctx.scope.task_id.clone(),
                run_id: self.ctx.scope.run_id.clone(),
                entry,
            })
            .collect()
    }

    pub(super) async fn prepare_repo(
        &mut self,
        agent: &mut Agent,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let request = PrepareRequest {
            client_id: ctx.scope.client_id.clone(),
            task_id: ctx.scope.task_id.clone(),
            attempt: ctx.attempt,
            base_branch: ctx.base_branch.clone(),
        };
        let (prepared, audit) = tokio::select! {
            r = ctx.workspaces.prepare(&request) => r,
            _ = ctx.cancel.cancelled() => (Err("cancelled".into()), vec![]),
        };
        let mut also = self.audit_ops(audit);
        let event = match prepared {
            Ok(p) => {
                also.push(WriteOp::RunRepo {
                    run_id: ctx.scope.run_id.clone(),
                    worktree: Some(p.worktree.clone()),
                    branch: p.branch.clone(),
                    base_commit: p.base_commit.clone(),
                });
                also.push(event_op(
                    &ctx.scope,
                    "worktree",
                    serde_json::json!({"worktree": p.worktree, "branch": p.branch, "base_branch": p.base_branch, "base_commit": p.base_commit, "commands": p.commands}),
                ));
                AgentEvent::RepoReady {
                    worktree: p.worktree,
                    branch: p.branch,
                    base_branch: p.base_branch,
                    base_commit: p.base_commit,
                    commands: p.commands,
                }
            }
            Err(error) => AgentEvent::RepoFailed { error },
        };
        let next = agent.handle(event);
        self.persist(agent, also).await.map(|()| next)
    }

    pub(super) async fn inspect_diff(
        &mut self,
        agent: &mut Agent,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let (worktree, base) = agent
            .repo
            .as_ref()
            .map(|r| (r.worktree.clone(), r.base_commit.clone()))
            .unwrap_or_default();
        let (inspected, audit) = ctx.workspaces.inspect(&worktree, &base).await;
        let mut also = self.audit_ops(audit);
        let event = match inspected {
            Ok((diff, risk)) => {
                also.push(WriteOp::Artifact {
                    run_id: ctx.scope.run_id.clone(),
                    kind: "diff".into(),
                    name: format!("against {}", crate::engine::repo_prompts::short(&base)),
                    content: diff.patch.clone(),
                    at: crate::time::now_ms(),
                });
                AgentEvent::DiffInspected { diff, risk }
            }
            Err(error) => AgentEvent::RepoFailed { error },
        };
        let next = agent.handle(event);
        self.persist(agent, also).await.map(|()| next)
    }

    pub(super) async fn deliver_repo(
        &mut self,
        agent: &mut Agent,
    ) -> Result<Vec<Effect>, StoreError> {
        let ctx = self.ctx;
        let Some(work) = agent.repo.clone() else {
            return Ok(agent.handle(AgentEvent::DeliveryFailed {
                error: "the run has no repository".into(),
            }));
        };
        let task = ctx.store.task(&ctx.scope.task_id).ok().flatten();
        let cost = ctx.ledger.task_spent(&ctx.scope.task_id);
        let empty = crate::repo::DiffSummary::default();
        let risk = work.risk.clone().unwrap_or_default();
        let smoke: Vec<crate::repo::CheckOutcome> = work.smoke.iter().cloned().collect();
        let evidence = PrEvidence {
            task_id: &ctx.scope.task_id,
            title: &ctx.task_title,
            client_id: &ctx.scope.client_id,
            quality_score: agent.quality_score(),
            result: work.result.unwrap_or(crate::repo::ResultStatus::Success),
            checks_before: &smoke,
            checks_after: &work.checks,
            criteria: &work.criteria,
            cost_micros: cost,
            cost_estimated: task.as_ref().is_some_and(|t| t.cost_estimated),
            simulated: ctx.models.provider.simulated(),
            diff: work.diff.as_ref().unwrap_or(&empty),
            risk: &risk,
            not_verified: &agent.skipped,
        };
        let pr_title = title(&ctx.scope.task_id, &ctx.task_title);
        let request = DeliverRequest {
            client_id: ctx.scope.client_id.clone(),
            task_id: ctx.scope.task_id.clone(),
            worktree: work.worktree.clone(),
            branch: work.branch.clone(),
            base_branch: work.base_branch.clone(),
            base_commit: work.base_commit.clone(),
            commit: work.commit.clone(),
            pushed: work.pushed,
            commit_message: pr_title.clone(),
            pr_title,
            pr_body: render(&evidence),
        };
        let (report, audit) = ctx.workspaces.deliver(&request).await;
        let mut also = self.audit_ops(audit);
        let mut next = agent.handle(AgentEvent::DeliveryProgress {
            commit: report.commit.clone(),
            pushed: report.pushed,
        });
        let event = match report.url {
            Ok(url) => {
                ctx.bus.publish(Event::Delivered {
                    task_id: ctx.scope.task_id.clone(),
                    url: url.clone(),
                });
                also.push(WriteOp::Artifact {
                    run_id: ctx.scope.run_id.clone(),
                    kind: "pull_request".into(),
                    name: url.clone(),
                    content: request.pr_body.clone(),
                    at: crate::time::now_ms(),
                });
                AgentEvent::Delivered { url }
            }
            Err(error) => AgentEvent::DeliveryFailed { error },
        };
        next.extend(agent.handle(event));
        self.persist(agent, also).await.map(|()| next)
    }

    /// Removes the worktree of a run that ended; what cannot be removed is logged and
    /// swept at the next start.
    pub(super) async fn remove_worktree(&mut self, agent: &Agent) -> Vec<WriteOp> {
        let ctx = self.ctx;
        let Some(work) = agent.repo.as_ref().filter(|w| !w.worktree.is_empty()) else {
            return vec![];
        };
        let (removed, audit) = ctx
            .workspaces
            .remove(&ctx.scope.client_id, &work.worktree, &work.branch)
            .await;
        let mut ops = self.audit_ops(audit);
        match removed {
            Ok(()) => ops.push(WriteOp::RunRepo {
                run_id: ctx.scope.run_id.clone(),
                worktree: None,
                branch: work.branch.clone(),
                base_commit: work.base_commit.clone(),
            }),
            Err(e) => {
                tracing::warn!(run = %ctx.scope.run_id, "the worktree stays until the next start: {e}")
            }
        }
        ops
    }
}
