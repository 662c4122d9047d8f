//! The Runs view: live and recent runs. It owns its selection, sort and filter, the keys
//! that move them, and its drawing.

use super::{block, elapsed, run_cost, state_role, truncate};
use crate::console::app::App;
use crate::console::keymap::Action;
use crate::console::model::RunRow;
use crate::console::theme::Role;
use crate::domain::TaskStatus;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Newest,
    State,
    Cost,
    Client,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::State => "state",
            Sort::Cost => "cost",
            Sort::Client => "client",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Newest => Sort::State,
            Sort::State => Sort::Cost,
            Sort::Cost => Sort::Client,
            Sort::Client => Sort::Newest,
        }
    }
}

/// The Runs view's state.
#[derive(Debug, Default)]
pub struct RunsView {
    pub sel: usize,
    pub sort: Sort,
    pub filter: String,
    /// The filter line has the keys.
    pub filter_editing: bool,
}

impl RunsView {
    /// The rows shown: filtered and sorted.
    pub fn visible<'a>(&self, rows: &'a [RunRow]) -> Vec<&'a RunRow> {
        let f = self.filter.to_lowercase();
        let mut v: Vec<&RunRow> = rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.title.to_lowercase().contains(&f)
                    || r.client_id.to_lowercase().contains(&f)
                    || r.task_id.to_lowercase().contains(&f)
                    || r.state.contains(&f)
            })
            .collect();
        match self.sort {
            Sort::Newest => v.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then(b.task_id.cmp(&a.task_id))
            }),
            Sort::State => {
                v.sort_by(|a, b| a.state.cmp(&b.state).then(b.created_at.cmp(&a.created_at)))
            }
            Sort::Cost => v.sort_by_key(|r| std::cmp::Reverse(r.cost)),
            Sort::Client => v.sort_by(|a, b| {
                a.client_id
                    .cmp(&b.client_id)
                    .then(b.created_at.cmp(&a.created_at))
            }),
        }
        v
    }

    pub fn selected(&self, rows: &[RunRow]) -> Option<String> {
        self.visible(rows).get(self.sel).map(|r| r.task_id.clone())
    }

    /// Puts the selection on `task_id` again after the rows changed.
    pub fn reselect(&mut self, task_id: Option<String>, rows: &[RunRow]) {
        if let Some(id) = task_id {
            self.sel = self
                .visible(rows)
                .iter()
                .position(|r| r.task_id == id)
                .unwrap_or(0);
        }
    }

    pub fn click(&mut self, row: usize, rows: &[RunRow]) {
        self.sel = row.min(self.visible(rows).len().saturating_sub(1));
    }

    /// The view's own keys; false when the action is not one of them.
    pub fn act(&mut self, action: Action, rows: &[RunRow]) -> bool {
        match action {
            Action::Next | Action::Prev => {
                let step: isize = if action == Action::Next { 1 } else { -1 };
                let len = self.visible(rows).len();
                self.sel =
                    (self.sel as isize + step).clamp(0, len.saturating_sub(1) as isize) as usize;
            }
            Action::Sort => self.sort = self.sort.next(),
            Action::Filter => self.filter_editing = true,
            _ => return false,
        }
        true
    }

    /// Keys while the filter line is being written.
    pub fn filter_act(&mut self, action: Action) {
        match action {
            Action::Submit => self.filter_editing = false,
            Action::Cancel => {
                self.filter_editing = false;
                self.filter.clear();
            }
            _ => {}
        }
    }

    pub fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char(c) => self.filter.push(c),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            _ => {}
        }
        self.sel = 0;
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let view = &app.runs;
    let rows = view.visible(&app.rows);
    let mut title = format!("Runs · {} · sort: {}", rows.len(), view.sort.name());
    if view.filter_editing || !view.filter.is_empty() {
        title.push_str(&format!(
            " · filter: {}{}",
            view.filter,
            if view.filter_editing { "▏" } else { "" }
        ));
    }
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if rows.is_empty() {
        let text = if app.rows.is_empty() {
            "No runs yet. Press n to launch a task."
        } else {
            "No run matches the filter. Press / and Esc to clear it."
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(text, t.fg(Role::Muted)))),
            inner,
        );
        return;
    }
    let wide = inner.width >= 120;
    let mut header = vec!["", "TASK", "CLIENT", "TITLE"];
    if wide {
        header.push("AGENT");
    }
    header.extend(["STATE", "IT", "SCORE"]);
    if wide {
        header.push("TOKENS");
    }
    header.extend(["COST", "TIME"]);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Length(if wide { 12 } else { 8 }),
        Constraint::Fill(1),
    ];
    if wide {
        widths.push(Constraint::Length(11));
    }
    widths.extend([
        Constraint::Length(if inner.width >= 100 { 20 } else { 11 }),
        Constraint::Length(2),
        Constraint::Length(5),
    ]);
    if wide {
        widths.push(Constraint::Length(8));
    }
    widths.extend([Constraint::Length(11), Constraint::Length(6)]);

    let body_height = inner.height.saturating_sub(1) as usize;
    let sel = view.sel.min(rows.len() - 1);
    let first = sel.saturating_sub(body_height.saturating_sub(1));
    app.list_area.set(Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    });
    let table_rows: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(body_height)
        .map(|(i, r)| {
            let waiting = r.status == TaskStatus::AwaitingApproval;
            let state = r.state_label(inner.width >= 100);
            let mut cells = vec![
                Cell::from(Span::styled(
                    if waiting { "●" } else { " " },
                    t.fg(Role::Accent),
                )),
                Cell::from(r.task_id.clone()),
                Cell::from(truncate(&r.client_id, if wide { 12 } else { 8 })),
                Cell::from(r.title.clone()),
            ];
            if wide {
                cells.push(Cell::from(r.agent.clone()));
            }
            cells.push(Cell::from(Span::styled(state, t.fg(state_role(r.status)))));
            cells.push(Cell::from(r.iteration.to_string()));
            cells.push(Cell::from(
                r.quality
                    .map(|q| format!("{q:.1}"))
                    .unwrap_or_else(|| "-".into()),
            ));
            if wide {
                cells.push(Cell::from(r.tokens.to_string()));
            }
            cells.push(Cell::from(Span::styled(
                run_cost(r),
                t.fg(if r.simulated {
                    Role::Simulated
                } else {
                    Role::Text
                }),
            )));
            cells.push(Cell::from(elapsed(r.elapsed_secs(app.now_ms))));
            let row = Row::new(cells).style(t.fg(Role::Text));
            if i == sel {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(t.fg(Role::Muted)))
        .column_spacing(1);
    frame.render_widget(table, inner);
}
