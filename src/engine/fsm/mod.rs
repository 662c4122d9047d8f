//! One agent run as a pure state machine: `handle(event) -> effects`. No IO, no clock, no
//! async: the driver performs the effects and feeds their results back as events, and the
//! whole machine serialises as a checkpoint so a run can resume where it stopped.
//!
//! The loop: plan → per subtask retrieve → write (batched when there are many) → lint and
//! fix (≤ 3 cycles) → execute → write and run tests → evaluate → rewrite while the score is
//! under the pass mark (≤ 3 times) → approval gate → deliver → store the good snippets.

mod agent_steps;
pub mod repo;
mod repo_steps;
mod steps;

pub use steps::deliverable_files;
#[cfg(test)]
mod repo_tests;
#[cfg(test)]
mod tests;

use super::context::RollingContext;
use super::prompts::{Evaluation, SubtaskSpec, TaskBrief};
use super::tools::{Snippet, ToolOutcome, ToolRequest};
use crate::llm::Purpose;
use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// The state an operator sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Pending,
    Planning,
    Coding,
    Testing,
    Evaluating,
    AwaitingApproval,
    Delivering,
    Delivered,
    Paused,
    Failed,
    Rejected,
    Cancelled,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Pending => "pending",
            AgentState::Planning => "planning",
            AgentState::Coding => "coding",
            AgentState::Testing => "testing",
            AgentState::Evaluating => "evaluating",
            AgentState::AwaitingApproval => "awaiting_approval",
            AgentState::Delivering => "delivering",
            AgentState::Delivered => "delivered",
            AgentState::Paused => "paused",
            AgentState::Failed => "failed",
            AgentState::Rejected => "rejected",
            AgentState::Cancelled => "cancelled",
        }
    }
}

/// Where the machine is, finer than [`AgentState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Planning,
    Retrieving,
    WritingBatch,
    Writing,
    Linting,
    FixingLint,
    Executing,
    WritingTests,
    Testing,
    Evaluating,
    AwaitingApproval,
    Delivering,
    Storing,
    /// A repository run: the worktree is being made from the client's mirror.
    Preparing,
    /// The repository's test command on the base commit, before any model call.
    SmokeCheck,
    /// Reading the repository's structure and searching it for the task's words.
    Exploring,
    /// Reading the files the plan names.
    Reading,
    /// The writer's diff being applied to the worktree.
    Applying,
    /// The repository's checks and the criteria's commands after the change.
    Checking,
    /// The diff against the base and its risk.
    Inspecting,
    /// A third-party agent (Claude Code, Codex, Aider) works in the worktree.
    AgentWorking,
    Paused {
        reason: String,
        resume_to: Box<Phase>,
    },
    Done {
        end: End,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum End {
    Delivered,
    Failed { reason: String },
    Rejected { note: String },
    Cancelled,
}

impl Phase {
    pub fn agent_state(&self) -> AgentState {
        match self {
            Phase::Pending => AgentState::Pending,
            Phase::Planning => AgentState::Planning,
            Phase::Retrieving
            | Phase::WritingBatch
            | Phase::Writing
            | Phase::Linting
            | Phase::FixingLint
            | Phase::Reading
            | Phase::Applying
            | Phase::AgentWorking => AgentState::Coding,
            Phase::Preparing | Phase::Exploring => AgentState::Planning,
            Phase::Executing
            | Phase::WritingTests
            | Phase::Testing
            | Phase::SmokeCheck
            | Phase::Checking => AgentState::Testing,
            Phase::Evaluating | Phase::Inspecting => AgentState::Evaluating,
            Phase::AwaitingApproval => AgentState::AwaitingApproval,
            Phase::Delivering | Phase::Storing => AgentState::Delivering,
            Phase::Paused { .. } => AgentState::Paused,
            Phase::Done {
                end: End::Delivered,
            } => AgentState::Delivered,
            Phase::Done {
                end: End::Failed { .. },
            } => AgentState::Failed,
            Phase::Done {
                end: End::Rejected { .. },
            } => AgentState::Rejected,
            Phase::Done {
                end: End::Cancelled,
            } => AgentState::Cancelled,
        }
    }

    /// The step name shown beside the state (`lint`, `write`, …).
    pub fn step(&self) -> &'static str {
        match self {
            Phase::Pending => "queued",
            Phase::Planning => "plan",
            Phase::Retrieving => "retrieve",
            Phase::WritingBatch => "write (batched)",
            Phase::Writing => "write",
            Phase::Linting => "lint",
            Phase::FixingLint => "fix lint",
            Phase::Executing => "execute",
            Phase::WritingTests => "write tests",
            Phase::Testing => "test",
            Phase::Evaluating => "evaluate",
            Phase::AwaitingApproval => "approval",
            Phase::Delivering => "deliver",
            Phase::Storing => "store",
            Phase::Preparing => "worktree",
            Phase::SmokeCheck => "smoke check",
            Phase::Exploring => "explore",
            Phase::Reading => "read",
            Phase::Applying => "apply diff",
            Phase::Checking => "checks",
            Phase::Inspecting => "diff & risk",
            Phase::AgentWorking => "agent",
            Phase::Paused { .. } => "paused",
            Phase::Done { .. } => "done",
        }
    }
}

