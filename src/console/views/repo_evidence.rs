//! The evidence of a run on a client's repository, as lines both the Approvals view and the
//! Run detail show: how it ended, what it is based on, what changed, the repository's own
//! checks before and after, the acceptance criteria with what proves them, the risk and
//! any secret found, and the pull request once delivered.

use super::truncate;
use crate::console::theme::{Role, Theme};
use crate::engine::fsm::repo::RepoWork;
use crate::repo::{CheckOutcome, CheckStatus, ResultStatus, RiskReport};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

/// How much room the evidence gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// A line per file and per risk reason.
    Full,
    /// One line for all files and one for all reasons (80×24).
    Compact,
}

pub fn result_role(result: ResultStatus) -> Role {
    match result {
        ResultStatus::Success => Role::Ok,
        ResultStatus::SoftFail => Role::Warn,
        ResultStatus::HardFail => Role::Error,
    }
}

/// Low risk reads as fine, the middle as a warning, above the critical line as an error.
pub fn risk_role(score: u8) -> Role {
    if score > RiskReport::CRITICAL_ABOVE {
        Role::Error
    } else if score > 30 {
        Role::Warn
    } else {
        Role::Ok
    }
}

fn risk_band(score: u8) -> &'static str {
    if score > RiskReport::CRITICAL_ABOVE {
        "high: critical review"
    } else if score > 30 {
        "moderate"
    } else {
        "low"
    }
}

