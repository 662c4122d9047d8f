//! The operator's money on the command line: a client's cap and retainer, a task's budget,
//! the budget changes of a client, and the client report for invoicing.

use super::{Setup, output, run};
use crate::money::{Micros, format_usd, parse_usd};
use crate::store::Store;
use crate::supervisor::Command;

/// `ecca clients cap ID AMOUNT --note`: sets the cap; runs the old cap paused resume and
/// this command follows them until they rest, as `ecca resume` does.
pub(super) async fn set_cap(
    setup: &Setup,
    id: &str,
    amount: &str,
    note: &str,
) -> Result<(), String> {
    let micros = parse_usd(amount)?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let old = super::existing_client(&store, id)?.monthly_budget_micros;
    let paused: Vec<String> = store
        .tasks_of_client(id)
        .map_err(|e| e.0)?
        .into_iter()
        .filter(|t| t.status == crate::domain::TaskStatus::Paused)
        .map(|t| t.id)
        .collect();
    let command = Command::SetClientCap {
        client_id: id.to_string(),
        monthly_budget_micros: micros,
        note: note.to_string(),
    };
    run::execute_and_follow(setup, store, command, &paused).await?;
    output::say(&format!(
        "monthly cap of {id}: {} -> {} ({})",
        format_usd(old),
        format_usd(micros),
        output::one_line(note)
    ));
    Ok(())
}

/// `ecca budget TASK AMOUNT --note`: sets a task's budget.
pub(super) async fn set_task_budget(
    setup: &Setup,
    task_id: &str,
    amount: &str,
    note: &str,
) -> Result<(), String> {
    let micros = parse_usd(amount)?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let task = store
        .task(task_id)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("task {task_id} does not exist; `ecca tasks` lists the tasks"))?;
    let command = Command::SetTaskBudget {
        task_id: task_id.to_string(),
        budget_micros: micros,
        note: note.to_string(),
    };
    run::execute_and_follow(setup, store, command, &[]).await?;
    let next = if task.status == crate::domain::TaskStatus::Failed {
        format!("; `ecca retry {task_id}` starts a fresh attempt with it")
    } else {
        String::new()
    };
    output::say(&format!(
        "budget of {task_id}: {} -> {}{next}",
        format_usd(task.budget_micros),
        format_usd(micros)
    ));
    Ok(())
}

/// `ecca clients retainer ID AMOUNT|none`.
pub(super) async fn set_retainer(setup: &Setup, id: &str, amount: &str) -> Result<(), String> {
    let micros: Option<Micros> = if amount.trim().eq_ignore_ascii_case("none") {
        None
    } else {
        Some(parse_usd(amount)?)
    };
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let command = Command::SetClientRetainer {
        client_id: id.to_string(),
        retainer_micros: micros,
    };
    run::execute_and_follow(setup, store, command, &[]).await?;
    output::say(&match micros {
        Some(m) => format!("retainer of {id}: {} a month", format_usd(m)),
        None => format!("{id} has no retainer now"),
    });
    Ok(())
}

/// `ecca audit --client ID`: every change of the client's cap and its tasks' budgets.
pub(super) fn client_budget_changes(setup: &Setup, id: &str, json: bool) -> Result<(), String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    super::existing_client(&store, id)?;
    let changes = store.budget_changes(Some(id), None).map_err(|e| e.0)?;
    if json {
        return output::say_json(&changes);
    }
    if changes.is_empty() {
        output::say(&format!(
            "no budget changes for {id}: its cap and its tasks' budgets are as they were set"
        ));
        return Ok(());
    }
    for c in &changes {
        output::say(&format!(
            "{}  {:<8}  {}",
            crate::time::format_ms(c.at),
            c.task_id.as_deref().unwrap_or(id),
            super::review::budget_change_text(c)
        ));
    }
    Ok(())
}

/// `ecca report --client ID --month YYYY-MM [--format md|csv|json]`.
pub(super) fn report(setup: &Setup, id: &str, month: &str, format: &str) -> Result<(), String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let share = setup.config.budgets.price_share_warn_percent;
    let report = crate::budgets::report::client_report(&store, id, month, share)?;
    match format {
        "json" => output::say_json(&report),
        "csv" => {
            output::say(crate::budgets::report::to_csv(&report).trim_end());
            Ok(())
        }
        "md" | "markdown" => {
            output::say(crate::budgets::report::to_markdown(&report).trim_end());
            Ok(())
        }
        other => Err(format!(
            "--format {other} is not a report format; use md, csv or json"
        )),
    }
}
