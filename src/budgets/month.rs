//! Computes [`ClientMonth`] for every client from the store's aggregates and the ledger's
//! live reservations: three queries for all clients, the rest in memory.

use super::{ClientMonth, ModelSpend, PausedRun, TaskMonth};
use crate::domain::TaskStatus;
use crate::money::Micros;
use crate::store::{CostGroup, MonthTask, Store, StoreError};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;
/// Days the burn rate averages over.
const BURN_DAYS: i64 = 7;

/// The first millisecond of `month` (`YYYY-MM`) and of the month after, UTC.
pub fn month_bounds(month: &str) -> Result<(i64, i64), String> {
    let bad = || format!("{month:?} is not a month; write it as YYYY-MM, e.g. 2026-11");
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
            .ok_or_else(bad)
    };
    Ok((ms(first)?, ms(next)?))
}

fn day_text(day: i64) -> String {
    match Utc.timestamp_millis_opt(day * DAY_MS).single() {
        Some(t) => format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
        None => "-".into(),
    }
}

/// What the month figures need besides the store.
pub struct MonthInputs<'a> {
    pub month: &'a str,
    /// "Now", for the burn rate and the projection (a fixed value in tests).
    pub now_ms: i64,
    /// Held by the client's calls in flight (the ledger's reservations).
    pub reserved: &'a dyn Fn(&str) -> Micros,
    /// A priced task spending past this share of its price is flagged.
    pub price_share_warn_percent: u32,
}

/// Every client's month (or one client's), in client id order.
pub fn client_months(
    store: &Store,
    inputs: &MonthInputs<'_>,
    only_client: Option<&str>,
) -> Result<Vec<ClientMonth>, StoreError> {
    let (from, to) = month_bounds(inputs.month).map_err(StoreError)?;
    let clients = store.clients_with_spend(inputs.month)?;
    let retainers: BTreeMap<String, Micros> = store.retainers()?.into_iter().collect();
    let groups = store.month_cost_groups(inputs.month, only_client)?;
    let mut paused: BTreeMap<String, Vec<PausedRun>> = BTreeMap::new();
    for (client, task_id, run_id, reason) in store.paused_runs()? {
        paused.entry(client).or_default().push(PausedRun {
            task_id,
            run_id,
            reason,
        });
    }
    let tasks = store.month_tasks(inputs.month, from, to, only_client)?;
    let mut groups_by_client: BTreeMap<&str, Vec<&CostGroup>> = BTreeMap::new();
    for g in &groups {
        groups_by_client.entry(&g.client_id).or_default().push(g);
    }
    let mut tasks_by_client: BTreeMap<&str, Vec<&MonthTask>> = BTreeMap::new();
    for t in &tasks {
        tasks_by_client.entry(&t.client_id).or_default().push(t);
    }
    let mut out = Vec::new();
    for c in clients {
        let id = c.client.id.as_str();
        if only_client.is_some_and(|o| o != id) {
            continue;
        }
        let groups = groups_by_client.remove(id).unwrap_or_default();
        let tasks = tasks_by_client.remove(id).unwrap_or_default();
        out.push(one_client(
            paused.remove(id).unwrap_or_default(),
            inputs,
            (from, to),
            &c.client,
            retainers.get(id).copied(),
            &groups,
            &tasks,
        ));
    }
    Ok(out)
}