fn check_role(status: CheckStatus) -> Role {
    match status {
        CheckStatus::Passed => Role::Ok,
        CheckStatus::Failed => Role::Error,
        CheckStatus::Skipped => Role::Warn,
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// `label  passed  command  (why)`.
fn check_line<'a>(t: &Theme, label: &str, c: &CheckOutcome) -> Line<'a> {
    let command = if c.command.is_empty() {
        "(no command found)".to_string()
    } else {
        c.command.clone()
    };
    let mut spans = vec![
        Span::styled(format!("{label:<7}"), t.fg(Role::Muted)),
        Span::styled(format!("{:<5} ", c.kind), t.fg(Role::Muted)),
        Span::styled(
            format!("{:<8}", c.status.as_str()),
            t.fg(check_role(c.status)),
        ),
        Span::styled(command, t.fg(Role::Text)),
    ];
    if c.status != CheckStatus::Passed && !c.reason.is_empty() {
        spans.push(Span::styled(
            format!("  {}", c.reason),
            t.fg(check_role(c.status)),
        ));
    }
    Line::from(spans)
}

/// The evidence lines of `repo`; `url` is the task's deliverable URL once delivered.
pub fn lines<'a>(t: &Theme, repo: &RepoWork, url: Option<&str>, room: Room) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    let muted = |s: String| Span::styled(s, t.fg(Role::Muted));
    // How it ended, on what, to where.
    let result = match repo.result {
        Some(r) => Span::styled(
            r.as_str().to_string(),
            t.fg(result_role(r)).add_modifier(Modifier::BOLD),
        ),
        None => muted("no result yet".into()),
    };
    out.push(Line::from(vec![
        muted("result ".into()),
        result,
        muted("   ".into()),
        Span::styled(repo.base_branch.clone(), t.fg(Role::Text)),
        muted(" @ ".into()),
        Span::styled(short(&repo.base_commit).to_string(), t.fg(Role::Accent)),
        muted(" → ".into()),
        Span::styled(repo.branch.clone(), t.fg(Role::Text)),
    ]));

    match &repo.diff {
        Some(diff) if !diff.is_empty() => {
            let mut head = vec![
                muted(format!("files  {} changed  ", diff.files.len())),
                Span::styled(format!("+{}", diff.lines_added()), t.fg(Role::DiffAdd)),
                Span::styled(format!(" −{}", diff.lines_removed()), t.fg(Role::DiffDel)),
            ];
            if diff.patch_truncated {
                head.push(Span::styled(
                    "  (the patch below is cut; the branch has all of it)",
                    t.fg(Role::Warn),
                ));
            }
            if room == Room::Compact {
                let names: Vec<&str> = diff.files.iter().map(|f| f.path.as_str()).collect();
                head.push(muted(format!("  {}", names.join(", "))));
            }
            out.push(Line::from(head));
            if room == Room::Full {
                let width = diff
                    .files
                    .iter()
                    .map(|f| f.path.chars().count())
                    .max()
                    .unwrap_or(0)
                    .min(48);
                for f in &diff.files {
                    let mark = match f.status.as_str() {
                        "added" => "A",
                        "deleted" => "D",
                        "renamed" => "R",
                        _ => "M",
                    };
                    let counts = if f.binary {
                        vec![muted("binary".into())]
                    } else {
                        vec![
                            Span::styled(format!("+{:<4}", f.added), t.fg(Role::DiffAdd)),
                            Span::styled(format!(" −{}", f.removed), t.fg(Role::DiffDel)),
                        ]
                    };
                    let mut spans = vec![
                        muted(format!("  {mark} ")),
                        Span::styled(
                            format!("{:<width$}  ", truncate(&f.path, width)),
                            t.fg(Role::Text),
                        ),
                    ];
                    spans.extend(counts);
                    out.push(Line::from(spans));
                }
            }
        }
        _ => out.push(Line::from(muted(
            "files  no change against the base".into(),
        ))),
    }

    // The repository's own checks: the smoke check on the base commit, then after.
    match &repo.smoke {
        Some(c) => out.push(check_line(t, "before", c)),
        None => out.push(Line::from(vec![
            muted(format!("{:<7}", "before")),
            Span::styled("not run", t.fg(Role::Warn)),
        ])),
    }
    if repo.checks.is_empty() {
        out.push(Line::from(vec![
            muted(format!("{:<7}", "after")),
            Span::styled("not run", t.fg(Role::Warn)),
        ]));
    }
    for c in &repo.checks {
        out.push(check_line(t, "after", c));
    }

    if !repo.criteria.is_empty() {
        let met = repo.criteria.iter().filter(|c| c.met).count();
        out.push(Line::from(muted(format!(
            "criteria {met} of {} met",
            repo.criteria.len()
        ))));
    }
    for c in &repo.criteria {
        let (mark, role) = if c.met {
            ("[x]", Role::Ok)
        } else {
            ("[ ]", Role::Error)
        };
        let evidence = if c.evidence.is_empty() {
            "no evidence".to_string()
        } else {
            c.evidence.clone()
        };
        out.push(Line::from(vec![
            Span::styled(format!("  {mark} "), t.fg(role)),
            Span::styled(c.text.clone(), t.fg(Role::Text)),
            muted(format!("  ← {evidence}")),
        ]));
    }

    match &repo.risk {
        Some(risk) => {
            let role = risk_role(risk.score);
            let mut head = vec![
                muted("risk   ".into()),
                Span::styled(
                    format!("{}/100 {}", risk.score, risk_band(risk.score)),
                    t.fg(role).add_modifier(Modifier::BOLD),
                ),
            ];
            if room == Room::Compact && !risk.reasons.is_empty() {
                head.push(muted(format!("  {}", risk.reasons.join("; "))));
            }
            out.push(Line::from(head));
            if room == Room::Full {
                out.extend(
                    risk.reasons
                        .iter()
                        .map(|r| Line::from(Span::styled(format!("  · {r}"), t.fg(role)))),
                );
            }
            for s in &risk.secrets {
                out.push(Line::from(vec![
                    Span::styled("secret ", t.fg(Role::Error).add_modifier(Modifier::BOLD)),
                    Span::styled(
                        format!("{} at {}:{}  {}", s.kind, s.path, s.line, s.masked),
                        t.fg(Role::Error),
                    ),
                ]));
            }
        }
        None => out.push(Line::from(vec![
            muted("risk   ".into()),
            Span::styled("not scored yet", t.fg(Role::Warn)),
        ])),
    }

    if let Some(pr) = url.or(repo.pr_url.as_deref()) {
        out.push(Line::from(vec![
            muted("pull request ".into()),
            Span::styled(pr.to_string(), t.fg(Role::Accent)),
        ]));
    } else if let Some(commit) = &repo.commit {
        let pushed = if repo.pushed {
            "pushed"
        } else {
            "not pushed yet"
        };
        out.push(Line::from(muted(format!(
            "commit {} on {} ({pushed})",
            short(commit),
            repo.branch
        ))));
    }
    out
}
