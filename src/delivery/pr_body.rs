//! The pull request a delivery opens: its title and a Markdown body that carries the
//! evidence — the checks before and after the change, each acceptance criterion with the
//! command that proved it, what could not be verified and why, the files changed, the
//! risk score and the cost. Pure: the caller gathers the evidence from the run.
//!
//! The body goes to the client's repository host, so nothing secret may reach it: every
//! piece of text that came from outside (a reason, a command, an evidence line) passes
//! through [`secrets_scan::redact`], which masks token-shaped strings and strips
//! credentials from URLs, and the finished body passes through it once more.

use super::secrets_scan;
use crate::repo::{CheckOutcome, CheckStatus, Criterion, DiffSummary, ResultStatus, RiskReport};

/// A pull request title stays under this many characters (git's subject-line habit).
pub const TITLE_LIMIT: usize = 72;

/// Everything the body shows.
pub struct PrEvidence<'a> {
    pub task_id: &'a str,
    pub title: &'a str,
    pub client_id: &'a str,
    pub quality_score: Option<f64>,
    pub result: ResultStatus,
    /// The smoke check on the base commit, before any model call (`RepoWork.smoke`, as a
    /// slice: `work.smoke.as_slice()`).
    pub checks_before: &'a [CheckOutcome],
    /// The checks after the change (`RepoWork.checks`).
    pub checks_after: &'a [CheckOutcome],
    pub criteria: &'a [Criterion],
    pub cost_micros: i64,
    /// Some of the cost is an estimate: a provider reported no usage for a call.
    pub cost_estimated: bool,
    /// Written by the offline model: no real model call was made.
    pub simulated: bool,
    pub diff: &'a DiffSummary,
    pub risk: &'a RiskReport,
    /// Steps that did not run, with why (`Agent.skipped`), beyond the skipped checks.
    pub not_verified: &'a [String],
}

