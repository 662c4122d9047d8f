//! Placeholder until the pull request body lands.
use crate::repo::{CheckOutcome, Criterion, DiffSummary, ResultStatus, RiskReport};

pub struct PrEvidence<'a> {
    pub task_id: &'a str,
    pub title: &'a str,
    pub client_id: &'a str,
    pub quality_score: Option<f64>,
    pub result: ResultStatus,
    pub checks_before: &'a [CheckOutcome],
    pub checks_after: &'a [CheckOutcome],
    pub criteria: &'a [Criterion],
    pub cost_micros: i64,
    pub cost_estimated: bool,
    pub simulated: bool,
    pub diff: &'a DiffSummary,
    pub risk: &'a RiskReport,
    pub not_verified: &'a [String],
}

pub fn render(e: &PrEvidence<'_>) -> String {
    format!("{} {}", e.task_id, e.title)
}

pub fn title(task_id: &str, title: &str) -> String {
    format!("feat({task_id}): {title}")
}
