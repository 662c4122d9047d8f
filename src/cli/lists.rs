//! `ecca tasks` and `ecca clients`.

use super::{Setup, output};
use crate::money::{format_usd, usd_to_micros};
use crate::store::Store;

pub(super) fn tasks(setup: &Setup, json: bool, limit: usize) -> Result<(), String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let tasks = store.tasks(limit).map_err(|e| e.0)?;
    if json {
        return output::say_json(&tasks);
    }
    if tasks.is_empty() {
        output::say(
            "no tasks yet; start one with: ecca run --task \"Write a Python hello world\" --dry-run",
        );
        return Ok(());
    }
    output::say(&format!(
        "{:<8} {:<10} {:<18} {:>5} {:>7} {:>14}  TITLE",
        "TASK", "CLIENT", "STATUS", "ITER", "SCORE", "COST"
    ));
    let any_simulated = tasks.iter().any(|t| t.model_mode == "offline");
    for t in &tasks {
        let simulated = if t.model_mode == "offline" { "*" } else { " " };
        let estimated = if t.cost_estimated { "~" } else { "" };
        output::say(&format!(
            "{:<8} {:<10} {:<18} {:>5} {:>7} {:>13}{simulated}  {}",
            t.id,
            truncate(&t.client_id, 10),
            t.status.as_str(),
            t.iterations,
            t.quality_score
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "-".into()),
            format!("{estimated}{}", format_usd(t.cost_micros)),
            truncate(&t.title, 60)
        ));
    }
    if any_simulated {
        output::say("* simulated cost: the offline model made no real calls");
    }
    if tasks.iter().any(|t| t.cost_estimated) {
        output::say(
            "~ estimated cost: a provider reported no usage, so ecca priced what it sent and received",
        );
    }
    Ok(())
}

pub(super) fn clients(setup: &Setup, json: bool) -> Result<(), String> {
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let month = crate::time::current_month();
    let clients = store.clients_with_spend(&month).map_err(|e| e.0)?;
    if json {
        return output::say_json(&clients);
    }
    if clients.is_empty() {
        output::say(
            "no clients yet; add one with: ecca clients add acme --name \"Acme Ltd\" --budget-usd 2000",
        );
        return Ok(());
    }
    let inputs = crate::budgets::month::MonthInputs {
        month: &month,
        now_ms: crate::time::now_ms(),
        // Reservations live in the process whose runs hold them; none are held here.
        reserved: &|_| 0,
        price_share_warn_percent: setup.config.budgets.price_share_warn_percent,
    };
    let months = crate::budgets::month::client_months(&store, &inputs, None).map_err(|e| e.0)?;
    output::say(&format!(
        "{:<12} {:<20} {:>14} {:>14} {:>14} {:>6} {:>14} {:>14}  {month}",
        "CLIENT", "NAME", "SPENT", "SIMULATED", "CAP", "USED", "REVENUE", "MARGIN"
    ));
    let opt = |m: Option<crate::money::Micros>| m.map(format_usd).unwrap_or_else(|| "-".into());
    for c in &months {
        let used = format!(
            "{}%{}",
            c.percent_of_cap(),
            if c.capped() {
                "!!"
            } else if c.warned() {
                "!"
            } else {
                ""
            }
        );
        output::say(&format!(
            "{:<12} {:<20} {:>14} {:>14} {:>14} {:>6} {:>14} {:>14}",
            truncate(&c.client_id, 12),
            truncate(&c.name, 20),
            format_usd(c.spent_real_micros),
            format_usd(c.spent_simulated_micros),
            format_usd(c.cap_micros),
            used,
            opt(c.revenue_micros),
            opt(c.margin_micros),
        ));
    }
    if months.iter().any(|c| c.warned()) {
        output::say(&format!(
            "! at {}% of the month's cap or more; !! at the cap: new calls are refused and runs pause (`ecca clients cap ID AMOUNT --note …` raises it)",
            crate::budgets::WARN_PERCENT
        ));
    }
    Ok(())
}

pub(super) async fn add_client(
    setup: &Setup,
    id: &str,
    name: &str,
    budget_usd: f64,
) -> Result<(), String> {
    let budget = usd_to_micros(budget_usd).map_err(|e| format!("--budget-usd: {e}"))?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let existed = crate::supervisor::save_client(&store, id, name, budget)
        .await
        .map_err(|e| e.0)?;
    output::say(&format!(
        "{} client {id} ({}) with a monthly budget of {}",
        if existed { "updated" } else { "added" },
        name.trim(),
        format_usd(budget)
    ));
    Ok(())
}

/// `s` on one line, control sequences removed, cut to `max` characters.
pub(super) fn truncate(s: &str, max: usize) -> String {
    let s = output::one_line(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `ecca clients token`: the client's repository and, when given, its token.
pub(super) fn client_token(
    setup: &Setup,
    id: &str,
    from_env: Option<&str>,
    repo: Option<&str>,
) -> Result<(), String> {
    let repo = repo.map(str::trim).filter(|r| !r.is_empty());
    if let Some(url) = repo {
        crate::secrets::check_repo_url(url)?;
    }
    match from_env {
        Some(var) => {
            let token = std::env::var(var)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    format!(
                        "the environment variable {var} is not set; export the token in it first"
                    )
                })?;
            crate::secrets::set_github_token(&setup.data_dir, id, token.trim(), repo)?;
            output::say(&format!(
                "stored the GitHub token of {id} encrypted ({}){}",
                crate::secrets::mask(token.trim()),
                repo.map(|r| format!(" and its repository {r}"))
                    .unwrap_or_default()
            ));
        }
        None => {
            let url = repo.ok_or(
                "say what to store: --repo URL for a public or local repository, and --from-env VAR for the token of a private one",
            )?;
            crate::secrets::set_repo(&setup.data_dir, id, url)?;
            output::say(&format!(
                "stored the repository of {id}: {url} (no token: pushes go without one and no pull request is opened)"
            ));
        }
    }
    Ok(())
}
