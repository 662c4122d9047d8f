//! The Approvals view: the queue of deliverables, oldest first, and all the evidence of the
//! selected one on the same screen: quality, cost, lint, tests, what was not verified, and
//! the diff. A run on a client's repository shows its own evidence instead of lint and
//! tests: result, base and branch, files, checks before and after, criteria, risk.

use super::detail::pane_lines;
use super::repo_evidence::{self, Room};
use super::{block, elapsed, quality_and_cost, truncate};
use crate::console::app::{App, Effect};
use crate::console::keymap::Action;
use crate::console::model::{Detail, RunRow};
use crate::console::theme::Role;
use crate::domain::TaskStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The Approvals view's state: which deliverable of the queue is selected, and the detail
/// of the other side when it is one side of a comparison.
#[derive(Default)]
pub struct ApprovalsView {
    pub sel: usize,
    pub sibling: Option<Detail>,
    /// The newest load of the other side asked for; older answers are dropped.
    sibling_request: u64,
}

/// The other side of `row`'s comparison: the one at the gate first, then one still
/// working, then one that ended.
pub fn compared_with<'a>(rows: &'a [RunRow], row: &RunRow) -> Option<&'a RunRow> {
    let group = row.compare_group.as_ref()?;
    rows.iter()
        .filter(|r| r.compare_group.as_ref() == Some(group) && r.task_id != row.task_id)
        .min_by_key(|r| match r.status {
            TaskStatus::AwaitingApproval => 0,
            s if s.is_in_flight() => 1,
            _ => 2,
        })
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

    /// The other side of the selected deliverable's comparison, if it is one.
    pub fn sibling_of<'a>(&self, rows: &'a [RunRow]) -> Option<&'a RunRow> {
        let selected = *waiting(rows).get(self.sel)?;
        compared_with(rows, selected)
    }

    /// A load of the other side's detail when it is not the one held (or `refresh`).
    pub fn load_sibling(&mut self, rows: &[RunRow], refresh: bool) -> Vec<Effect> {
        let Some(other) = self.sibling_of(rows) else {
            self.sibling = None;
            return vec![];
        };
        let held = self.sibling.as_ref().map(|d| d.task_id.as_str());
        if held == Some(other.task_id.as_str()) && !refresh {
            return vec![];
        }
        if held != Some(other.task_id.as_str()) {
            self.sibling = None;
        }
        self.sibling_request += 1;
        vec![Effect::LoadSibling {
            task_id: other.task_id.clone(),
            request: self.sibling_request,
        }]
    }

    /// The other side's detail, loaded: whether it was taken (a newer load drops it).
    pub fn sibling_loaded(
        &mut self,
        request: u64,
        detail: Result<Detail, String>,
    ) -> Result<bool, String> {
        if request != self.sibling_request {
            return Ok(false);
        }
        self.sibling = Some(detail?);
        Ok(true)
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
    let sel = app.approvals.sel.min(waiting.len() - 1);
    let other = app.approvals.sibling_of(&app.rows);
    // A comparison needs both columns' width: the queue keeps its column only when wide.
    let list_w = match (other.is_some(), inner.width) {
        (true, w) if w < 160 => 0,
        (_, w) if w >= 120 => 44,
        _ => 30,
    };
    let [list, evidence] =
        Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(inner);
    app.list_area.set(list);
    if list_w > 0 {
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
    }

    let r = waiting[sel];
    if let Some(other) = other {
        super::compare::draw(frame, app, evidence, r, other, waiting.len());
        return;
    }
    let ev = evidence.inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    });
    let mut lines = vec![
        Line::from(vec![Span::styled(
            format!("{} · {}", r.task_id, r.title),
            t.title(),
        )]),
        Line::from(
            [
                Span::styled("client ", t.fg(Role::Muted)),
                Span::styled(r.client_id.clone(), t.fg(Role::Text)),
                Span::styled("  ", t.fg(Role::Muted)),
            ]
            .into_iter()
            .chain(quality_and_cost(t, r))
            .collect::<Vec<_>>(),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixture::rows;

    fn compared(rows: &mut [RunRow], ids: &[&str]) {
        for r in rows
            .iter_mut()
            .filter(|r| ids.contains(&r.task_id.as_str()))
        {
            r.compare_group = Some(ids[0].to_string());
        }
    }

    #[test]
    fn the_other_side_is_loaded_once_and_again_only_when_asked() {
        let mut rows = rows();
        // T-0008 waits at the gate; T-0007 of the same comparison still works.
        compared(&mut rows, &["T-0007", "T-0008"]);
        let mut view = ApprovalsView {
            sel: waiting(&rows)
                .iter()
                .position(|r| r.task_id == "T-0008")
                .unwrap(),
            ..Default::default()
        };
        assert_eq!(
            view.sibling_of(&rows).map(|r| r.task_id.as_str()),
            Some("T-0007")
        );
        let first = view.load_sibling(&rows, false);
        assert!(
            matches!(&first[..], [Effect::LoadSibling { task_id, request: 1 }] if task_id == "T-0007")
        );
        // An answer to an older request is dropped; the current one is taken.
        let detail = crate::console::fixture::repo_detail("T-0007");
        assert_eq!(view.sibling_loaded(0, Ok(detail.clone())), Ok(false));
        assert_eq!(view.sibling_loaded(1, Ok(detail)), Ok(true));
        assert!(view.load_sibling(&rows, false).is_empty(), "held already");
        assert_eq!(
            view.load_sibling(&rows, true).len(),
            1,
            "read again when asked"
        );
        // A deliverable compared with nothing shows no other side.
        view.sel = waiting(&rows)
            .iter()
            .position(|r| r.task_id == "T-0009")
            .unwrap();
        assert!(view.load_sibling(&rows, false).is_empty());
        assert!(view.sibling.is_none());
    }

    #[test]
    fn the_side_at_the_gate_is_shown_before_one_that_ended() {
        let mut rows = rows();
        compared(&mut rows, &["T-0008", "T-0009", "T-0001"]);
        let t8 = rows.iter().find(|r| r.task_id == "T-0008").unwrap().clone();
        let other = compared_with(&rows, &t8).map(|r| r.task_id.clone());
        assert_eq!(other.as_deref(), Some("T-0009"));
    }
}
