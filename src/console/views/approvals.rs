//! The Approvals view: the queue of deliverables, oldest first, and all the evidence of the
//! selected one on the same screen: quality, cost, lint, tests, what was not verified, and
//! the diff. A run on a client's repository shows its own evidence instead of lint and
//! tests: result, base and branch, files, checks before and after, criteria, risk.

use super::detail::pane_lines;
use super::repo_evidence::{self, Room};
use super::{block, elapsed, run_cost, truncate};
use crate::console::app::App;
use crate::console::keymap::Action;
use crate::console::model::RunRow;
use crate::console::theme::Role;
use crate::domain::TaskStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The Approvals view's state: which deliverable of the queue is selected.
#[derive(Debug, Default)]
pub struct ApprovalsView {
    pub sel: usize,
}

/// Deliverables waiting for a decision, oldest first.
pub fn waiting(rows: &[RunRow]) -> Vec<&RunRow> {
    let mut v: Vec<&RunRow> = rows
        .iter()
        .filter(|r| r.status == TaskStatus::AwaitingApproval)
        .collect();
    v.sort_by_key(|r| (r.waiting_since.unwrap_or(i64::MAX), r.task_id.clone()));
    v
}

impl ApprovalsView {
    pub fn selected(&self, rows: &[RunRow]) -> Option<String> {
        waiting(rows).get(self.sel).map(|r| r.task_id.clone())
    }

    /// Keeps the selection inside the queue after it shrank.
    pub fn clamp(&mut self, rows: &[RunRow]) {
        self.sel = self.sel.min(waiting(rows).len().saturating_sub(1));
    }

    pub fn click(&mut self, row: usize, rows: &[RunRow]) {
        self.sel = row;
        self.clamp(rows);
    }

    /// The view's own keys (moving in the queue); false when the action is not one of them.
    /// The decisions (approve, revise, reject) are the app's: Run detail has them too.
    pub fn act(&mut self, action: Action, rows: &[RunRow]) -> bool {
        let step: isize = match action {
            Action::Next => 1,
            Action::Prev => -1,
            _ => return false,
        };
        let len = waiting(rows).len();
        self.sel = (self.sel as isize + step).clamp(0, len.saturating_sub(1) as isize) as usize;
        true
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let waiting = waiting(&app.rows);
    let outer = block(app, "Approvals · oldest first");
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if waiting.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("Nothing awaits approval.", t.fg(Role::Muted))),
            inner,
        );
        return;
    }
    let list_w = if inner.width >= 120 { 44 } else { 30 };
    let [list, evidence] =
        Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(inner);
    let sel = app.approvals.sel.min(waiting.len() - 1);
    app.list_area.set(list);
    let lines: Vec<Line> = waiting
        .iter()
        .enumerate()
        .take(list.height as usize)
        .map(|(i, r)| {
            let waited = r
                .waiting_since
                .map(|w| elapsed(Some((app.now_ms - w).max(0) / 1000)))
                .unwrap_or_default();
            let text = format!(
                "{} {} {}",
                r.task_id,
                truncate(&r.title, list_w as usize - 16),
                waited
            );
            let style = if i == sel {
                t.selected()
            } else {
                t.fg(Role::Text)
            };
            Line::from(Span::styled(
                format!("{text:<width$}", width = list_w as usize - 1),
                style,
            ))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);

    let r = waiting[sel];
    let ev = evidence.inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    });
    let mut lines = vec![
        Line::from(vec![Span::styled(
            format!("{} · {}", r.task_id, r.title),
            t.title(),
        )]),
        Line::from(vec![
            Span::styled("client ", t.fg(Role::Muted)),
            Span::styled(r.client_id.clone(), t.fg(Role::Text)),
            Span::styled("  quality ", t.fg(Role::Muted)),
            Span::styled(
                r.quality
                    .map(|q| format!("{q:.1}/10"))
                    .unwrap_or_else(|| "-".into()),
                t.fg(Role::Accent),
            ),
            Span::styled("  cost ", t.fg(Role::Muted)),
            Span::styled(
                run_cost(r),
                t.fg(if r.simulated {
                    Role::Simulated
                } else {
                    Role::Text
                }),
            ),
            Span::styled(format!("  iterations {}", r.iteration), t.fg(Role::Muted)),
        ]),
    ];
    let Some(d) = app
        .detail
        .loaded
        .as_ref()
        .filter(|d| d.task_id == r.task_id)
    else {
        lines.push(Line::from(Span::styled(
            "loading the evidence…",
            t.fg(Role::Muted),
        )));
        frame.render_widget(Paragraph::new(lines), ev);
        return;
    };
    if let Some(repo) = &d.repo {
        // 80×24 gets one line for the files and one for the risk reasons.
        let room = if ev.height >= 28 && ev.width >= 60 {
            Room::Full
        } else {
            Room::Compact
        };
        lines.extend(repo_evidence::lines(
            t,
            repo,
            d.deliverable_url.as_deref(),
            room,
        ));
        // The patch keeps at least a few lines; the evidence above it is clipped first.
        let head = (lines.len() as u16 + 1).min(ev.height.saturating_sub(4));
        let [top, diff] =
            Layout::vertical([Constraint::Length(head), Constraint::Min(1)]).areas(ev);
        frame.render_widget(Paragraph::new(lines), top);
        frame.render_widget(
            Paragraph::new(pane_lines(
                app,
                d,
                "Diff",
                diff.height as usize,
                usize::MAX / 2,
            )),
            diff,
        );
        return;
    }
    let step = |name: &str, s: &crate::console::model::StepView| {
        let label = if s.label.is_empty() {
            "not run".to_string()
        } else {
            s.label.clone()
        };
        let role = if label.starts_with("skipped") || label == "not run" {
            Role::Warn
        } else {
            Role::Text
        };
        Line::from(vec![
            Span::styled(format!("{name:<6}"), t.fg(Role::Muted)),
            Span::styled(label, t.fg(role)),
        ])
    };
    lines.push(step("lint", &d.lint));
    lines.push(step("tests", &d.tests));
    lines.push(step("exec", &d.exec));
    for s in &d.skipped {
        lines.push(Line::from(Span::styled(
            format!("not verified: {s}"),
            t.fg(Role::Warn),
        )));
    }
    for i in d.issues.iter().take(3) {
        lines.push(Line::from(Span::styled(
            format!("evaluator: {i}"),
            t.fg(Role::Muted),
        )));
    }
    let head = lines.len() as u16;
    let [top, diff] =
        Layout::vertical([Constraint::Length(head + 1), Constraint::Min(1)]).areas(ev);
    frame.render_widget(Paragraph::new(lines), top);
    // The diff from its top: the first lines of the deliverable matter most here.
    frame.render_widget(
        Paragraph::new(pane_lines(
            app,
            d,
            "Diff",
            diff.height as usize,
            usize::MAX / 2,
        )),
        diff,
    );
}
