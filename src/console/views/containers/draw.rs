//! Drawing the Containers view: the list of managed containers with their live figures,
//! then the selected one's tools (ecca's call counts, latency, errors, the runs using it)
//! or its logs. At 80×24 the list keeps name, state, health, CPU and memory.

use super::{ContainersView, Pane};
use crate::console::app::App;
use crate::console::theme::{Role, Theme};
use crate::console::views::{block, elapsed, truncate};
use crate::containers::managed::{ContainerRow, Health, format_memory};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let view = &app.containers;
    let snap = &view.snapshot;
    let running = snap.rows.iter().filter(|r| r.running()).count();
    let unhealthy = snap
        .rows
        .iter()
        .filter(|r| matches!(r.health, Health::Unhealthy { .. }))
        .count();
    let title = format!(
        "Containers · {} managed, {running} running, {unhealthy} unhealthy · {} sandboxes",
        snap.rows.len(),
        snap.sandboxes
    );
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let mut top = Vec::new();
    if let Some(e) = &snap.error {
        top.push(Line::from(Span::styled(
            format!("Docker: {e}"),
            t.fg(Role::Error),
        )));
    }
    if let Some(p) = &view.build_progress {
        top.push(Line::from(Span::styled(
            format!("images: {p}"),
            t.fg(Role::Muted),
        )));
    }
    let [notes, body] =
        Layout::vertical([Constraint::Length(top.len() as u16), Constraint::Min(1)]).areas(inner);
    frame.render_widget(Paragraph::new(top), notes);
    if !snap.loaded {
        return muted(frame, t, body, "Asking Docker for the containers…");
    }
    if snap.rows.is_empty() {
        return muted(
            frame,
            t,
            body,
            "No containers ecca manages. Press a to start a server from the registry, or bring \
             the shared servers up with `docker-compose -f compose/compose.yaml up -d`.",
        );
    }
    let list_h = (snap.rows.len() as u16 + 1).clamp(2, (body.height / 2).max(3));
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(3)]).areas(body);
    app.list_area.set(Rect {
        y: list.y + 1,
        height: list.height.saturating_sub(1),
        ..list
    });
    draw_list(frame, app, view, list);
    if let Some(row) = view.selected() {
        match view.pane {
            Pane::Tools => draw_tools(frame, app, view, row, detail),
            Pane::Logs => draw_logs(frame, app, view, row, detail),
        }
    }
}

