//! The views. Each owns its state, its keys and its drawing; `draw` here lays out the
//! header, the current view, the notice, the footer and the open dialog. Drawing reads
//! `App` alone: no IO, no colours by name (theme roles only), no key names (the keymap
//! table). At 80×24 views drop columns and panes rather than overflow.

pub mod approvals;
pub mod batch;
pub mod clients;
mod compare;
pub mod containers;
pub mod critical_review;
pub mod detail;
pub mod dialogs;
mod form;
pub mod money_dialog;
mod overlays;
mod repo_evidence;
pub mod runs;
mod secret_override;

use super::app::{App, View};
use super::theme::Role;
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::money::format_usd;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if let Some(bg) = app.theme.background() {
        frame.render_widget(
            Block::default().style(ratatui::style::Style::default().bg(bg)),
            area,
        );
    }
    let notice_h = u16::from(app.notice.is_some());
    let [header, body, notice, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(notice_h),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, header);
    match app.view {
        View::Runs => runs::draw(frame, app, body),
        View::Detail => detail::draw(frame, app, body),
        View::Approvals => approvals::draw(frame, app, body),
        View::NewTask => form::draw(frame, app, body),
        View::Clients => clients::draw(frame, app, body),
        View::Batch => batch::draw(frame, app, body),
        View::Containers => containers::draw(frame, app, body),
    }
    if let Some((text, is_error)) = &app.notice {
        let role = if *is_error { Role::Error } else { Role::Ok };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(" {text}"),
                app.theme.fg(role),
            ))),
            notice,
        );
    }
    draw_footer(frame, app, footer);
    overlays::draw(frame, app, area);
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let count = |s: TaskStatus| app.rows.iter().filter(|r| r.status == s).count();
    let working = app
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                TaskStatus::Running
                    | TaskStatus::Revising
                    | TaskStatus::Delivering
                    | TaskStatus::Pending
            )
        })
        .count();
    let waiting = count(TaskStatus::AwaitingApproval);
    let narrow = area.width < 120;
    let model = match app.header.provider {
        ProviderKind::Offline | ProviderKind::Auto => Span::styled(
            if narrow {
                "OFFLINE MODEL: simulated output and cost"
            } else {
                "OFFLINE MODEL: simulated output and cost (no API key configured)"
            },
            t.fg(Role::Simulated).add_modifier(Modifier::BOLD),
        ),
        p => Span::styled(format!("model: {}", p.as_str()), t.fg(Role::Text)),
    };
    let mut first = vec![
        Span::styled(" ecca ", t.title()),
        Span::styled("│ ", t.fg(Role::Border)),
        model,
    ];
    // A client past the warning share of its month: said on every view.
    let warnings = app.clients.warnings();
    if let Some(w) = warnings.iter().max_by_key(|w| (w.paused > 0, w.percent)) {
        let more = match warnings.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        let client = w.client_id;
        let (role, text) = match (w.paused > 0 || w.percent >= 100, narrow) {
            (true, false) => (
                Role::GaugeOver,
                format!("⚠ {client} at its monthly cap: runs paused"),
            ),
            (true, true) => (Role::GaugeOver, format!("⚠ {client} at cap")),
            (false, false) => (
                Role::GaugeWarn,
                format!("⚠ {client} {}% of its monthly cap used", w.percent),
            ),
            (false, true) => (Role::GaugeWarn, format!("⚠ {client} {}% of cap", w.percent)),
        };
        first.push(Span::styled(" │ ", t.fg(Role::Border)));
        first.push(Span::styled(
            format!("{text}{more}"),
            t.fg(role).add_modifier(Modifier::BOLD),
        ));
    }
    let first = Line::from(first);
    let tab = |label: String, on: bool| {
        if on {
            Span::styled(format!(" {label} "), t.selected())
        } else {
            Span::styled(format!(" {label} "), t.fg(Role::Muted))
        }
    };
    let second = Line::from(vec![
        tab(
            "1 Runs".into(),
            matches!(app.view, View::Runs | View::Detail),
        ),
        tab(
            format!("2 Approvals ({waiting})"),
            app.view == View::Approvals,
        ),
        tab("3 Clients".into(), app.view == View::Clients),
        tab("4 Batch".into(), app.view == View::Batch),
        tab("5 Containers".into(), app.view == View::Containers),
        tab("n New task".into(), app.view == View::NewTask),
        Span::styled(
            format!("  {working} working · {waiting} awaiting approval · "),
            t.fg(Role::Muted),
        ),
        Span::styled(next_slot(app), t.fg(Role::Muted)),
        Span::styled(app.header.tools.clone(), t.fg(Role::Muted)),
    ]);
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}

/// `next loop Mon 09:00 UTC · ` when this process runs the daily loop.
fn next_slot(app: &App) -> String {
    app.header
        .schedule
        .as_ref()
        .and_then(|s| s.next_after(app.now_ms).map(|at| s.describe(at)))
        .map(|at| format!("next loop {at} · "))
        .unwrap_or_default()
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut spans = Vec::new();
    let mut width = 0usize;
    for (key, help) in app.keymap.footer(&app.contexts()) {
        let piece = key.chars().count() + help.chars().count() + 3;
        if width + piece > area.width as usize {
            break;
        }
        width += piece;
        spans.push(Span::styled(
            format!(" {key}"),
            t.fg(Role::Accent).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(format!(" {help} "), t.fg(Role::Muted)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `$0.004215` and, when simulated, a marker.
pub(super) fn money(micros: i64, simulated: bool) -> String {
    format!("{}{}", format_usd(micros), if simulated { "*" } else { "" })
}

/// A run's cost as [`money`] shows it, led by `~` when some of it is an estimate (a
/// provider reported no usage for a call).
pub(super) fn run_cost(r: &crate::console::model::RunRow) -> String {
    let (cost, estimated) = r.shown_cost();
    format!(
        "{}{}",
        if estimated { "~" } else { "" },
        money(cost, r.simulated)
    )
}

/// `quality 8.0/10  cost $0.0229  iterations 1`: the figures a deliverable is judged by.
pub(super) fn quality_and_cost<'a>(
    t: &crate::console::theme::Theme,
    r: &crate::console::model::RunRow,
) -> Vec<Span<'a>> {
    vec![
        Span::styled("quality ", t.fg(Role::Muted)),
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
    ]
}

pub(super) fn elapsed(secs: Option<i64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) fn state_role(status: TaskStatus) -> Role {
    match status {
        TaskStatus::Delivered => Role::Ok,
        TaskStatus::AwaitingApproval => Role::Accent,
        TaskStatus::Failed | TaskStatus::Rejected | TaskStatus::Interrupted => Role::Error,
        TaskStatus::Paused | TaskStatus::Cancelled => Role::Warn,
        _ => Role::Text,
    }
}

pub(super) fn block<'a>(app: &App, title: &'a str) -> Block<'a> {
    Block::bordered()
        .border_style(app.theme.fg(Role::Border))
        .title(Span::styled(format!(" {title} "), app.theme.title()))
}
