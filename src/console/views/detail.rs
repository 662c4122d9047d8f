//! The Run detail: cost meter, timeline and the panes (model output, diff, lint, tests,
//! execution; for a run on a client's repository its evidence first, see `repo_evidence`).
//! Only the visible lines of a pane are touched, however long it is. The view owns the
//! loaded detail (latest request wins), its pane and scroll, and the highlighted diff lines.

use super::repo_evidence::{self, Room};
use super::{block, money};
use crate::console::app::{App, Effect};
use crate::console::highlight;
use crate::console::keymap::Action;
use crate::console::model::Detail;
use crate::console::theme::{Role, Theme};
use crate::money::Micros;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use std::cell::Cell;
use std::collections::HashMap;

/// The panes of the Run detail.
pub const PANES: [&str; 6] = ["Output", "Diff", "Lint", "Tests", "Exec", "Timeline"];
/// The panes of a run on a client's repository: its evidence first; its checks are in it.
pub const REPO_PANES: [&str; 4] = ["Evidence", "Diff", "Output", "Timeline"];

/// The Run detail's state.
#[derive(Default)]
pub struct DetailView {
    /// The run shown (also the evidence of the Approvals view's selection).
    pub loaded: Option<Detail>,
    /// The newest load asked for; older answers are dropped.
    request: u64,
    pub pane: usize,
    /// Lines scrolled up from the bottom of the pane; 0 follows new output.
    pub scroll: usize,
    /// Diff lines on screen in the last frame (written while drawing).
    pub diff_view: Cell<Option<(usize, usize)>>,
    /// Highlighted diff lines of the current detail, by diff index.
    pub highlights: HashMap<usize, highlight::Spans>,
    highlight_key: u64,
    highlight_asked: Option<(u64, usize, usize)>,
}

impl DetailView {
    /// A load of `task_id`'s detail; answers to earlier loads will be dropped.
    pub fn load(&mut self, task_id: String) -> Effect {
        self.request += 1;
        Effect::LoadDetail {
            task_id,
            request: self.request,
        }
    }

    /// Loads `task_id` unless it is the one shown.
    pub fn load_if_other(&mut self, task_id: Option<String>) -> Vec<Effect> {
        match task_id {
            Some(id) if self.loaded.as_ref().is_none_or(|d| d.task_id != id) => {
                vec![self.load(id)]
            }
            _ => vec![],
        }
    }

    /// Opens `task_id` at its first pane, following its output.
    pub fn open(&mut self, task_id: String) -> Vec<Effect> {
        self.pane = 0;
        self.scroll = 0;
        if self.loaded.as_ref().is_none_or(|d| d.task_id != task_id) {
            self.loaded = None;
            return vec![self.load(task_id)];
        }
        vec![]
    }

    /// Whether `request` is the newest load.
    pub fn is_current(&self, request: u64) -> bool {
        request == self.request
    }

