//! The Approvals view's comparison: the selected deliverable and the other side of its
//! comparison (the same spec by another agent kind) in two columns, each with its state,
//! quality, cost (and the agent's own figure where it differs), the repository evidence and
//! the diff. The keys act on the selected (left) side; approving it rejects the other once
//! it is delivered.

use super::detail::diff_style;
use super::repo_evidence::{self, Room};
use super::{elapsed, money, quality_and_cost, state_role};
use crate::console::app::App;
use crate::console::keymap::{Action, Context};
use crate::console::model::{Detail, RunRow};
use crate::console::theme::{Role, Theme};
use crate::domain::TaskStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn draw(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    chosen: &RunRow,
    other: &RunRow,
    queue: usize,
) {
    let t = &app.theme;
    let [head, columns] = Layout::vertical([Constraint::Length(1), Constraint::Min(4)]).areas(area);
    let key = |action| {
        app.keymap
            .key_of(Context::Approvals, action)
            .unwrap_or_else(|| "?".into())
    };
    let more = match queue {
        1 => String::new(),
        n => format!(
            " · {n} in the queue ({}/{})",
            key(Action::Next),
            key(Action::Prev)
        ),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" Compare ", t.title()),
            Span::styled(
                format!(
                    "{} {} ⇄ {} {}",
                    chosen.task_id, chosen.agent, other.task_id, other.agent
                ),
                t.fg(Role::Text),
            ),
            Span::styled(
                format!(
                    " · {} approves ◆ and, once delivered, rejects the other{more}",
                    key(Action::Approve)
                ),
                t.fg(Role::Muted),
            ),
        ])),
        head,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(columns);
    let chosen_detail = app
        .detail
        .loaded
        .as_ref()
        .filter(|d| d.task_id == chosen.task_id);
    let other_detail = app
        .approvals
        .sibling
        .as_ref()
        .filter(|d| d.task_id == other.task_id);
    side(frame, app, left, chosen, chosen_detail, true);
    side(frame, app, right, other, other_detail, false);
}

/// One side: a bordered column, its figures, evidence and diff.
fn side(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    row: &RunRow,
    detail: Option<&Detail>,
    selected: bool,
) {
    let t = &app.theme;
    let title = format!(
        " {} · {}{} ",
        row.task_id,
        row.agent,
        if selected { " ◆" } else { "" }
    );
    let border = if selected {
        t.fg(Role::Accent)
    } else {
        t.fg(Role::Border)
    };
    let outer = Block::default()
        .borders(Borders::TOP)
        .border_style(border)
        .title(Span::styled(
            title,
            if selected {
                t.title()
            } else {
                t.fg(Role::Text)
            },
        ));
    let inner = outer.inner(area).inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    });
    frame.render_widget(outer, area);
    let mut lines = figures(t, row, detail, app.now_ms);
    let Some(d) = detail else {
        lines.push(Line::from(Span::styled(
            "loading the evidence…",
            t.fg(Role::Muted),
        )));
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    if row.status != TaskStatus::AwaitingApproval && !row.status.is_terminal() {
        lines.push(Line::from(Span::styled(
            "still working: its checks and evaluation come at the gate",
            t.fg(Role::Warn),
        )));
    }
    if let Some(repo) = &d.repo {
        lines.extend(repo_evidence::lines(
            t,
            repo,
            d.deliverable_url.as_deref(),
            Room::Compact,
        ));
    }
    // The diff keeps at least a few lines; the evidence above it is clipped first.
    let head = (lines.len() as u16 + 1).min(inner.height.saturating_sub(4));
    let [top, diff] = Layout::vertical([Constraint::Length(head), Constraint::Min(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), top);
    frame.render_widget(Paragraph::new(diff_lines(t, d, diff.height as usize)), diff);
}

/// State, quality and cost: the figures the two sides are compared by first.
fn figures<'a>(t: &Theme, row: &RunRow, detail: Option<&Detail>, now_ms: i64) -> Vec<Line<'a>> {
    let muted = |s: String| Span::styled(s, t.fg(Role::Muted));
    let state = match (&row.reason, row.status) {
        (Some(reason), TaskStatus::Failed | TaskStatus::Rejected | TaskStatus::Cancelled) => {
            format!("{}: {reason}", row.status)
        }
        _ if row.status == TaskStatus::AwaitingApproval => "awaiting approval".into(),
        _ if row.step.is_empty() => row.state.clone(),
        _ => format!("{} · {}", row.state, row.step),
    };
    let mut out = vec![
        Line::from(vec![
            Span::styled(state, t.fg(state_role(row.status))),
            muted(format!("  {}", elapsed(row.elapsed_secs(now_ms)))),
        ]),
        Line::from(quality_and_cost(t, row)),
    ];
    // Where the agent stated its own cost: both figures, so a difference is seen.
    if let Some(difference) = detail.and_then(|d| d.reported_difference) {
        let (shown, _) = row.shown_cost();
        out.push(Line::from(vec![
            muted("  priced by ecca ".into()),
            Span::styled(money(shown - difference, row.simulated), t.fg(Role::Text)),
            muted(" · by the agent ".into()),
            Span::styled(money(shown, row.simulated), t.fg(Role::Text)),
        ]));
    }
    out
}

/// The first `height` lines of the side's diff, coloured by kind (the same for both sides,
/// so neither reads better for its highlighting).
fn diff_lines<'a>(t: &Theme, d: &'a Detail, height: usize) -> Vec<Line<'a>> {
    if d.diff.is_empty() {
        return vec![Line::from(Span::styled(
            "no code written yet",
            t.fg(Role::Muted),
        ))];
    }
    d.diff
        .iter()
        .take(height)
        .map(|l| Line::from(Span::styled(l.as_str(), diff_style(t, l))))
        .collect()
}
