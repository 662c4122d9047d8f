//! Rows of the store as plain data.

use crate::domain::TaskStatus;
use crate::money::{Micros, Usage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    pub monthly_budget_micros: Micros,
    pub repo_url: Option<String>,
    pub created_at: i64,
}

/// A client with its spend in one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSpend {
    pub client: ClientRecord,
    pub month: String,
    pub spent_micros: Micros,
    pub calls: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub client_id: String,
    pub title: String,
    pub description: String,
    pub stack: String,
    pub source: String,
    pub agent_kind: String,
    pub model_mode: String,
    pub status: TaskStatus,
    pub status_reason: Option<String>,
    pub budget_micros: Micros,
    pub deliverable_url: Option<String>,
    pub iterations: i64,
    pub quality_score: Option<f64>,
    pub tokens_used: i64,
    pub cost_micros: Micros,
    /// True when some of `cost_micros` is an estimate (a provider reported no usage).
    #[serde(default)]
    pub cost_estimated: bool,
    pub model_calls: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
    /// The branch of the client's repository the work starts from (None: the default).
    #[serde(default)]
    pub base_branch: Option<String>,
    /// Acceptance criteria the harness must see proven before the approval gate.
    #[serde(default)]
    pub acceptance: Vec<String>,
    /// `SUCCESS`, `SOFT_FAIL` or `HARD_FAIL` once a repository run has ended its checks.
    #[serde(default)]
    pub result_status: Option<String>,
    /// The batch this task is an app of, and the app's name in its manifest.
    #[serde(default)]
    pub batch_id: Option<String>,
    #[serde(default)]
    pub batch_app: Option<String>,
    /// What the client pays for this task (a fixed-price job), for margins.
    #[serde(default)]
    pub price_micros: Option<Micros>,
    /// The comparison this task is one side of (the id of its first task): sibling tasks
    /// of one spec run by different agent kinds; approving one rejects the others.
    #[serde(default)]
    pub compare_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub task_id: String,
    pub attempt: i64,
    pub status: TaskStatus,
    pub agent_state: String,
    /// JSON checkpoint of the agent state machine.
    pub fsm_state: String,
    pub tokens_used: i64,
    pub cost_micros: Micros,
    pub model_calls: i64,
    pub owner_pid: Option<i64>,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// One priced model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    pub at: i64,
    pub month: String,
    pub client_id: String,
    pub task_id: String,
    pub run_id: String,
    pub provider: String,
    pub model: String,
    pub purpose: String,
    pub simulated: bool,
    pub usage: Usage,
    pub cost_micros: Micros,
    pub reserved_micros: Micros,
    /// `ok`, `cut` (the stream ended early) or `error`.
    pub outcome: String,
    /// True when the provider reported no usage and `usage` is ecca's estimate.
    #[serde(default)]
    pub estimated: bool,
}

/// Sums over the cost log, for reconciliation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostTotals {
    pub rows: i64,
    pub cost_micros: Micros,
    pub tokens: i64,
}

/// `budget_changes.kind` of a client's monthly cap.
pub const BUDGET_KIND_CLIENT: &str = "client_cap";
/// `budget_changes.kind` of a task's budget.
pub const BUDGET_KIND_TASK: &str = "task_budget";

/// A change of a client's monthly cap (`task_id` None) or of a task's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetChangeRecord {
    pub at: i64,
    pub client_id: String,
    pub task_id: Option<String>,
    /// [`BUDGET_KIND_CLIENT`] or [`BUDGET_KIND_TASK`].
    pub kind: String,
    pub old_micros: Micros,
    pub new_micros: Micros,
    pub note: String,
}
