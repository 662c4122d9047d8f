//! The client report for invoicing: every deliverable of the month with its attempts and
//! cost, model calls by model, the approval decisions with their notes, revenue and margin,
//! and totals that equal the ledger to the micro-dollar. Simulated (offline model) costs
//! are marked and totalled apart; the real total is what an invoice may quote.

use super::month::{MonthInputs, client_months, month_bounds};
use super::{ModelSpend, TaskMonth};
use crate::money::{Micros, format_usd};
use crate::store::{Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientReport {
    pub client_id: String,
    pub name: String,
    pub month: String,
    pub tasks: Vec<ReportTask>,
    pub models: Vec<ModelSpend>,
    pub decisions: Vec<ReportDecision>,
    pub totals: ReportTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportTask {
    #[serde(flatten)]
    pub task: TaskMonth,
    /// The pull request's address, or the bundle's path; None when nothing was delivered.
    pub deliverable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportDecision {
    pub task_id: String,
    pub run_id: String,
    pub decision: String,
    pub note: String,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportTotals {
    pub real_micros: Micros,
    pub simulated_micros: Micros,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub revenue_micros: Option<Micros>,
    pub margin_micros: Option<Micros>,
    /// The client's month-to-date in the ledger's counter (real and simulated together,
    /// as the cap is charged): equal to `real_micros + simulated_micros`, or the report
    /// is refused.
    pub ledger_month_micros: Micros,
}

/// Builds the report of `client_id` for `month`. Refuses a report whose totals would not
/// equal the ledger's: that is a broken store, not a report.
pub fn client_report(
    store: &Store,
    client_id: &str,
    month: &str,
    price_share_warn_percent: u32,
) -> Result<ClientReport, String> {
    let (from, to) = month_bounds(month)?;
    if store.client(client_id).map_err(|e| e.0)?.is_none() {
        return Err(format!(
            "client {client_id} does not exist; `ecca clients list` lists the clients"
        ));
    }
    let inputs = MonthInputs {
        month,
        now_ms: crate::time::now_ms(),
        reserved: &|_| 0,
        price_share_warn_percent,
    };
    let cm = client_months(store, &inputs, Some(client_id))
        .map_err(|e: StoreError| e.0)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("client {client_id} has no month {month} in the store"))?;
    let deliverables = store
        .month_tasks(month, from, to, Some(client_id))
        .map_err(|e| e.0)?;
    let tasks = cm
        .tasks
        .iter()
        .map(|t| ReportTask {
            task: t.clone(),
            deliverable: deliverables
                .iter()
                .find(|d| d.task_id == t.task_id)
                .and_then(|d| d.deliverable_url.clone()),
        })
        .collect();
    let decisions = store
        .month_decisions(client_id, from, to)
        .map_err(|e| e.0)?
        .into_iter()
        .map(|d| ReportDecision {
            task_id: d.task_id,
            run_id: d.run_id,
            decision: d.decision,
            note: d.note,
            at: crate::time::format_ms(d.at),
        })
        .collect();
    let ledger = store
        .client_month_spend(client_id, month)
        .map_err(|e| e.0)?;
    let totals = ReportTotals {
        real_micros: cm.spent_real_micros,
        simulated_micros: cm.spent_simulated_micros,
        calls: cm.by_model.iter().map(|m| m.calls).sum(),
        input_tokens: cm.by_model.iter().map(|m| m.input_tokens).sum(),
        output_tokens: cm.by_model.iter().map(|m| m.output_tokens).sum(),
        revenue_micros: cm.revenue_micros,
        margin_micros: cm.margin_micros,
        ledger_month_micros: ledger,
    };
    if totals.real_micros + totals.simulated_micros != ledger {
        return Err(format!(
            "the cost rows of {client_id} in {month} sum to {} but the ledger's month-to-date \
             says {}; the store is inconsistent, so no report is made (run `ecca tasks` and \
             check the data directory)",
            format_usd(totals.real_micros + totals.simulated_micros),
            format_usd(ledger)
        ));
    }
    Ok(ClientReport {
        client_id: cm.client_id,
        name: cm.name,
        month: cm.month,
        tasks,
        models: cm.by_model,
        decisions,
        totals,
    })
}

fn opt_usd(m: Option<Micros>) -> String {
    m.map(format_usd).unwrap_or_else(|| "-".into())
}

fn sim(simulated: bool) -> &'static str {
    if simulated { " (simulated)" } else { "" }
}

/// The report as markdown, for an invoice's appendix.
pub fn to_markdown(r: &ClientReport) -> String {
    let mut out = format!("# {} ({}) — {}\n\n", r.name, r.client_id, r.month);
    out.push_str("## Deliverables\n\n| task | title | status | attempts | cost | price | deliverable |\n|---|---|---|---|---|---|---|\n");
    if r.tasks.is_empty() {
        out.push_str("| - | no task this month | - | - | - | - | - |\n");
    }
    for t in &r.tasks {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {}{} | {} | {} |\n",
            t.task.task_id,
            t.task.title.replace('|', "\\|"),
            t.task.status,
            t.task.attempts,
            format_usd(t.task.cost_micros),
            sim(t.task.simulated),
            opt_usd(t.task.price_micros),
            t.deliverable.as_deref().unwrap_or("-")
        ));
    }
    out.push_str("\n## Model calls\n\n| model | calls | input tokens | output tokens | cost |\n|---|---|---|---|---|\n");
    for m in &r.models {
        out.push_str(&format!(
            "| {}{} | {} | {} | {} | {} |\n",
            m.model,
            sim(m.simulated),
            m.calls,
            m.input_tokens,
            m.output_tokens,
            format_usd(m.cost_micros)
        ));
    }
    out.push_str("\n## Decisions\n\n| time (UTC) | task | decision | note |\n|---|---|---|---|\n");
    if r.decisions.is_empty() {
        out.push_str("| - | - | - | no decision this month |\n");
    }
    for d in &r.decisions {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            d.at,
            d.task_id,
            d.decision,
            d.note.replace('|', "\\|").replace('\n', " ")
        ));
    }
    let t = &r.totals;
    out.push_str(&format!(
        "\n## Totals\n\n- model spend (real): {}\n- simulated (offline model, not billed): {}\n\
         - calls: {}, input tokens: {}, output tokens: {}\n- revenue: {}\n- margin: {}\n\
         - ledger month-to-date (real + simulated): {}\n",
        format_usd(t.real_micros),
        format_usd(t.simulated_micros),
        t.calls,
        t.input_tokens,
        t.output_tokens,
        opt_usd(t.revenue_micros),
        opt_usd(t.margin_micros),
        format_usd(t.ledger_month_micros)
    ));
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report as CSV: one line per task, then a `TOTAL` line; amounts in micro-dollars.
pub fn to_csv(r: &ClientReport) -> String {
    let mut out = String::from(
        "kind,task_id,title,status,attempts,cost_micros,simulated,price_micros,deliverable\n",
    );
    for t in &r.tasks {
        out.push_str(&format!(
            "task,{},{},{},{},{},{},{},{}\n",
            csv_field(&t.task.task_id),
            csv_field(&t.task.title),
            t.task.status,
            t.task.attempts,
            t.task.cost_micros,
            t.task.simulated,
            t.task
                .price_micros
                .map(|p| p.to_string())
                .unwrap_or_default(),
            csv_field(t.deliverable.as_deref().unwrap_or(""))
        ));
    }
    let t = &r.totals;
    out.push_str(&format!(
        "total_real,,,,,{},false,{},\ntotal_simulated,,,,,{},true,,\n",
        t.real_micros,
        t.revenue_micros.map(|p| p.to_string()).unwrap_or_default(),
        t.simulated_micros
    ));
    out
}