/// `feat(T-0042): title`, on one line and under [`TITLE_LIMIT`] characters; a long title is
/// cut at a character boundary and ends with `…`.
pub fn title(task_id: &str, title: &str) -> String {
    let one_line = title.split_whitespace().collect::<Vec<_>>().join(" ");
    let full = secrets_scan::redact(&format!("feat({task_id}): {one_line}"));
    if full.chars().count() < TITLE_LIMIT {
        return full;
    }
    let mut cut: String = full.chars().take(TITLE_LIMIT - 2).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// The Markdown body.
pub fn render(e: &PrEvidence<'_>) -> String {
    let mut b = String::new();
    b.push_str(&format!("## {} — {}\n\n", e.task_id, text(e.title)));
    b.push_str(&format!(
        "**Result:** {} · **Client:** {} · **Quality score:** {} · **Cost:** {}\n\n",
        result_line(e.result),
        text(e.client_id),
        e.quality_score
            .map(|s| format!("{s:.1}/10"))
            .unwrap_or_else(|| "not scored".into()),
        cost(e)
    ));

    b.push_str("### Checks\n\n");
    if e.checks_before.is_empty() && e.checks_after.is_empty() {
        b.push_str("No checks ran.\n\n");
    } else {
        b.push_str("| When | Check | Command | Result | Time |\n|---|---|---|---|---|\n");
        let rows = e
            .checks_before
            .iter()
            .map(|c| ("before (base commit)", c))
            .chain(e.checks_after.iter().map(|c| ("after the change", c)));
        for (when, c) in rows {
            b.push_str(&format!(
                "| {when} | {} | {} | {} | {} |\n",
                cell(&c.kind),
                command_cell(&c.command),
                status_cell(c),
                seconds(c.duration_ms)
            ));
        }
        b.push('\n');
    }

    b.push_str("### Acceptance criteria\n\n");
    if e.criteria.is_empty() {
        b.push_str("No acceptance criteria were given.\n\n");
    } else {
        for c in e.criteria {
            let evidence = if c.evidence.trim().is_empty() {
                if c.met {
                    "met".to_string()
                } else {
                    "not proven: no command ran for it".to_string()
                }
            } else {
                text(&c.evidence)
            };
            b.push_str(&format!(
                "- [{}] {} — {}\n",
                if c.met { "x" } else { " " },
                text(&c.text),
                evidence
            ));
        }
        b.push('\n');
    }

    b.push_str("### Not verified\n\n");
    let unverified = not_verified(e);
    if unverified.is_empty() {
        b.push_str("Nothing: every check ran.\n\n");
    } else {
        for line in unverified {
            b.push_str(&format!("- {line}\n"));
        }
        b.push('\n');
    }

    b.push_str(&format!(
        "### Files changed ({} {}, +{} −{})\n\n",
        e.diff.files.len(),
        if e.diff.files.len() == 1 {
            "file"
        } else {
            "files"
        },
        e.diff.lines_added(),
        e.diff.lines_removed()
    ));
    if !e.diff.files.is_empty() {
        b.push_str("| File | Change | + | − |\n|---|---|---:|---:|\n");
        for f in &e.diff.files {
            let (added, removed) = if f.binary {
                ("binary".to_string(), String::new())
            } else {
                (f.added.to_string(), f.removed.to_string())
            };
            b.push_str(&format!(
                "| {} | {} | {added} | {removed} |\n",
                code(&f.path),
                cell(&f.status)
            ));
        }
        b.push('\n');
    }
    if !e.diff.base_commit.is_empty() {
        b.push_str(&format!(
            "Base commit: `{}`\n\n",
            short_sha(&e.diff.base_commit)
        ));
    }

    b.push_str(&format!("### Risk: {}/100\n\n", e.risk.score));
    if e.risk.reasons.is_empty() {
        b.push_str("Nothing in the change raised the risk score.\n");
    }
    for r in &e.risk.reasons {
        b.push_str(&format!("- {}\n", text(r)));
    }
    if !e.risk.secrets.is_empty() {
        // Where, never what: even the masked form stays out of a public page.
        b.push_str(&format!(
            "\n{} possible secret(s) were found and reviewed by the operator before approval:\n",
            e.risk.secrets.len()
        ));
        for s in &e.risk.secrets {
            b.push_str(&format!(
                "- {} at {}:{}\n",
                cell(&s.kind),
                code(&s.path),
                s.line
            ));
        }
    }
    b.push_str("\n---\nOpened by ecca after the operator approved the change.\n");
    secrets_scan::redact(&b)
}

fn result_line(result: ResultStatus) -> String {
    let meaning = match result {
        ResultStatus::Success => "every check that could run passed",
        ResultStatus::SoftFail => "applied, but checks still fail",
        ResultStatus::HardFail => "the change could not be applied",
    };
    format!("`{}` ({meaning})", result.as_str())
}

fn cost(e: &PrEvidence<'_>) -> String {
    format!(
        "{}{}{}",
        if e.cost_estimated { "~" } else { "" },
        crate::money::format_usd(e.cost_micros),
        if e.simulated { " (simulated)" } else { "" }
    )
}

/// Every skipped check with its reason, then the other steps that did not run.
fn not_verified(e: &PrEvidence<'_>) -> Vec<String> {
    let skipped = e
        .checks_before
        .iter()
        .map(|c| ("before the change", c))
        .chain(e.checks_after.iter().map(|c| ("after the change", c)))
        .filter(|(_, c)| c.status == CheckStatus::Skipped)
        .map(|(when, c)| {
            let command = if c.command.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", code(&c.command))
            };
            let reason = if c.reason.trim().is_empty() {
                "no reason was recorded".to_string()
            } else {
                text(&c.reason)
            };
            format!("{}{command} {when}: skipped — {reason}", cell(&c.kind))
        });
    skipped
        .chain(e.not_verified.iter().map(|s| text(s)))
        .collect()
}

/// Outside text on one line, redacted, with Markdown's HTML and link openers defused so it
/// cannot inject markup, images or mentions into the page.
fn text(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    secrets_scan::redact(&one_line)
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('@', "@\u{200b}")
}

/// A table cell: [`text`] with the column separator escaped.
fn cell(s: &str) -> String {
    text(s).replace('|', "\\|")
}

