//! Work on a client's own repository: a mirror per client, a git worktree per run on branch
//! `agt/<task_id>`, the repository's own checks, the diff against the base commit, and the
//! audit trail of every git operation and command.
//!
//! The types here are plain data shared by the engine (which keeps them in a run's
//! checkpoint), the delivery (risk score, pull request body) and the frontends (approval
//! view, Run detail). The modules below do the IO; the engine reaches them only through the
//! driver.

pub mod checks;
pub mod git;
pub mod workspaces;
pub mod worktree;

use serde::{Deserialize, Serialize};

/// The branch a task's work goes on.
pub fn branch_for(task_id: &str) -> String {
    format!("agt/{task_id}")
}

/// The directory name of a run's worktree (`T-0042-r1`): one path component, so it can be
/// handed to a server confined to the worktrees directory.
pub fn worktree_name(task_id: &str, attempt: i64) -> String {
    format!("{task_id}-r{attempt}")
}

/// How one file differs from the base commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `modified`, `deleted` or `renamed`.
    pub status: String,
    pub added: u32,
    pub removed: u32,
    /// git reported it as binary (no line counts).
    #[serde(default)]
    pub binary: bool,
}

/// The change of a run against its base commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    pub base_commit: String,
    pub files: Vec<FileChange>,
    /// The unified diff (`git diff` against the base), capped; see `patch_truncated`.
    pub patch: String,
    #[serde(default)]
    pub patch_truncated: bool,
}

impl DiffSummary {
    pub fn lines_added(&self) -> u32 {
        self.files.iter().map(|f| f.added).sum()
    }

    pub fn lines_removed(&self) -> u32 {
        self.files.iter().map(|f| f.removed).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// How one of the repository's checks went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    /// It could not run here (no runtime in the sandbox image, dependencies not installable
    /// offline, nothing detected); never counted as passed.
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::Skipped => "skipped",
        }
    }
}

/// One check run: `setup`, `lint`, `test`, or a criterion's own command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// `setup`, `lint`, `test`, `criterion`.
    pub kind: String,
    /// The command as run (`python3 -m unittest discover -q`), empty when none was found.
    pub command: String,
    pub status: CheckStatus,
    /// Why it failed or was skipped, in one sentence.
    #[serde(default)]
    pub reason: String,
    /// The end of its output (stdout then stderr), capped.
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub duration_ms: u64,
}

/// How a repository run ended (seed 002's result statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultStatus {
    /// Applied, and every check that could run passed.
    Success,
    /// Applied, but checks still failed after the retries.
    SoftFail,
    /// Nothing could be applied.
    HardFail,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Success => "SUCCESS",
            ResultStatus::SoftFail => "SOFT_FAIL",
            ResultStatus::HardFail => "HARD_FAIL",
        }
    }
}

/// One acceptance criterion and the evidence that it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    pub text: String,
    /// The test or command that proves it (named by the writer, run by the harness).
    #[serde(default)]
    pub check: Option<String>,
    /// What the harness saw (`passed: python3 -m unittest tests.test_cli`), or why not.
    #[serde(default)]
    pub evidence: String,
    #[serde(default)]
    pub met: bool,
}

/// A secret found in the added lines of a diff. Only a masked form is ever kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFinding {
    pub path: String,
    pub line: u32,
    /// `aws access key`, `github token`, `private key`, `high-entropy string`, …
    pub kind: String,
    /// The secret masked to its last 4 characters.
    pub masked: String,
}

/// How risky a deliverable is, from what its change touches (seed 001).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReport {
    /// 0–100.
    pub score: u8,
    /// One line per contribution to the score (`touches auth: src/auth.py (+25)`).
    pub reasons: Vec<String>,
    pub secrets: Vec<SecretFinding>,
}

impl RiskReport {
    /// Above this the approval needs a critical review: the full diff opened and a second
    /// confirmation.
    pub const CRITICAL_ABOVE: u8 = 70;

    pub fn needs_critical_review(&self) -> bool {
        self.score > Self::CRITICAL_ABOVE
    }

    /// A secret blocks approval until the operator overrides it with a note.
    pub fn blocks_approval(&self) -> bool {
        !self.secrets.is_empty()
    }
}

/// One thing a run did to the world: a tool call, a file write, a command, a git operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: i64,
    /// `git worktree add`, `code-assistant/apply_diff`, `sandbox: python3 -m unittest`, …
    pub tool: String,
    /// The first 16 hex digits of the SHA-256 of the arguments as sent (never the
    /// arguments: they may hold file contents).
    pub args_digest: String,
    /// `ok`, `failed: …`, `skipped: …`.
    pub outcome: String,
    pub duration_ms: u64,
}

impl AuditEntry {
    /// An entry for something that started at `started` (unix ms) and ends now.
    pub fn finished(tool: &str, args: &str, outcome: &str, started: i64) -> AuditEntry {
        let now = crate::time::now_ms();
        AuditEntry {
            at: started,
            tool: tool.to_string(),
            args_digest: digest(args),
            outcome: outcome.to_string(),
            duration_ms: now.saturating_sub(started).max(0) as u64,
        }
    }
}

/// The first 16 hex digits of the SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