/// The tool servers a step (as `Phase::step` names it) calls while in it, for "which runs
/// use this server now". Lint of TypeScript runs in code-execution, so lint names both.
pub fn servers_of_step(step: &str) -> &'static [&'static str] {
    match step {
        "retrieve" | "store" => &["vector-code"],
        "lint" | "fix lint" => &["linter", "code-execution"],
        "execute" | "test" | "smoke check" | "checks" => &["code-execution"],
        "explore" | "read" => &["code-context"],
        "apply diff" => &["code-assistant"],
        "deliver" => &["client-github"],
        _ => &[],
    }
}

/// Which model a call wants; the driver maps it to a model name from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Planner,
    Writer,
    /// The cheaper model: the evaluator, and planner and writer past the switch point.
    Cheap,
}

/// Why the ledger refused a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The task's own cap would be passed.
    TaskBudget { spent: Micros, cap: Micros },
    /// The client's monthly cap would be passed.
    ClientBudget { reason: String },
}

/// What happens to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    Start,
    ModelReplied {
        purpose: Purpose,
        text: String,
        task_spent: Micros,
    },
    ModelRefused {
        purpose: Purpose,
        refusal: Refusal,
    },
    ModelFailed {
        purpose: Purpose,
        error: String,
        /// The same call cannot succeed (key refused, request rejected, reply too long
        /// for its limit): fail the run now instead of retrying.
        #[serde(default)]
        permanent: bool,
    },
    ToolReturned {
        outcome: ToolOutcome,
    },
    Approved,
    Revised {
        note: String,
    },
    Rejected {
        note: String,
    },
    Delivered {
        url: String,
    },
    DeliveryFailed {
        error: String,
    },
    /// Leave `paused` (the operator raised the budget or asked to resume).
    Resume,
    Cancel,
    /// The worktree of a repository run exists: where, on which branch and base, and how
    /// the repository checks itself.
    RepoReady {
        worktree: String,
        branch: String,
        base_branch: String,
        base_commit: String,
        commands: repo::RepoCommands,
    },
    /// The worktree could not be made.
    RepoFailed {
        error: String,
    },
    /// The change against the base commit, and its risk.
    DiffInspected {
        diff: crate::repo::DiffSummary,
        risk: crate::repo::RiskReport,
    },
    /// A step of a repository delivery that must not be repeated: the commit made, the
    /// branch pushed.
    DeliveryProgress {
        commit: Option<String>,
        pushed: bool,
    },
    /// The third-party agent is done, judged from its output stream, never its exit code:
    /// `ok`, the sentence why (or its final message), and the files it changed.
    AgentExited {
        ok: bool,
        reason: String,
        changed: Vec<String>,
    },
}

/// A model call the machine wants made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    pub purpose: Purpose,
    pub tier: Tier,
    pub system: String,
    pub prompt: String,
    pub max_tokens: u64,
}

/// A file of the deliverable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverableFile {
    pub path: String,
    pub content: String,
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    CallModel(ModelCall),
    CallTool {
        request: ToolRequest,
    },
    /// The deliverable waits for the operator's decision.
    AwaitApproval,
    /// Make the run's worktree from the client's mirror (fetched first).
    PrepareRepo,
    /// Compute the diff of the worktree against its base commit, and score its risk.
    InspectDiff,
    /// Run the third-party agent `kind` in the worktree with `prompt`.
    RunAgent {
        kind: String,
        prompt: String,
    },
    Deliver {
        files: Vec<DeliverableFile>,
    },
    /// The run stops until `Resume`; `reason` is for the operator.
    Pause {
        reason: String,
    },
    /// A line for the run's timeline.
    Note {
        text: String,
    },
    Finish {
        end: End,
    },
    /// The event does not apply in this phase; nothing changed.
    Invalid {
        why: String,
    },
}