fn one_client(
    paused: Vec<PausedRun>,
    inputs: &MonthInputs<'_>,
    (from, to): (i64, i64),
    client: &crate::store::ClientRecord,
    retainer: Option<Micros>,
    groups: &[&CostGroup],
    tasks: &[&MonthTask],
) -> ClientMonth {
    let mut real = 0;
    let mut simulated = 0;
    let mut by_model: BTreeMap<(String, bool), ModelSpend> = BTreeMap::new();
    let mut by_task: BTreeMap<&str, (Micros, bool)> = BTreeMap::new();
    let now_day = inputs.now_ms.div_euclid(DAY_MS);
    let mut burn_window = 0;
    for g in groups {
        if g.simulated {
            simulated += g.cost_micros;
        } else {
            real += g.cost_micros;
            if g.day > now_day - BURN_DAYS && g.day <= now_day {
                burn_window += g.cost_micros;
            }
        }
        let m = by_model
            .entry((g.model.clone(), g.simulated))
            .or_insert_with(|| ModelSpend {
                model: g.model.clone(),
                simulated: g.simulated,
                calls: 0,
                input_tokens: 0,
                output_tokens: 0,
                cost_micros: 0,
            });
        m.calls += g.calls;
        m.input_tokens += g.input_tokens;
        m.output_tokens += g.output_tokens;
        m.cost_micros += g.cost_micros;
        let t = by_task.entry(&g.task_id).or_insert((0, true));
        t.0 += g.cost_micros;
        t.1 &= g.simulated;
    }
    // The window is the last 7 days, or fewer when the month started less than 7 days ago.
    let month_first_day = from.div_euclid(DAY_MS);
    let days_in_window = (now_day - month_first_day + 1).clamp(1, BURN_DAYS);
    let burn = burn_window / days_in_window;
    let last_day = (to - 1).div_euclid(DAY_MS);
    let in_month = inputs.now_ms >= from && inputs.now_ms < to;
    let days_left = if in_month { last_day - now_day } else { 0 };
    let projected = real + burn * days_left.max(0);
    let charged = real + simulated;
    let cap_reached_on = if charged >= client.monthly_budget_micros {
        None
    } else if burn > 0 && in_month {
        let days = (client.monthly_budget_micros - charged + burn - 1) / burn;
        let day = now_day + days;
        (day <= last_day).then(|| day_text(day))
    } else {
        None
    };
    let mut task_rows = Vec::new();
    let mut approved = 0;
    let mut priced = 0;
    for t in tasks {
        let (cost, sim) = by_task
            .get(t.task_id.as_str())
            .copied()
            .unwrap_or((0, false));
        let status = TaskStatus::parse(&t.status).unwrap_or(TaskStatus::Pending);
        if status == TaskStatus::Delivered {
            approved += 1;
        }
        if let Some(p) = t.price_micros {
            priced += p;
        }
        let over = t.price_micros.is_some_and(|p| {
            p > 0 && (cost as i128) * 100 > (p as i128) * inputs.price_share_warn_percent as i128
        });
        task_rows.push(TaskMonth {
            task_id: t.task_id.clone(),
            title: t.title.clone(),
            status,
            attempts: t.attempts,
            cost_micros: cost,
            simulated: sim && cost > 0,
            budget_micros: t.budget_micros,
            price_micros: t.price_micros,
            over_price_share: over,
        });
    }
    let has_price = tasks.iter().any(|t| t.price_micros.is_some());
    let revenue = match (retainer, has_price) {
        (None, false) => None,
        (r, _) => Some(r.unwrap_or(0) + priced),
    };
    let mut by_model: Vec<ModelSpend> = by_model.into_values().collect();
    by_model.sort_by(|a, b| {
        b.cost_micros
            .cmp(&a.cost_micros)
            .then(a.model.cmp(&b.model))
    });
    ClientMonth {
        client_id: client.id.clone(),
        name: client.name.clone(),
        month: inputs.month.to_string(),
        cap_micros: client.monthly_budget_micros,
        spent_real_micros: real,
        spent_simulated_micros: simulated,
        reserved_micros: (inputs.reserved)(&client.id),
        burn_per_day_micros: burn,
        projected_month_micros: projected,
        cap_reached_on,
        retainer_micros: retainer,
        revenue_micros: revenue,
        margin_micros: revenue.map(|r| r - real),
        cost_per_approved_micros: (approved > 0).then(|| real / approved),
        paused,
        tasks: task_rows,
        by_model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_are_utc_and_wrap_the_year() {
        let (a, b) = month_bounds("2026-12").unwrap();
        assert_eq!(crate::time::month_of(a), "2026-12");
        assert_eq!(crate::time::month_of(a - 1), "2026-11");
        assert_eq!(crate::time::month_of(b), "2027-01");
        assert_eq!(crate::time::month_of(b - 1), "2026-12");
        assert!(month_bounds("2026-13").is_err());
        assert!(month_bounds("26-11").is_err());
        assert!(month_bounds("november").unwrap_err().contains("YYYY-MM"));
    }
}
