//! Sample data with a fixed clock: what `ecca screenshot` draws by default and what the
//! snapshot tests pin. Nothing in it depends on the time or the machine.

use super::app::{App, Header, View};
use super::keymap::Keymap;
use super::model::{Detail, OUTPUT_CAP, RunRow, StepView, TimelineEntry};
use super::ring::LineRing;
use super::theme::Theme;
use crate::config::ProviderKind;
use crate::domain::TaskStatus;

/// 2026-11-21 09:00:00 UTC.
pub const NOW: i64 = 1_795_338_000_000;

#[allow(clippy::too_many_arguments)] // a table of sample rows reads best flat
fn row(
    id: &str,
    client: &str,
    title: &str,
    status: TaskStatus,
    state: &str,
    step: &str,
    it: i64,
    q: Option<f64>,
    cost: i64,
    started_min_ago: i64,
) -> RunRow {
    let started = NOW - started_min_ago * 60_000;
    RunRow {
        task_id: id.into(),
        run_id: Some(format!("{id}/r1")),
        client_id: client.into(),
        title: title.into(),
        agent: "builtin".into(),
        status,
        state: state.into(),
        step: step.into(),
        iteration: it,
        quality: q,
        tokens: cost / 4,
        cost,
        cost_estimated: false,
        budget: 1_000_000,
        simulated: true,
        created_at: started,
        started_at: Some(started),
        ended_at: status.is_terminal().then_some(started + 95_000),
        waiting_since: (status == TaskStatus::AwaitingApproval).then_some(started + 120_000),
        reason: None,
    }
}

pub fn rows() -> Vec<RunRow> {
    vec![
        row(
            "T-0007",
            "acme",
            "Rork app 3/21: habit tracker screens",
            TaskStatus::Running,
            "coding",
            "lint",
            2,
            None,
            31_220,
            2,
        ),
        row(
            "T-0006",
            "globex",
            "Upwork #4471: CSV invoice importer",
            TaskStatus::AwaitingApproval,
            "awaiting_approval",
            "",
            1,
            Some(8.5),
            12_870,
            14,
        ),
        row(
            "T-0005",
            "acme",
            "Retainer: weekly SEO report script",
            TaskStatus::AwaitingApproval,
            "awaiting_approval",
            "",
            2,
            Some(7.0),
            18_404,
            61,
        ),
        row(
            "T-0004",
            "initech",
            "Fix flaky webhook retry",
            TaskStatus::Delivered,
            "delivered",
            "",
            1,
            Some(9.0),
            9_312,
            180,
        ),
        row(
            "T-0003",
            "acme",
            "Rork app 1/21: onboarding",
            TaskStatus::Failed,
            "failed",
            "",
            3,
            Some(5.0),
            1_000_000,
            240,
        ),
        row(
            "T-0002",
            "globex",
            "Write a Python hello world",
            TaskStatus::Paused,
            "paused",
            "",
            0,
            None,
            4_101,
            300,
        ),
        row(
            "T-0001",
            "default",
            "Try the offline model",
            TaskStatus::Cancelled,
            "cancelled",
            "",
            0,
            None,
            0,
            420,
        ),
    ]
}

pub fn detail() -> Detail {
    let mut output = LineRing::new(OUTPUT_CAP);
    for line in [
        "── plan (claude-sonnet-4-5, simulated) ──",
        "{\"stack\": \"python\", \"approach\": \"one module with a CLI entry point\",",
        " \"subtasks\": [{\"title\": \"weekly SEO report\", \"filename\": \"report.py\"}]}",
        "── write (claude-sonnet-4-5, simulated) ──",
        "```python",
        "def main() -> str:",
        "    rows = fetch_rankings(week=current_week())",
        "    return render(rows)",
        "```",
    ] {
        output.push_line(line.into());
    }
    let code = [
        "\"\"\"Weekly SEO report for Acme.\"\"\"",
        "",
        "def main() -> str:",
        "    rows = fetch_rankings(week=current_week())",
        "    return render(rows)",
    ];
    let mut diff = vec![
        "--- /dev/null".to_string(),
        "+++ b/report.py".into(),
        format!("@@ -0,0 +1,{} @@", code.len()),
    ];
    diff.extend(code.iter().map(|l| format!("+{l}")));
    let timeline = [
        "pending · queued",
        "planning · plan",
        "coding · retrieve",
        "  retrieve: 2 snippet(s)",
        "coding · write",
        "coding · lint",
        "  lint: ruff 0.17.6: 1 problem(s)",
        "testing · execute",
        "  execute: exit 0",
        "testing · test",
        "  test: exit 0",
        "evaluating · evaluate",
        "awaiting_approval · approval",
    ];
    Detail {
        task_id: "T-0005".into(),
        run_id: "T-0005/r1".into(),
        timeline: timeline
            .iter()
            .enumerate()
            .map(|(i, t)| TimelineEntry {
                at: NOW - (60 - i as i64) * 1000,
                text: (*t).into(),
            })
            .collect(),
        output,
        diff,
        lint: StepView {
            label: "ruff 0.17.6: 1 problem(s)".into(),
            lines: vec!["report.py:4:12 warning line too long (92 > 88) [E501]".into()],
        },
        tests: StepView {
            label: "exit 0".into(),
            lines: vec![
                "exit 0  412 ms".into(),
                "! Ran 3 tests in 0.004s".into(),
                "! OK".into(),
            ],
        },
        exec: StepView {
            label: "exit 0".into(),
            lines: vec![
                "exit 0  188 ms".into(),
                "│ week 47: 12 keywords up, 3 down".into(),
            ],
        },
        skipped: vec![],
        issues: vec!["report.py: no retry when the rankings API times out".into()],
        budget: 1_000_000,
        switch_percent: 70,
        client_spent: 1_203_455,
        client_cap: 2_000_000_000,
        client_month_estimated: false,
    }
}

/// The sample console, on `view`.
pub fn app(theme: Theme, keymap: Keymap, view: View) -> App {
    let header = Header {
        provider: ProviderKind::Offline,
        tools: "MCP tool servers: code-execution, linter, vector-code".into(),
    };
    let clients = vec!["acme".into(), "globex".into(), "initech".into()];
    let mut app = App::new(keymap, theme, header, rows(), clients, NOW);
    app.view = view;
    if matches!(view, View::Detail | View::Approvals) {
        app.detail = Some(detail());
        app.approvals_sel = 0;
    }
    app
}
