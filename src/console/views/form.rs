//! The New task form.

use super::block;
use crate::console::app::App;
use crate::console::form::{FIELDS, Field};
use crate::console::theme::Role;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let f = &app.form;
    let outer = block(app, "New task");
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let heights: Vec<Constraint> = FIELDS
        .iter()
        .map(|field| Constraint::Length(if *field == Field::Description { 4 } else { 1 }))
        .chain([Constraint::Length(1), Constraint::Min(0)])
        .collect();
    let rows = Layout::vertical(heights).spacing(1).split(inner);
    for (i, field) in FIELDS.iter().enumerate() {
        let focused = i == f.focus;
        let [label, value] =
            Layout::horizontal([Constraint::Length(16), Constraint::Min(10)]).areas(rows[i]);
        let label_style = if focused {
            t.fg(Role::Accent)
        } else {
            t.fg(Role::Muted)
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!("{}{}", if focused { "▸ " } else { "  " }, field.label()),
                label_style,
            )),
            label,
        );
        match field {
            Field::Title => frame.render_widget(&f.title, value),
            Field::Description => frame.render_widget(&f.description, value),
            choice => {
                let text = f.value(*choice);
                let shown = if text.is_empty() {
                    "(no client: add one with ecca clients add)".to_string()
                } else {
                    format!("◂ {text} ▸")
                };
                let style = if focused {
                    t.selected()
                } else {
                    t.fg(Role::Text)
                };
                frame.render_widget(Paragraph::new(Span::styled(shown, style)), value);
            }
        }
    }
    let hint = match &f.error {
        Some(e) => Line::from(Span::styled(e.clone(), t.fg(Role::Error))),
        None => Line::from(Span::styled(
            format!("runs on the {} model", app.header.provider.as_str()),
            t.fg(Role::Muted),
        )),
    };
    frame.render_widget(Paragraph::new(hint), rows[FIELDS.len()]);
}
