//! The one contract between the supervisor and its frontends: [`Command`] in, [`Event`]
//! out. Both are plain serialisable data, so the same contract can run in-process today and
//! over a local socket later (`ecca serve`) without change.

use crate::config::ProviderKind;
use crate::engine::fsm::AgentState;
use crate::money::{Micros, Usage};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A task to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub client_id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub stack: String,
    /// `manual`, `upwork`, `batch` or `schedule`.
    #[serde(default = "default_source")]
    pub source: String,
    /// `builtin` (the only one that runs today), `claude-code`, `codex`, `aider`.
    #[serde(default = "default_agent")]
    pub agent_kind: String,
    /// The task's cap; the config's default when absent.
    #[serde(default)]
    pub budget_micros: Option<Micros>,
    /// The model backend; the configured one (`auto` resolved) when absent. `offline` for a
    /// dry run.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
    /// For a client with a repository: the branch to start from (default: the remote's
    /// default branch).
    #[serde(default)]
    pub base_branch: Option<String>,
    /// Acceptance criteria besides the `- [ ] …` lines of the description.
    #[serde(default)]
    pub acceptance: Vec<String>,
    /// What the client pays for this task (a fixed-price job's budget), for margins.
    #[serde(default)]
    pub price_micros: Option<Micros>,
}

/// What the operator confirmed with an approval, for deliverables that need more than one
/// key: a risky change's critical review, and the override of a secret found in the diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReview {
    /// The full diff was opened and the approval confirmed a second time.
    #[serde(default)]
    pub critical_reviewed: bool,
    /// Why a secret found in the diff is not one (or is meant to ship); required to
    /// approve a deliverable with a secret finding.
    #[serde(default)]
    pub secret_override: Option<String>,
}

/// A batch to launch: a manifest's text (see `crate::batch` for its format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewBatch {
    /// The manifest's TOML text, stored with the batch as launched.
    pub manifest: String,
    /// Where the manifest came from (a path), for messages only.
    #[serde(default)]
    pub source: String,
    /// Overrides the manifest's concurrency.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// The operator confirmed launching although the forecast passes what remains of the
    /// client's month or the batch's cap. Without it such a launch is refused.
    #[serde(default)]
    pub confirmed_over_budget: bool,
    /// The model backend for every app; the configured one when absent.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
}

fn default_source() -> String {
    "manual".into()
}

fn default_agent() -> String {
    "builtin".into()
}

/// What a frontend asks of the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Creates or updates a client.
    UpsertClient {
        id: String,
        name: String,
        monthly_budget_micros: Micros,
    },
    /// Creates a task and queues its first run.
    StartTask { task: NewTask },
    /// Creates one task of the same spec per agent kind (two, different) as a comparison
    /// and starts them; delivering one rejects (or cancels) the other.
    StartCompare {
        task: Box<NewTask>,
        agents: Vec<String>,
    },
    /// Creates a task left pending for the daily loop to start (retainer work).
    QueueTask { task: Box<NewTask> },
    /// Delivers a deliverable that awaits approval.
    Approve {
        task_id: String,
        #[serde(default)]
        review: ApprovalReview,
    },
    /// Sends a deliverable back to coding with the operator's note.
    Revise { task_id: String, note: String },
    /// Ends the task without delivering; the note says why.
    Reject { task_id: String, note: String },
    /// Stops a task that has not ended.
    Cancel { task_id: String },
    /// Starts a fresh attempt of a task that failed, was rejected or cancelled.
    Retry { task_id: String },
    /// Continues an interrupted or paused run from its last checkpoint.
    Resume { task_id: String },
    /// Sets a client's monthly cap (stored with the time and note); runs the old cap
    /// paused resume when the new one leaves room.
    SetClientCap {
        client_id: String,
        monthly_budget_micros: Micros,
        note: String,
    },
    /// Sets a task's budget (stored with the time and note); a run paused or failed on
    /// its budget can then be resumed or retried.
    SetTaskBudget {
        task_id: String,
        budget_micros: Micros,
        note: String,
    },
    /// Sets (or clears) a client's monthly retainer, its revenue for margins and reports.
    SetClientRetainer {
        client_id: String,
        retainer_micros: Option<Micros>,
    },
    /// Launches a batch from a manifest.
    StartBatch { batch: Box<NewBatch> },
    /// Starts a fresh attempt of every failed or cancelled app of a batch.
    RetryBatch { batch_id: String },
    /// Cancels every app of a batch that has not ended and the batch itself.
    CancelBatch { batch_id: String },
    /// Starts, stops, restarts or removes a container ecca manages, named by container
    /// name, id, compose service or server.
    Container {
        name: String,
        verb: crate::containers::managed::ContainerVerb,
    },
    /// Starts a registry server in a hardened container; `client` picks the client of a
    /// client-github instance.
    StartServer {
        server: String,
        #[serde(default)]
        client: Option<String>,
    },
    /// Builds ecca's images that are missing or stale; progress comes as `ImagesProgress`.
    BuildImages,
}

/// The supervisor's answer to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Done,
    TaskStarted {
        task_id: String,
        run_id: String,
    },
    TaskQueued {
        task_id: String,
    },
    BatchStarted {
        batch_id: String,
        task_ids: Vec<String>,
    },
    /// The tasks of a comparison, in the order of their agent kinds.
    CompareStarted {
        task_ids: Vec<String>,
    },
}