fn muted(frame: &mut Frame, t: &Theme, area: Rect, text: &str) {
    frame.render_widget(
        Paragraph::new(Span::styled(text.to_string(), t.fg(Role::Muted)))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn state_role(row: &ContainerRow) -> Role {
    match (row.state.as_str(), &row.health) {
        ("running", Health::Unhealthy { .. }) => Role::Error,
        ("running", Health::Healthy { .. }) => Role::Ok,
        ("running", _) => Role::Text,
        ("restarting" | "paused", _) => Role::Warn,
        _ => Role::Error,
    }
}

fn draw_list(frame: &mut Frame, app: &App, view: &ContainersView, area: Rect) {
    let t = &app.theme;
    let wide = area.width >= 120;
    let now = app.now_ms;
    let rows = view.snapshot.rows.iter().enumerate().map(|(i, r)| {
        let state = match (r.state.as_str(), r.exit_code) {
            ("exited", Some(code)) => format!("exited ({code})"),
            (s, _) => s.to_string(),
        };
        let cpu = r
            .cpu_percent
            .map(|c| format!("{c:.1}%"))
            .unwrap_or_else(|| "–".into());
        let up = r
            .started_at_ms
            .map(|s| elapsed(Some((now - s).max(0) / 1000)))
            .unwrap_or_else(|| "–".into());
        let mut cells = vec![
            Cell::from(truncate(r.title(), 18)),
            Cell::from(Span::styled(state, t.fg(state_role(r)))),
            Cell::from(Span::styled(r.health.label(), t.fg(state_role(r)))),
            Cell::from(cpu),
            Cell::from(format_memory(r.memory_bytes, r.memory_limit)),
        ];
        if wide {
            let runs = r
                .server
                .as_deref()
                .map(|s| view.runs_using(s, &app.rows).len())
                .unwrap_or(0);
            cells.insert(1, Cell::from(truncate(&r.name, 30)));
            cells.push(Cell::from(r.ports.join(",")));
            cells.push(Cell::from(r.restarts.to_string()));
            cells.push(Cell::from(up));
            cells.push(Cell::from(if runs > 0 {
                runs.to_string()
            } else {
                "–".into()
            }));
        } else {
            cells.push(Cell::from(up));
        }
        let row = Row::new(cells);
        if i == view.sel {
            row.style(t.selected())
        } else {
            row
        }
    });
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "SERVER",
                "CONTAINER",
                "STATE",
                "HEALTH",
                "CPU",
                "MEMORY",
                "PORTS",
                "RESTARTS",
                "UP",
                "RUNS",
            ],
            vec![
                Constraint::Length(18),
                Constraint::Length(30),
                Constraint::Length(12),
                Constraint::Length(16),
                Constraint::Length(7),
                Constraint::Length(20),
                Constraint::Min(20),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(4),
            ],
        )
    } else {
        (
            vec!["SERVER", "STATE", "HEALTH", "CPU", "MEMORY", "UP"],
            vec![
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(16),
                Constraint::Length(6),
                Constraint::Length(17),
                Constraint::Min(5),
            ],
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.fg(Role::Muted)))
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn draw_tools(frame: &mut Frame, app: &App, view: &ContainersView, row: &ContainerRow, area: Rect) {
    let t = &app.theme;
    let server = row.server.as_deref().unwrap_or("");
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", row.title()), t.title()),
        Span::styled(
            format!(
                "{} · {}",
                row.image,
                row.endpoint.as_deref().unwrap_or("no MCP endpoint")
            ),
            t.fg(Role::Muted),
        ),
    ])];
    match &row.health {
        Health::Unhealthy { reason } => lines.push(Line::from(Span::styled(
            format!("unhealthy: {reason}"),
            t.fg(Role::Error),
        ))),
        Health::Healthy { tools, latency_ms } => lines.push(Line::from(Span::styled(
            format!("healthy: initialize + tools/list in {latency_ms:.0} ms, {tools} tools"),
            t.fg(Role::Ok),
        ))),
        _ => {}
    }
    let using = view.runs_using(server, &app.rows);
    lines.push(Line::from(Span::styled(
        if using.is_empty() {
            "runs using it now: none".to_string()
        } else {
            format!(
                "runs using it now: {}",
                using
                    .iter()
                    .map(|r| format!("{} ({})", r.task_id, r.step))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        t.fg(Role::Text),
    )));
    let stats: Vec<_> = view.tools.iter().filter(|s| s.server == server).collect();
    let elsewhere = stats
        .iter()
        .find(|s| Some(s.url.as_str()) != row.endpoint.as_deref())
        .map(|s| s.url.clone());
    if let Some(url) = &elsewhere {
        lines.push(Line::from(Span::styled(
            format!("ecca's calls to {server} go to {url}, not to this container"),
            t.fg(Role::Warn),
        )));
    }
    let [head, table_area] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(lines), head);
    if stats.is_empty() {
        return muted(
            frame,
            t,
            table_area,
            &format!("ecca has not called {} yet.", row.title()),
        );
    }
    let ms = |v: Option<f64>| {
        v.map(|v| format!("{v:.0} ms"))
            .unwrap_or_else(|| "–".into())
    };
    let rows = stats.iter().map(|s| {
        let rate = if s.calls > 0 {
            s.errors as f64 * 100.0 / s.calls as f64
        } else {
            0.0
        };
        Row::new(vec![
            Cell::from(s.tool.clone()),
            Cell::from(s.calls.to_string()),
            Cell::from(ms(s.p50_ms)),
            Cell::from(ms(s.p95_ms)),
            Cell::from(Span::styled(
                format!("{rate:.1}%"),
                t.fg(if s.errors > 0 {
                    Role::Error
                } else {
                    Role::Text
                }),
            )),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(20),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(7),
        ],
    )
    .header(Row::new(vec!["TOOL", "CALLS", "P50", "P95", "ERRORS"]).style(t.fg(Role::Muted)));
    frame.render_widget(table, table_area);
}

fn draw_logs(frame: &mut Frame, app: &App, view: &ContainersView, row: &ContainerRow, area: Rect) {
    let t = &app.theme;
    let lines = view.visible_logs();
    let search = if view.searching || !view.search.is_empty() {
        format!(
            " · /{}{} ({} matching)",
            view.search,
            if view.searching { "▏" } else { "" },
            lines.len()
        )
    } else {
        String::new()
    };
    let follow = if view.log_scroll == 0 {
        "following".to_string()
    } else {
        format!("{} lines up", view.log_scroll)
    };
    let head = Line::from(vec![
        Span::styled(format!("logs of {} ", row.name), t.title()),
        Span::styled(
            format!(
                "· {follow} · {} KiB kept{search}",
                view.logs.bytes().div_ceil(1024)
            ),
            t.fg(Role::Muted),
        ),
    ]);
    let [head_area, text_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(head), head_area);
    let height = text_area.height as usize;
    let end = lines.len().saturating_sub(view.log_scroll.min(lines.len()));
    let start = end.saturating_sub(height);
    let needle = view.search.to_lowercase();
    let text: Vec<Line> = lines[start..end]
        .iter()
        .map(|l| {
            let role = if !needle.is_empty() {
                Role::Accent
            } else {
                Role::Text
            };
            Line::from(Span::styled(
                crate::cli::output::terminal_safe(l).into_owned(),
                t.fg(role),
            ))
        })
        .collect();
    if text.is_empty() {
        return muted(
            frame,
            t,
            text_area,
            if needle.is_empty() {
                "no log lines yet"
            } else {
                "no line matches the search"
            },
        );
    }
    frame.render_widget(Paragraph::new(text), text_area);
}