/// Limits fixed when the run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub task_budget: Micros,
    pub switch_at_percent: u8,
    pub pass_score: f64,
    pub max_rewrites: u32,
    pub max_lint_cycles: u32,
    pub batch_threshold: usize,
    pub model_retries: u32,
    pub max_tokens_plan: u64,
    pub max_tokens_write: u64,
    pub max_tokens_batch: u64,
    pub max_tokens_tests: u64,
    pub max_tokens_evaluate: u64,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config, task_budget: Micros) -> Self {
        Limits {
            task_budget,
            switch_at_percent: config.budgets.switch_at_percent,
            pass_score: 7.0,
            max_rewrites: 3,
            max_lint_cycles: 3,
            batch_threshold: 10,
            model_retries: 2,
            max_tokens_plan: config.max_tokens.plan,
            max_tokens_write: config.max_tokens.write,
            max_tokens_batch: config.max_tokens.write_batch,
            max_tokens_tests: config.max_tokens.tests,
            max_tokens_evaluate: config.max_tokens.evaluate,
        }
    }
}

/// The work on one subtask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskWork {
    pub spec: SubtaskSpec,
    pub snippets: Vec<Snippet>,
    pub code: Option<String>,
    pub tests: Option<String>,
    /// Code must be (re)written before it is checked.
    pub needs_write: bool,
    pub lint_cycles: u32,
    pub lint: Option<ToolOutcome>,
    pub exec: Option<ToolOutcome>,
    pub test: Option<ToolOutcome>,
    pub evaluation: Option<Evaluation>,
    pub rewrites: u32,
}

/// The whole machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub task: TaskBrief,
    pub limits: Limits,
    pub phase: Phase,
    pub approach: String,
    pub subtasks: Vec<SubtaskWork>,
    pub current: usize,
    /// Code writes so far, every subtask and round counted.
    pub iterations: u32,
    pub revisions: u32,
    pub revision_note: Option<String>,
    pub task_spent: Micros,
    pub switched_to_cheap: bool,
    pub batch_tried: bool,
    pub model_failures: u32,
    pub context: RollingContext,
    /// The effect whose answer the machine waits for; re-issued on resume.
    pub pending: Option<Effect>,
    /// Every operator-visible state the run went through, in order.
    pub visited: Vec<AgentState>,
    /// Steps that did not run, with why (`lint: no linter server configured`).
    pub skipped: Vec<String>,
    pub deliverable: Option<String>,
    /// Set when the task's client has a repository: the run works in a worktree of it.
    #[serde(default)]
    pub repo: Option<repo::RepoWork>,
}

impl Agent {
    pub fn new(task: TaskBrief, limits: Limits) -> Agent {
        Agent {
            task,
            limits,
            phase: Phase::Pending,
            approach: String::new(),
            subtasks: Vec::new(),
            current: 0,
            iterations: 0,
            revisions: 0,
            revision_note: None,
            task_spent: 0,
            switched_to_cheap: false,
            batch_tried: false,
            model_failures: 0,
            context: RollingContext::default(),
            pending: None,
            visited: vec![AgentState::Pending],
            skipped: Vec::new(),
            deliverable: None,
            repo: None,
        }
    }

    pub fn state(&self) -> AgentState {
        self.phase.agent_state()
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done { .. })
    }

    /// The mean evaluation score over subtasks that have one.
    pub fn quality_score(&self) -> Option<f64> {
        if let Some(score) = self.repo.as_ref().and_then(|r| r.score) {
            return Some((score * 10.0).round() / 10.0);
        }
        let scores: Vec<f64> = self
            .subtasks
            .iter()
            .filter_map(|s| s.evaluation.as_ref().map(|e| e.score))
            .collect();
        if scores.is_empty() {
            return None;
        }
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        Some((mean * 10.0).round() / 10.0)
    }

    /// The effects to perform to pick the run up from a checkpoint.
    pub fn resume_effects(&self) -> Vec<Effect> {
        match &self.phase {
            Phase::Pending => vec![],
            Phase::AwaitingApproval => vec![Effect::AwaitApproval],
            _ => self.pending.iter().cloned().collect(),
        }
    }

    /// Applies one event and returns what must be done next.
    pub fn handle(&mut self, event: AgentEvent) -> Vec<Effect> {
        let before = self.state();
        let effects = steps::handle(self, event);
        let after = self.state();
        if after != before && self.visited.last() != Some(&after) {
            self.visited.push(after);
        }
        effects
    }
}