/// What the supervisor tells every subscriber. Variants only grow; frontends ignore what
/// they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A task was created.
    TaskCreated {
        task_id: String,
        client_id: String,
        title: String,
        stack: String,
        /// Who writes the change: `builtin` or a third-party agent's kind.
        #[serde(default = "default_agent")]
        agent_kind: String,
        /// The comparison this task is one side of (its first task's id).
        #[serde(default)]
        compare_group: Option<String>,
    },
    /// An attempt of a task began (or resumed) working.
    RunStarted {
        task_id: String,
        run_id: String,
        attempt: i64,
        resumed: bool,
    },
    /// The agent moved to another state or step.
    StateChanged {
        task_id: String,
        run_id: String,
        state: AgentState,
        step: String,
        iteration: u32,
    },
    /// A model call began.
    ModelStarted {
        task_id: String,
        run_id: String,
        purpose: String,
        provider: String,
        model: String,
        simulated: bool,
        /// What the prompt will cost, estimated from its length (one token per four
        /// bytes) at the input price: the start of the live cost meter.
        #[serde(default)]
        prompt_estimate_micros: Micros,
        /// The output price per million tokens, to price the streamed text as it comes.
        #[serde(default)]
        output_price_micros: Micros,
    },
    /// Streamed model output, as it arrives.
    ModelDelta { run_id: String, text: Arc<str> },
    /// Streamed output of several runs, sent together once a frame: one event (one socket
    /// line, one wake-up of each console) for every run that streamed in that frame.
    ModelDeltas { deltas: Vec<RunText> },
    /// A model call was priced and recorded.
    CostRecorded {
        task_id: String,
        run_id: String,
        client_id: String,
        model: String,
        simulated: bool,
        usage: Usage,
        /// True when the provider reported no usage and `usage` is ecca's estimate.
        #[serde(default)]
        estimated: bool,
        cost_micros: Micros,
        task_total_micros: Micros,
        client_month_micros: Micros,
    },
    /// A tool step finished: `ok`, `skipped` or `failed`, with a one-line summary.
    ToolFinished {
        task_id: String,
        run_id: String,
        step: String,
        outcome: String,
        summary: String,
    },
    /// A line for the run's timeline.
    Note {
        task_id: String,
        run_id: String,
        text: String,
    },
    /// The deliverable waits for the operator.
    AwaitingApproval {
        task_id: String,
        run_id: String,
        quality_score: Option<f64>,
    },
    /// An operator's decision was recorded.
    DecisionRecorded {
        task_id: String,
        decision: String,
        note: String,
    },
    /// The deliverable was handed over.
    Delivered { task_id: String, url: String },
    /// The run stopped until resumed (a budget); `reason` is for the operator.
    Paused {
        task_id: String,
        run_id: String,
        reason: String,
    },
    /// A client's cap or a task's budget changed (`task_id` set for a task's budget).
    BudgetChanged {
        client_id: String,
        task_id: Option<String>,
        old_micros: Micros,
        new_micros: Micros,
        note: String,
    },
    /// A batch was launched.
    BatchStarted {
        batch_id: String,
        client_id: String,
        name: String,
        apps: usize,
    },
    /// A batch ended: `finished` or `cancelled`.
    BatchFinished { batch_id: String, status: String },
    /// The run ended: `delivered`, `failed`, `rejected` or `cancelled`.
    RunFinished {
        task_id: String,
        run_id: String,
        status: String,
        reason: Option<String>,
    },
    /// Runs that were in flight when ecca last stopped, now `interrupted`.
    Recovered { interrupted: usize },
    /// A container action was carried out (`verb`: start, stop, restart, remove).
    ContainerChanged { name: String, verb: String },
    /// A line of `BuildImages`' progress.
    ImagesProgress { line: String },
    /// Something the operator should hear about (`kind`: approval, failure, budget);
    /// `terminal` says whether consoles ring for it.
    Notice {
        kind: String,
        text: String,
        terminal: bool,
    },
}

/// One run's streamed text within a [`Event::ModelDeltas`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunText {
    pub run_id: String,
    pub text: Arc<str>,
}

impl Event {
    /// The streamed text an event carries, per run: one pair for `ModelDelta`, one per run
    /// for `ModelDeltas`, none for any other event.
    pub fn streamed(&self) -> impl Iterator<Item = (&str, &Arc<str>)> {
        let (one, many) = match self {
            Event::ModelDelta { run_id, text } => (Some((run_id.as_str(), text)), &[][..]),
            Event::ModelDeltas { deltas } => (None, deltas.as_slice()),
            _ => (None, &[][..]),
        };
        one.into_iter()
            .chain(many.iter().map(|d| (d.run_id.as_str(), &d.text)))
    }

    /// The task an event is about, when it is about one.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Event::TaskCreated { task_id, .. }
            | Event::RunStarted { task_id, .. }
            | Event::StateChanged { task_id, .. }
            | Event::ModelStarted { task_id, .. }
            | Event::CostRecorded { task_id, .. }
            | Event::ToolFinished { task_id, .. }
            | Event::Note { task_id, .. }
            | Event::AwaitingApproval { task_id, .. }
            | Event::DecisionRecorded { task_id, .. }
            | Event::Delivered { task_id, .. }
            | Event::Paused { task_id, .. }
            | Event::RunFinished { task_id, .. } => Some(task_id),
            Event::ModelDelta { .. }
            | Event::ModelDeltas { .. }
            | Event::Recovered { .. }
            | Event::BudgetChanged { .. }
            | Event::BatchStarted { .. }
            | Event::BatchFinished { .. }
            | Event::ContainerChanged { .. }
            | Event::ImagesProgress { .. }
            | Event::Notice { .. } => None,
        }
    }
}
