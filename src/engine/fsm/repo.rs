//! A run on a client's repository: the state it keeps in the checkpoint. The run works in
//! its own worktree on branch `agt/<task_id>`; the harness runs the repository's own checks
//! before any model call (the smoke check) and after the change, ties every acceptance
//! criterion to a command that passed, and scores the risk before the approval gate.

use crate::repo::{CheckOutcome, Criterion, DiffSummary, ResultStatus, RiskReport};
use serde::{Deserialize, Serialize};

/// How the repository sets up, lints and tests itself, as detected or configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoCommands {
    pub setup: Option<String>,
    pub lint: Option<String>,
    pub test: Option<String>,
    /// Where they came from (`pyproject.toml`, `[clients.acme] in the config`, …).
    pub source: String,
}

/// A file the plan names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub path: String,
    /// The file exists at the base commit (changed by diff) or is new (written whole).
    pub exists: bool,
    pub why: String,
}

/// Everything a repository run knows beyond the greenfield machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoWork {
    /// The worktree's directory name under `worktrees/` in the data dir.
    pub worktree: String,
    pub branch: String,
    pub base_branch: String,
    pub base_commit: String,
    pub commands: RepoCommands,
    /// The test command on the base commit, before any model call.
    pub smoke: Option<CheckOutcome>,
    /// The checks after the change (the latest round).
    pub checks: Vec<CheckOutcome>,
    pub criteria: Vec<Criterion>,
    pub files: Vec<PlannedFile>,
    pub diff: Option<DiffSummary>,
    pub risk: Option<RiskReport>,
    pub result: Option<ResultStatus>,
    /// Diffs sent back because they did not apply.
    pub apply_retries: u32,
    /// Changes sent back because checks failed.
    pub check_retries: u32,
    /// The last failure fed back to the writer (a diff that did not apply, a failing test).
    pub feedback: Option<String>,
    /// The delivery commit, once made: approving again after a failed push reuses it.
    pub commit: Option<String>,
    pub pushed: bool,
    pub pr_url: Option<String>,
}