/// Inline code in a table cell. Backticks inside would end the span early; they become
/// quotes.
fn code(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "`{}`",
        secrets_scan::redact(&one_line)
            .replace('`', "'")
            .replace('|', "\\|")
    )
}

fn command_cell(command: &str) -> String {
    if command.trim().is_empty() {
        "—".to_string()
    } else {
        code(command)
    }
}

fn status_cell(c: &CheckOutcome) -> String {
    match c.status {
        CheckStatus::Passed => "✅ passed".to_string(),
        CheckStatus::Failed if c.reason.trim().is_empty() => "❌ failed".to_string(),
        CheckStatus::Failed => format!("❌ failed: {}", cell(&c.reason)),
        CheckStatus::Skipped => "⏭ skipped (see Not verified)".to_string(),
    }
}

fn seconds(ms: u64) -> String {
    if ms == 0 {
        "—".to_string()
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn short_sha(sha: &str) -> String {
    sha.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{FileChange, SecretFinding};

    fn check(kind: &str, command: &str, status: CheckStatus, reason: &str) -> CheckOutcome {
        CheckOutcome {
            kind: kind.into(),
            command: command.into(),
            status,
            reason: reason.into(),
            output: "Ran 3 tests\nOK".into(),
            duration_ms: 1500,
        }
    }

    struct Fixture {
        before: Vec<CheckOutcome>,
        after: Vec<CheckOutcome>,
        criteria: Vec<Criterion>,
        diff: DiffSummary,
        risk: RiskReport,
        skipped: Vec<String>,
    }

    fn fixture() -> Fixture {
        Fixture {
            before: vec![check(
                "test",
                "python3 -m unittest discover -q",
                CheckStatus::Passed,
                "",
            )],
            after: vec![
                check(
                    "lint",
                    "",
                    CheckStatus::Skipped,
                    "no linter was detected in the repository",
                ),
                check(
                    "test",
                    "python3 -m unittest discover -q",
                    CheckStatus::Passed,
                    "",
                ),
            ],
            criteria: vec![
                Criterion {
                    text: "`slug --help` lists the options".into(),
                    check: Some("python3 -m unittest tests.test_cli".into()),
                    evidence: "passed: python3 -m unittest tests.test_cli".into(),
                    met: true,
                },
                Criterion {
                    text: "works offline".into(),
                    check: None,
                    evidence: String::new(),
                    met: false,
                },
            ],
            diff: DiffSummary {
                base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
                files: vec![
                    FileChange {
                        path: "slug/cli.py".into(),
                        status: "modified".into(),
                        added: 12,
                        removed: 3,
                        binary: false,
                    },
                    FileChange {
                        path: "tests/test_cli.py".into(),
                        status: "added".into(),
                        added: 20,
                        removed: 0,
                        binary: false,
                    },
                ],
                patch: String::new(),
                patch_truncated: false,
            },
            risk: RiskReport {
                score: 5,
                reasons: vec!["size: 35 lines changed (+32 −3) (+5)".into()],
                secrets: vec![],
            },
            skipped: vec!["review: no reviewer model configured".into()],
        }
    }

    fn evidence(f: &Fixture) -> PrEvidence<'_> {
        PrEvidence {
            task_id: "T-0042",
            title: "Add --help to the slug CLI",
            client_id: "acme",
            quality_score: Some(8.3),
            result: ResultStatus::Success,
            checks_before: &f.before,
            checks_after: &f.after,
            criteria: &f.criteria,
            cost_micros: 12_345,
            cost_estimated: true,
            simulated: true,
            diff: &f.diff,
            risk: &f.risk,
            not_verified: &f.skipped,
        }
    }

    #[test]
    fn the_body_carries_every_piece_of_evidence() {
        let f = fixture();
        let body = render(&evidence(&f));
        for expected in [
            "## T-0042 — Add --help to the slug CLI",
            "`SUCCESS`",
            "**Quality score:** 8.3/10",
            "**Cost:** ~$0.012345 (simulated)",
            "| before (base commit) | test | `python3 -m unittest discover -q` | ✅ passed | 1.5 s |",
            "| after the change | lint | — | ⏭ skipped (see Not verified) | 1.5 s |",
            "- [x] `slug --help` lists the options — passed: python3 -m unittest tests.test_cli",
            "- [ ] works offline — not proven: no command ran for it",
            "### Not verified",
            "- lint after the change: skipped — no linter was detected in the repository",
            "- review: no reviewer model configured",
            "### Files changed (2 files, +32 −3)",
            "| `slug/cli.py` | modified | 12 | 3 |",
            "Base commit: `0123456789ab`",
            "### Risk: 5/100",
            "- size: 35 lines changed (+32 −3) (+5)",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
        assert!(
            !body.contains("Ran 3 tests"),
            "check output stays out of the body"
        );
    }

    #[test]
    fn an_exact_cost_and_a_real_run_carry_no_marks() {
        let f = fixture();
        let mut e = evidence(&f);
        e.cost_estimated = false;
        e.simulated = false;
        e.quality_score = None;
        let body = render(&e);
        assert!(body.contains("**Cost:** $0.012345 ·") || body.contains("**Cost:** $0.012345\n"));
        assert!(!body.contains("simulated") && !body.contains('~'));
        assert!(body.contains("**Quality score:** not scored"));
    }

    #[test]
    fn nothing_skipped_says_so() {
        let mut f = fixture();
        f.after.retain(|c| c.status != CheckStatus::Skipped);
        f.skipped.clear();
        assert!(render(&evidence(&f)).contains("### Not verified\n\nNothing: every check ran."));
    }

    #[test]
    fn no_token_or_credentialed_url_reaches_the_body() {
        let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
        let mut f = fixture();
        f.after[0].reason =
            format!("could not fetch https://x-access-token:{token}@github.com/acme/app.git");
        f.criteria[0].evidence = format!("passed: curl -H 'Authorization: token {token}' x");
        f.skipped
            .push("push: https://bot:hunter2@example.com/r.git refused".to_string());
        f.risk.secrets.push(SecretFinding {
            path: "app/auth.py".into(),
            line: 3,
            kind: "github token".into(),
            masked: crate::secrets::mask(&token),
        });
        let mut e = evidence(&f);
        let title_with_token = format!("Rotate {token}");
        e.title = &title_with_token;
        let body = render(&e);
        assert!(!body.contains(&token), "{body}");
        assert!(
            !body.contains("hunter2") && !body.contains("x-access-token:"),
            "{body}"
        );
        assert!(
            !body.contains(&crate::secrets::mask(&token)),
            "the masked form stays out too"
        );
        assert!(body.contains("github token at `app/auth.py`:3"));
        assert!(!title(e.task_id, &title_with_token).contains(&token));
    }

    #[test]
    fn outside_text_cannot_break_the_tables_or_inject_markup() {
        let mut f = fixture();
        f.after[1].status = CheckStatus::Failed;
        f.after[1].reason = "1 | 2 <img src=x> cc @everyone\nnext".into();
        let body = render(&evidence(&f));
        assert!(
            body.contains("❌ failed: 1 \\| 2 &lt;img src=x&gt; cc @\u{200b}everyone next |"),
            "{body}"
        );
    }

    #[test]
    fn titles_are_prefixed_and_cut_at_a_character_boundary() {
        assert_eq!(
            title("T-0042", "Add  --help\nto the CLI"),
            "feat(T-0042): Add --help to the CLI"
        );
        let long =
            "Überarbeite die Ausgabe der Kommandozeile für sehr lange Dateinamen und Pfade überall";
        let cut = title("T-0042", long);
        assert!(cut.chars().count() < TITLE_LIMIT, "{cut}");
        assert!(
            cut.starts_with("feat(T-0042): Überarbeite") && cut.ends_with('…'),
            "{cut}"
        );
        let exact = "x".repeat(TITLE_LIMIT - "feat(T-0042): ".len() - 1);
        assert_eq!(title("T-0042", &exact).chars().count(), TITLE_LIMIT - 1);
    }
}
