//! The one door from a run to its client's repository: make the run's worktree, inspect its
//! change, deliver it, and clean up. The production implementation is
//! [`crate::repo::workspaces::GitWorkspaces`]; the engine sees only this trait, so it never
//! runs git itself.

use super::fsm::repo::RepoCommands;
use crate::repo::{AuditEntry, DiffSummary, RiskReport};
use futures::future::BoxFuture;

/// What a run asks for when it starts.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    pub client_id: String,
    pub task_id: String,
    pub attempt: i64,
    /// The task's base branch; None means the client's configured one, else the remote's
    /// default branch.
    pub base_branch: Option<String>,
}

/// A worktree ready to work in.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub worktree: String,
    pub branch: String,
    pub base_branch: String,
    pub base_commit: String,
    pub commands: RepoCommands,
}

/// Everything a delivery needs.
#[derive(Debug, Clone)]
pub struct DeliverRequest {
    pub client_id: String,
    pub task_id: String,
    pub worktree: String,
    pub branch: String,
    pub base_branch: String,
    pub base_commit: String,
    /// The commit an earlier attempt made: a retry pushes it instead of committing again.
    pub commit: Option<String>,
    pub pushed: bool,
    pub commit_message: String,
    pub pr_title: String,
    pub pr_body: String,
}

/// How far a delivery got.
#[derive(Debug, Clone)]
pub struct DeliverReport {
    pub commit: Option<String>,
    pub pushed: bool,
    /// The pull request's URL (or, for a client with no token, where the branch went).
    pub url: Result<String, String>,
}

/// An answer and the audit rows of what it took.
pub type Audited<T> = (T, Vec<AuditEntry>);

pub trait Workspaces: Send + Sync {
    fn prepare<'a>(
        &'a self,
        request: &'a PrepareRequest,
    ) -> BoxFuture<'a, Audited<Result<Prepared, String>>>;

    fn inspect<'a>(
        &'a self,
        worktree: &'a str,
        base_commit: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(DiffSummary, RiskReport), String>>>;

    fn deliver<'a>(&'a self, request: &'a DeliverRequest) -> BoxFuture<'a, Audited<DeliverReport>>;

    /// Removes a run's worktree (and its local branch); already gone is fine.
    fn remove<'a>(
        &'a self,
        client_id: &'a str,
        worktree: &'a str,
        branch: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(), String>>>;

    /// Removes every worktree not named in `keep` (runs that ended while no process was
    /// there to clean up); returns the names removed.
    fn sweep<'a>(
        &'a self,
        _keep: &'a std::collections::HashSet<String>,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}

/// No repositories: every repository step fails with the reason.
pub struct NoWorkspaces;

const NONE: &str = "this ecca has no repository support configured";

impl Workspaces for NoWorkspaces {
    fn prepare<'a>(
        &'a self,
        _: &'a PrepareRequest,
    ) -> BoxFuture<'a, Audited<Result<Prepared, String>>> {
        Box::pin(async { (Err(NONE.into()), vec![]) })
    }

    fn inspect<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(DiffSummary, RiskReport), String>>> {
        Box::pin(async { (Err(NONE.into()), vec![]) })
    }

    fn deliver<'a>(&'a self, _: &'a DeliverRequest) -> BoxFuture<'a, Audited<DeliverReport>> {
        Box::pin(async {
            (
                DeliverReport {
                    commit: None,
                    pushed: false,
                    url: Err(NONE.into()),
                },
                vec![],
            )
        })
    }

    fn remove<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(), String>>> {
        Box::pin(async { (Ok(()), vec![]) })
    }
}