    /// The panes the Run detail offers for the loaded run.
    pub fn panes(&self) -> &'static [&'static str] {
        match self.loaded.as_ref().and_then(|d| d.repo.as_ref()) {
            Some(_) => &REPO_PANES,
            None => &PANES,
        }
    }

    /// The view's own keys; false when the action is not one of them.
    pub fn act(&mut self, action: Action) -> bool {
        let n = self.panes().len();
        match action {
            Action::NextPane => {
                self.pane = (self.pane + 1) % n;
                self.scroll = 0;
            }
            Action::PrevPane => {
                self.pane = (self.pane + n - 1) % n;
                self.scroll = 0;
            }
            Action::ScrollUp => self.scroll += 1,
            Action::ScrollDown => self.scroll = self.scroll.saturating_sub(1),
            Action::PageUp => self.scroll += 20,
            Action::PageDown => self.scroll = self.scroll.saturating_sub(20),
            Action::Top => self.scroll = usize::MAX / 2,
            Action::Bottom => self.scroll = 0,
            _ => return false,
        }
        true
    }

    /// Which diff the cache is for: the run and the diff's size.
    fn diff_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if let Some(d) = &self.loaded {
            d.run_id.hash(&mut h);
            d.diff.len().hash(&mut h);
            d.diff.last().hash(&mut h);
        }
        h.finish()
    }

    /// A request for the visible diff lines that are not highlighted yet, once.
    pub fn highlight_request(&mut self, theme: &Theme) -> Option<highlight::Request> {
        let (start, end) = self.diff_view.get()?;
        // NO_COLOR: the plain diff it is.
        theme.color(Role::Text)?;
        let key = self.diff_key();
        if key != self.highlight_key {
            self.highlights.clear();
            self.highlight_key = key;
        }
        let d = self.loaded.as_ref()?;
        let missing = (start..end.min(d.diff.len())).any(|i| {
            d.diff[i].starts_with('+')
                && !d.diff[i].starts_with("+++")
                && !self.highlights.contains_key(&i)
        });
        if !missing || self.highlight_asked == Some((key, start, end)) {
            return None;
        }
        self.highlight_asked = Some((key, start, end));
        let sections = highlight::sections(&d.diff, start, end);
        Some(highlight::Request {
            key,
            sections,
            dark: theme.name != "light",
        })
    }

    /// Highlighted lines from the worker; those of another diff are dropped. True when
    /// they were kept.
    pub fn highlighted(&mut self, reply: highlight::Reply) -> bool {
        if reply.key != self.highlight_key {
            return false;
        }
        self.highlights.extend(reply.lines);
        true
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(d) = &app.detail.loaded else {
        let b = block(app, "Run");
        let inner = b.inner(area);
        frame.render_widget(b, area);
        frame.render_widget(
            Paragraph::new(Span::styled("Loading…", t.fg(Role::Muted))),
            inner,
        );
        return;
    };
    let row = app.rows.iter().find(|r| r.task_id == d.task_id);
    let title = format!(
        "Run {} · {}",
        d.run_id,
        row.map(|r| r.title.as_str()).unwrap_or("")
    );
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [meter, tabs, body] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let (cost, estimated) = row.map(|r| r.shown_cost()).unwrap_or((0, false));
    let simulated = row.is_some_and(|r| r.simulated);
    // Tokens beside dollars; the state where there is room.
    let mut state = row
        .map(|r| format!("{} tokens   {} {}", r.tokens, r.state, r.step))
        .unwrap_or_default();
    // An agent that states its own cost: ecca's prices beside its figure.
    if let Some(difference) = d.reported_difference {
        state = format!(
            "priced by ecca {} · by the agent {}   {state}",
            money(cost - difference, simulated),
            money(cost, simulated)
        );
    }
    frame.render_widget(
        Paragraph::new(vec![
            meter_line(
                t,
                "task ",
                cost,
                d.budget,
                Some(d.switch_percent),
                simulated,
                estimated,
                meter.width,
                &state,
            ),
            meter_line(
                t,
                "month",
                d.client_spent,
                d.client_cap,
                None,
                simulated,
                d.client_month_estimated,
                meter.width,
                "",
            ),
        ]),
        meter,
    );
    let panes = app.detail.panes();
    let pane = panes[app.detail.pane.min(panes.len() - 1)];
    let titles: Vec<Line> = panes.iter().map(|p| Line::from(*p)).collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(app.detail.pane.min(panes.len() - 1))
            .style(t.fg(Role::Muted))
            .highlight_style(t.selected())
            .divider("│"),
        tabs,
    );
    let (timeline_area, pane_area) = if body.width >= 120 && pane != "Timeline" {
        let [a, b] = Layout::horizontal([Constraint::Length(38), Constraint::Min(20)]).areas(body);
        (Some(a), b)
    } else {
        (None, body)
    };
    if let Some(a) = timeline_area {
        let lines = timeline_lines(t, d);
        let h = a.height as usize;
        let shown: Vec<Line> = lines
            .into_iter()
            .rev()
            .take(h)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        frame.render_widget(Paragraph::new(shown), a);
    }
    let lines = pane_lines(app, d, pane, pane_area.height as usize, app.detail.scroll);
    frame.render_widget(Paragraph::new(lines), pane_area);
}

/// `task  [█████░░┃░░] $0.42 of $1.00 (42%)`, with the switch point marked.
#[allow(clippy::too_many_arguments)] // one line of the meter: every argument is a part of it
fn meter_line<'a>(
    t: &Theme,
    label: &'a str,
    spent: Micros,
    cap: Micros,
    switch: Option<u8>,
    simulated: bool,
    estimated: bool,
    width: u16,
    tail: &str,
) -> Line<'a> {
    let bar = 24usize;
    let frac = if cap > 0 {
        spent as f64 / cap as f64
    } else {
        0.0
    };
    let filled = ((frac.min(1.0)) * bar as f64).round() as usize;
    let mark = switch.map(|p| (p as usize * bar) / 100);
    let role = if frac >= 1.0 {
        Role::GaugeOver
    } else if switch.is_some_and(|p| frac * 100.0 >= p as f64) {
        Role::GaugeWarn
    } else {
        Role::Gauge
    };
    let mut spans = vec![Span::styled(format!(" {label} ["), t.fg(Role::Muted))];
    for i in 0..bar {
        let (ch, style) = if Some(i) == mark {
            ("┃", t.fg(Role::Warn))
        } else if i < filled {
            ("█", t.fg(role))
        } else {
            ("░", t.fg(Role::Border))
        };
        spans.push(Span::styled(ch, style));
    }
    spans.push(Span::styled("] ", t.fg(Role::Muted)));
    spans.push(Span::styled(
        format!(
            "{}{} of {} ({:.1}%)",
            if estimated { "~" } else { "" },
            money(spent, simulated),
            money(cap, false),
            frac * 100.0
        ),
        t.fg(if simulated {
            Role::Simulated
        } else {
            Role::Text
        }),
    ));
    if let Some(p) = switch
        && width > 90
    {
        spans.push(Span::styled(
            format!("  ┃ cheaper model from {p}%"),
            t.fg(Role::Muted),
        ));
    }
    if !tail.is_empty() {
        spans.push(Span::styled(format!("  {tail}"), t.fg(Role::Accent)));
    }
    Line::from(spans)
}

