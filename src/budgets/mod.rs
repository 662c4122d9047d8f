//! A client's month as the operator runs the business on it: the cap and what is spent,
//! held and projected, what the client pays and the margin left, per task and per model.
//! Real and simulated (offline model) spend are kept apart in every figure.
//!
//! These are the figures the Clients view draws and `ecca report` prints; they are computed
//! from the store and the ledger's live reservations, never from the console's own counts.

pub mod month;
pub mod report;

use crate::domain::TaskStatus;
use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// At this share of its monthly cap (percent) a client is marked and the header says so.
pub const WARN_PERCENT: u32 = 80;

/// One client's month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMonth {
    pub client_id: String,
    pub name: String,
    /// `YYYY-MM`.
    pub month: String,
    pub cap_micros: Micros,
    /// Month-to-date spend with real providers.
    pub spent_real_micros: Micros,
    /// Month-to-date spend of the offline model (simulated): shown apart, never added to
    /// the real figure.
    pub spent_simulated_micros: Micros,
    /// Held right now by in-flight reservations (calls under way).
    pub reserved_micros: Micros,
    /// Real spend per day, averaged over the last 7 days (fewer at the month's start).
    pub burn_per_day_micros: Micros,
    /// Month-to-date real spend plus the burn rate over the days left in the month.
    pub projected_month_micros: Micros,
    /// `YYYY-MM-DD` on which the cap is reached at this burn rate, when that falls within
    /// the month; None when it does not (or nothing burns).
    pub cap_reached_on: Option<String>,
    /// The monthly retainer, when the client has one.
    pub retainer_micros: Option<Micros>,
    /// Retainer plus the prices of this month's priced tasks; None when the client has
    /// neither (no revenue recorded: no margin to show).
    pub revenue_micros: Option<Micros>,
    /// Revenue minus real spend.
    pub margin_micros: Option<Micros>,
    /// Real spend divided by the deliverables approved this month; None with none approved.
    pub cost_per_approved_micros: Option<Micros>,
    /// Runs paused on this client's cap, with the reason the supervisor gave.
    pub paused: Vec<PausedRun>,
    /// This month's tasks, newest first.
    pub tasks: Vec<TaskMonth>,
    /// This month's spend by model, largest first.
    pub by_model: Vec<ModelSpend>,
}

impl ClientMonth {
    /// What the ledger charges the cap with: dry runs of the offline model spend the cap
    /// too (so budgets are exercised with no key), but the two are shown apart.
    pub fn charged_micros(&self) -> Micros {
        self.spent_real_micros + self.spent_simulated_micros
    }

    /// The charged spend as a share of the cap, in whole percent (a zero cap counts as
    /// full).
    pub fn percent_of_cap(&self) -> u32 {
        if self.cap_micros <= 0 {
            return 100;
        }
        let pct = (self.charged_micros().max(0) as i128 * 100) / self.cap_micros as i128;
        pct.min(u32::MAX as i128) as u32
    }

    /// Past the warning share of the cap.
    pub fn warned(&self) -> bool {
        self.percent_of_cap() >= WARN_PERCENT
    }

    /// At or past the cap: new calls are refused and runs pause.
    pub fn capped(&self) -> bool {
        self.charged_micros() >= self.cap_micros
    }
}

/// A run paused on the client's cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PausedRun {
    pub task_id: String,
    pub run_id: String,
    pub reason: String,
}

/// A task of the month and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMonth {
    pub task_id: String,
    pub title: String,
    pub status: TaskStatus,
    pub attempts: i64,
    /// Spend of this task in the month (cost_log rows of the month).
    pub cost_micros: Micros,
    /// True when the cost is the offline model's (simulated).
    pub simulated: bool,
    pub budget_micros: Micros,
    /// What the client pays for the task, when it is priced.
    pub price_micros: Option<Micros>,
    /// The spend passed the configured share of the price.
    pub over_price_share: bool,
}

/// Spend of one model in the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpend {
    pub model: String,
    pub simulated: bool,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: Micros,
}
