//! The secret-override dialog: a deliverable whose diff holds what looks like a secret is
//! not approved with the plain key. The dialog says what was found (masked) and takes a
//! note saying why it is safe to ship; the note goes with the approval.

use super::block;
use crate::console::app::App;
use crate::console::keymap::Context;
use crate::console::theme::Role;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui_textarea::TextArea;

pub fn draw(
    frame: &mut Frame,
    app: &App,
    task_id: &str,
    critical_reviewed: bool,
    text: &TextArea<'static>,
    area: Rect,
) {
    let t = &app.theme;
    let secrets = app
        .detail
        .loaded
        .as_ref()
        .filter(|d| d.task_id == task_id)
        .and_then(|d| d.repo.as_ref())
        .and_then(|r| r.risk.as_ref())
        .map(|r| r.secrets.clone())
        .unwrap_or_default();
    let mut lines = vec![Line::from(Span::styled(
        "The diff holds what looks like a secret; it cannot be approved as it is.",
        t.fg(Role::Error),
    ))];
    lines.extend(secrets.iter().take(3).map(|s| {
        Line::from(Span::styled(
            format!("  {} at {}:{}  {}", s.kind, s.path, s.line, s.masked),
            t.fg(Role::Error),
        ))
    }));
    if secrets.len() > 3 {
        lines.push(Line::from(Span::styled(
            format!("  and {} more", secrets.len() - 3),
            t.fg(Role::Error),
        )));
    }
    lines.push(Line::from(Span::styled(
        "Revise to remove it, or approve with a note saying why it is safe:",
        t.fg(Role::Text),
    )));
    if critical_reviewed {
        lines.push(Line::from(Span::styled(
            "critical review done: the whole diff was read",
            t.fg(Role::Ok),
        )));
    }
    let explain = lines.len() as u16;
    let width = area.width.saturating_sub(6).min(96);
    let height = (explain + 7).min(area.height);
    let box_area = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, box_area);
    let b = block(app, "Secret found: approve anyway?");
    let inner = b.inner(box_area);
    frame.render_widget(b, box_area);
    let [why, edit, hint] = Layout::vertical([
        Constraint::Length(explain),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(lines), why);
    frame.render_widget(text, edit);
    let keys: Vec<String> = app
        .keymap
        .footer(&[Context::Note])
        .into_iter()
        .map(|(key, help)| format!("{key} {help}"))
        .collect();
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!("{} · the note is required", keys.join(" · ")),
            t.fg(Role::Muted),
        )),
        hint,
    );
}