fn timeline_lines<'a>(t: &Theme, d: &'a Detail) -> Vec<Line<'a>> {
    d.timeline
        .iter()
        .map(|e| {
            // Steps are indented under their state; both carry the time they happened.
            let clock = if e.at > 0 {
                crate::time::format_ms(e.at)
                    .get(11..)
                    .unwrap_or("")
                    .to_string()
            } else {
                String::new()
            };
            let role = if e.text.starts_with("  ") {
                Role::Muted
            } else {
                Role::Text
            };
            Line::from(vec![
                Span::styled(format!("{clock:<9}"), t.fg(Role::Muted)),
                Span::styled(e.text.as_str(), t.fg(role)),
            ])
        })
        .collect()
}

pub(super) fn diff_style(t: &Theme, line: &str) -> Style {
    if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff --git") {
        t.title()
    } else if line.starts_with("@@") {
        t.fg(Role::DiffHunk)
    } else if line.starts_with('+') {
        t.fg(Role::DiffAdd)
    } else if line.starts_with('-') {
        t.fg(Role::DiffDel)
    } else {
        t.fg(Role::Text)
    }
}

/// Diff line `index`: syntax highlighted once the worker has coloured it, else coloured as
/// added, removed, hunk header or file header.
pub(super) fn diff_line<'a>(app: &'a App, index: usize, line: &'a str) -> Line<'a> {
    let t = &app.theme;
    match app.detail.highlights.get(&index) {
        Some(spans) => {
            let mut pieces = vec![Span::styled("+", t.fg(Role::DiffAdd))];
            pieces.extend(
                spans
                    .iter()
                    .map(|(c, text)| Span::styled(text.as_str(), Style::default().fg(*c))),
            );
            Line::from(pieces)
        }
        None => Line::from(Span::styled(line, diff_style(t, line))),
    }
}

/// The visible lines of a pane: `height` lines ending `scroll` lines above the bottom.
pub fn pane_lines<'a>(
    app: &'a App,
    d: &'a Detail,
    pane: &str,
    height: usize,
    scroll: usize,
) -> Vec<Line<'a>> {
    let t = &app.theme;
    let window = |len: usize| {
        let end = len.saturating_sub(scroll.min(len.saturating_sub(height.min(len))));
        (end.saturating_sub(height), end)
    };
    match pane {
        "Output" => {
            if d.output.is_empty() {
                return vec![Line::from(Span::styled(
                    "no model output yet",
                    t.fg(Role::Muted),
                ))];
            }
            let (start, end) = window(d.output.len());
            let mut out: Vec<Line> = (start..end)
                .filter_map(|i| d.output.get(i))
                .map(|l| Line::from(Span::styled(l, t.fg(Role::Text))))
                .collect();
            if start == 0 && d.output.dropped > 0 {
                out.insert(
                    0,
                    Line::from(Span::styled(
                        format!("… {} earlier lines dropped (4 MiB kept)", d.output.dropped),
                        t.fg(Role::Muted),
                    )),
                );
                out.truncate(height);
            }
            out
        }
        "Diff" => {
            if d.diff.is_empty() {
                return vec![Line::from(Span::styled(
                    "no code written yet",
                    t.fg(Role::Muted),
                ))];
            }
            let (start, end) = window(d.diff.len());
            // The loop reads this after the frame to ask for highlighting of these lines.
            app.detail.diff_view.set(Some((start, end)));
            d.diff[start..end]
                .iter()
                .enumerate()
                .map(|(k, l)| diff_line(app, start + k, l))
                .collect()
        }
        "Evidence" => {
            let Some(repo) = &d.repo else {
                return vec![];
            };
            let all = repo_evidence::lines(t, repo, d.deliverable_url.as_deref(), Room::Full);
            let (start, end) = window(all.len());
            all.into_iter().skip(start).take(end - start).collect()
        }
        "Timeline" => {
            let all = timeline_lines(t, d);
            let (start, end) = window(all.len());
            all.into_iter().skip(start).take(end - start).collect()
        }
        _ => {
            let step = match pane {
                "Lint" => &d.lint,
                "Tests" => &d.tests,
                _ => &d.exec,
            };
            if step.label.is_empty() {
                return vec![Line::from(Span::styled(
                    format!("{} has not run yet", pane.to_lowercase()),
                    t.fg(Role::Muted),
                ))];
            }
            let mut lines = vec![Line::from(Span::styled(step.label.clone(), t.title()))];
            let (start, end) = window(step.lines.len());
            lines.extend(step.lines[start..end].iter().map(|l| {
                let role = if l.starts_with('!') || l.contains(" error ") || l.starts_with("failed")
                {
                    Role::Error
                } else if l.starts_with("skipped") {
                    Role::Warn
                } else {
                    Role::Text
                };
                Line::from(Span::styled(l.as_str(), t.fg(role)))
            }));
            if !d.skipped.is_empty() && pane == "Tests" {
                lines.push(Line::from(Span::styled(
                    format!("not verified: {}", d.skipped.join("; ")),
                    t.fg(Role::Warn),
                )));
            }
            lines
        }
    }
}
