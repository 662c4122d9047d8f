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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The evaluator's score of the change (0–10).
    #[serde(default)]
    pub score: Option<f64>,
    /// Something was applied at least once (a later failure is SOFT_FAIL, not HARD_FAIL).
    #[serde(default)]
    pub applied: bool,
    /// The repository's outline and the search hits, as the planner saw them.
    #[serde(default)]
    pub structure: String,
    #[serde(default)]
    pub hits: String,
    /// The current content of the planned files, as the writer sees them.
    #[serde(default)]
    pub contents: Vec<(String, String)>,
    /// Which planned file is being read, and which check runs, while those steps go on.
    #[serde(default)]
    pub cursor: usize,
    #[serde(default)]
    pub limits: RepoLimits,
    /// The third-party agent that writes the change (`claude-code`, `codex`, `aider`)
    /// instead of the built-in planner and writer; `None` for the built-in loop.
    #[serde(default)]
    pub agent: Option<String>,
    /// How many times the agent was started: the first time and once per check retry.
    #[serde(default)]
    pub agent_runs: u32,
}

/// The bounds of a repository run, fixed when it starts (from `[repos]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoLimits {
    pub max_context_bytes: usize,
    pub max_files: usize,
    pub check_timeout_secs: u64,
    pub max_retries: u32,
}

impl Default for RepoLimits {
    fn default() -> Self {
        let c = crate::config::ReposConfig::default();
        RepoLimits {
            max_context_bytes: c.max_context_bytes,
            max_files: c.max_files,
            check_timeout_secs: c.check_timeout_secs,
            max_retries: c.max_retries,
        }
    }
}

impl RepoWork {
    /// A repository run before its worktree exists: the task's criteria and the limits.
    pub fn new(criteria: &[String], config: &crate::config::ReposConfig) -> RepoWork {
        RepoWork {
            criteria: criteria
                .iter()
                .map(|text| Criterion {
                    text: text.clone(),
                    check: None,
                    evidence: "not checked yet".into(),
                    met: false,
                })
                .collect(),
            limits: RepoLimits {
                max_context_bytes: config.max_context_bytes,
                max_files: config.max_files,
                check_timeout_secs: config.check_timeout_secs,
                max_retries: config.max_retries,
            },
            ..RepoWork::default()
        }
    }
}
