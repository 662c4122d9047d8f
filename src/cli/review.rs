//! `ecca audit` and `ecca diff`: what a task's runs did to the world, and the change its
//! latest run made to the client's repository, for an operator reviewing a deliverable
//! from a shell.

use super::lists::truncate;
use super::{Setup, output};
use crate::engine::fsm::Agent;
use crate::repo::DiffSummary;
use crate::store::Store;
use serde::Serialize;

/// Widest the tool and outcome columns get; longer cells are cut with `…` (the JSON form
/// keeps them whole).
const TOOL_WIDTH: usize = 40;
const OUTCOME_WIDTH: usize = 48;

/// One audit row as `ecca audit --json` prints it.
#[derive(Serialize)]
struct AuditRow<'a> {
    run_id: &'a str,
    /// Unix milliseconds.
    at: i64,
    time_utc: String,
    tool: &'a str,
    outcome: &'a str,
    duration_ms: u64,
    args_digest: &'a str,
}

/// Opens the store and checks that `task_id` names a task.
fn store_with_task(setup: &Setup, task_id: &str) -> Result<Store, String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    if store.task(task_id).map_err(|e| e.0)?.is_none() {
        return Err(format!(
            "task {task_id} does not exist; `ecca tasks` lists the tasks"
        ));
    }
    Ok(store)
}

pub(super) fn audit(setup: &Setup, task_id: &str, json: bool) -> Result<(), String> {
    let store = store_with_task(setup, task_id)?;
    let entries = store.audit(task_id).map_err(|e| e.0)?;
    // The operator's budget changes of the task are part of its trail, as tool `budget`.
    let changes: Vec<(i64, String)> = store
        .budget_changes(None, Some(task_id))
        .map_err(|e| e.0)?
        .into_iter()
        .map(|c| (c.at, budget_change_text(&c)))
        .collect();
    let mut rows: Vec<AuditRow<'_>> = entries
        .iter()
        .map(|(run_id, e)| AuditRow {
            run_id,
            at: e.at,
            time_utc: crate::time::format_ms(e.at),
            tool: &e.tool,
            outcome: &e.outcome,
            duration_ms: e.duration_ms,
            args_digest: &e.args_digest,
        })
        .chain(changes.iter().map(|(at, text)| AuditRow {
            run_id: "-",
            at: *at,
            time_utc: crate::time::format_ms(*at),
            tool: "budget",
            outcome: text,
            duration_ms: 0,
            args_digest: "-",
        }))
        .collect();
    rows.sort_by_key(|r| r.at);
    if json {
        return output::say_json(&rows);
    }
    if rows.is_empty() {
        output::say(&format!(
            "task {task_id} has no audit rows: none of its runs has called a tool, written a file, run a command or touched git yet"
        ));
        return Ok(());
    }
    let header = ["TIME (UTC)", "RUN", "TOOL", "OUTCOME", "DURATION", "ARGS"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.time_utc.clone(),
                truncate(r.run_id, 24),
                truncate(r.tool, TOOL_WIDTH),
                truncate(r.outcome, OUTCOME_WIDTH),
                duration(r.duration_ms),
                truncate(r.args_digest, 16),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    output::say(&line(&header.map(String::from), &widths));
    for row in &cells {
        output::say(&line(row, &widths));
    }
    Ok(())
}

/// One table line: every column padded to its width but the last, duration right-aligned.
fn line(cells: &[String; 6], widths: &[usize; 6]) -> String {
    let [time, run, tool, outcome, took, args] = cells;
    format!(
        "{time:<w0$}  {run:<w1$}  {tool:<w2$}  {outcome:<w3$}  {took:>w4$}  {args}",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2],
        w3 = widths[3],
        w4 = widths[4],
    )
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

pub(super) fn diff(setup: &Setup, task_id: &str, stat: bool) -> Result<(), String> {
    let store = store_with_task(setup, task_id)?;
    let Some(run) = store.latest_run(task_id).map_err(|e| e.0)? else {
        output::say(&format!(
            "task {task_id} has no repository diff: it has not started a run yet"
        ));
        return Ok(());
    };
    let agent: Agent = serde_json::from_str(&run.fsm_state).map_err(|e| {
        format!(
            "the checkpoint of run {} could not be read ({e}); it may come from a newer ecca, so use that version to see its diff",
            run.id
        )
    })?;
    let Some(work) = agent.repo.as_ref() else {
        output::say(&format!(
            "task {task_id} has no repository diff: its run {} does not work on a client repository (its deliverable is a bundle of files)",
            run.id
        ));
        return Ok(());
    };
    let Some(diff) = work.diff.as_ref() else {
        output::say(&format!(
            "task {task_id} has no repository diff yet: its run {} has not changed its worktree",
            run.id
        ));
        return Ok(());
    };
    if stat {
        print_stat(diff, &run.id);
    } else {
        print_patch(diff);
    }
    Ok(())
}

/// `path | +a −r` per file, then the totals and the base.
fn print_stat(diff: &DiffSummary, run_id: &str) {
    let paths: Vec<String> = diff
        .files
        .iter()
        .map(|f| output::one_line(&f.path))
        .collect();
    let width = paths.iter().map(|p| p.chars().count()).max().unwrap_or(0);
    for (f, path) in diff.files.iter().zip(&paths) {
        let counts = if f.binary {
            "binary".to_string()
        } else {
            format!("+{} -{}", f.added, f.removed)
        };
        output::say(&format!("{path:<width$} | {counts:<14} {}", f.status));
    }
    output::say(&format!(
        "{} {} changed, +{} -{} against {} (run {run_id})",
        diff.files.len(),
        if diff.files.len() == 1 {
            "file"
        } else {
            "files"
        },
        diff.lines_added(),
        diff.lines_removed(),
        short_sha(&diff.base_commit)
    ));
}

fn print_patch(diff: &DiffSummary) {
    if diff.patch.trim().is_empty() {
        output::say("the diff has no text lines (only binary files or modes changed)");
    } else {
        output::say(diff.patch.trim_end_matches('\n'));
    }
    if diff.patch_truncated {
        output::tell(&format!(
            "the diff above is cut short; the whole change is on the run's worktree, against base {}",
            short_sha(&diff.base_commit)
        ));
    }
}

fn short_sha(sha: &str) -> String {
    if sha.is_empty() {
        "an unrecorded base commit".to_string()
    } else {
        sha.chars().take(12).collect()
    }
}

/// A budget change in one line: `task budget $1.000000 → $3.000000: note`.
pub(super) fn budget_change_text(c: &crate::store::BudgetChangeRecord) -> String {
    let what = if c.kind == crate::store::BUDGET_KIND_TASK {
        "task budget"
    } else {
        "monthly cap"
    };
    format!(
        "{what} {} -> {}: {}",
        crate::money::format_usd(c.old_micros),
        crate::money::format_usd(c.new_micros),
        output::one_line(&c.note)
    )
}
