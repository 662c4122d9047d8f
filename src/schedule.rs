//! The daily loop: at each slot of a cron expression (default `0 9 * * *`) in a configured
//! time zone, the tasks queued for it (`ecca run --queue`) are started.
//!
//! A slot is claimed in the store before its work starts, so it never runs twice, also
//! across restarts; a crash between the claim and the work leaves the tasks queued for the
//! next slot, never lost. After downtime the loop catches up once per missed day (the last
//! missed slot of each local day), for at most [`CATCH_UP_DAYS`] days. The first time the
//! loop runs on a store, slots before that moment are not owed.

use crate::store::{Store, WriteOp};
use crate::supervisor::{Supervisor, SupervisorError};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Missed days older than this are not caught up (their slots are recorded as skipped).
pub const CATCH_UP_DAYS: i64 = 7;
/// The loop looks at the clock at least this often, so a clock that jumps is noticed.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// A cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expression: String,
}

impl Schedule {
    /// Parses `expression` (five fields, or an alias such as `@daily`) in the IANA zone
    /// `time_zone`; the error says which was wrong and what to write.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Schedule, String> {
        let cron = Cron::from_str(expression).map_err(|e| {
            format!("the schedule {expression:?} is not a cron expression ({e}); write five fields such as \"0 9 * * *\" (09:00 every day)")
        })?;
        let tz: Tz = time_zone.parse().map_err(|_| {
            format!("the time zone {time_zone:?} is not known; give an IANA name such as \"Europe/Berlin\" or \"UTC\"")
        })?;
        Ok(Schedule {
            cron,
            tz,
            expression: expression.to_string(),
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn time_zone(&self) -> &str {
        self.tz.name()
    }

    /// The first slot strictly after `after_ms` (UTC ms).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let at = self.tz.timestamp_millis_opt(after_ms).single()?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The latest slot at or before `at_ms`.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let at = self.tz.timestamp_millis_opt(at_ms).single()?;
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// Slots in `(after_ms, until_ms]`, oldest first, at most `limit` (the newest kept).
    pub fn slots_between(&self, after_ms: i64, until_ms: i64, limit: usize) -> Vec<i64> {
        let mut slots = std::collections::VecDeque::new();
        let mut cursor = after_ms;
        while let Some(next) = self.next_after(cursor).filter(|n| *n <= until_ms) {
            slots.push_back(next);
            if slots.len() > limit {
                slots.pop_front();
            }
            cursor = next;
        }
        slots.into()
    }

    /// The local date of a slot, to count missed days.
    pub fn local_day(&self, at_ms: i64) -> Option<chrono::NaiveDate> {
        self.tz
            .timestamp_millis_opt(at_ms)
            .single()
            .map(|t| t.date_naive())
    }

    /// A slot as the operator reads it: `Mon 09:00 Europe/Berlin`.
    pub fn describe(&self, at_ms: i64) -> String {
        match self.tz.timestamp_millis_opt(at_ms).single() {
            Some(t) => format!("{} {}", t.format("%a %H:%M"), self.tz.name()),
            None => "-".into(),
        }
    }
}

/// What a look at the clock decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Slots claimed and worked (one per missed day when catching up).
    pub ran: Vec<i64>,
    /// Slots claimed without work: more than one in a day, or older than the catch-up.
    pub skipped: Vec<i64>,
    /// Tasks started.
    pub started: Vec<String>,
}

/// The slots owed since `last` (the latest claimed, or None on a store the loop never ran
/// on): those to run, one per local day within the catch-up, and those only to record.
pub fn owed(schedule: &Schedule, last: Option<i64>, now_ms: i64) -> (Vec<i64>, Vec<i64>) {
    let Some(last) = last else {
        // First look on this store: the latest slot already past is the baseline, owed
        // nothing.
        return (vec![], vec![]);
    };
    let slots = schedule.slots_between(last, now_ms, 10_000);
    let (mut run, mut skip) = (Vec::new(), Vec::new());
    for (i, slot) in slots.iter().enumerate() {
        let day = schedule.local_day(*slot);
        let last_of_its_day = slots
            .get(i + 1)
            .is_none_or(|next| schedule.local_day(*next) != day);
        if last_of_its_day {
            run.push(*slot);
        } else {
            skip.push(*slot);
        }
    }
    // Only the newest days are worked; the older ones are recorded as skipped.
    let excess = run.len().saturating_sub(CATCH_UP_DAYS as usize);
    skip.extend(run.drain(..excess));
    skip.sort_unstable();
    (run, skip)
}

/// One look at the clock: claims the slots owed, then starts the queued tasks once if any
/// slot is to run.
pub async fn tick(
    sup: &Supervisor,
    schedule: &Schedule,
    now_ms: i64,
) -> Result<Tick, SupervisorError> {
    let store: &Store = sup.store();
    let last = store.last_schedule_slot()?;
    if last.is_none() {
        // The baseline: the latest slot at or before now, claimed with no work.
        let baseline = schedule.latest_at_or_before(now_ms).unwrap_or(now_ms);
        store
            .write(vec![WriteOp::ScheduleSlots(vec![(
                baseline,
                now_ms,
                "the loop's first look at this store: nothing owed before it".into(),
            )])])
            .await?;
        return Ok(Tick {
            ran: vec![],
            skipped: vec![],
            started: vec![],
        });
    }
    let (ran, skipped) = owed(schedule, last, now_ms);
    if ran.is_empty() && skipped.is_empty() {
        return Ok(Tick {
            ran,
            skipped,
            started: vec![],
        });
    }
    let catching_up = ran.len() > 1 || ran.first().is_some_and(|s| now_ms - s > 60_000 * 5);
    let mut claims: Vec<(i64, i64, String)> = skipped
        .iter()
        .map(|s| {
            (
                *s,
                now_ms,
                "skipped: another slot of its day ran, or older than the catch-up".to_string(),
            )
        })
        .collect();
    claims.extend(ran.iter().map(|s| {
        let note = if catching_up {
            "caught up after downtime"
        } else {
            "on time"
        };
        (*s, now_ms, note.to_string())
    }));
    // Claimed before any work: a crash after this leaves the tasks queued, never run twice.
    store.write(vec![WriteOp::ScheduleSlots(claims)]).await?;
    let mut started = Vec::new();
    for slot in &ran {
        let now_started = sup.start_queued().await?;
        store
            .write(vec![WriteOp::ScheduleStarted {
                slot_at: *slot,
                started: now_started.len() as i64,
            }])
            .await?;
        started.extend(now_started);
    }
    tracing::info!(
        ran = ran.len(),
        skipped = skipped.len(),
        started = started.len(),
        "daily loop"
    );
    Ok(Tick {
        ran,
        skipped,
        started,
    })
}

/// Milliseconds since the epoch, injectable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Looks at the clock at every slot (and at least every minute) until `stop`.
pub async fn run(
    sup: Supervisor,
    schedule: Schedule,
    clock: Clock,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let now = clock();
        if let Err(e) = tick(&sup, &schedule, now).await {
            tracing::warn!(error = %e.0, "the daily loop could not look at its slots");
        }
        let wait = schedule
            .next_after(now)
            .map(|next| Duration::from_millis((next - now).max(0) as u64 + 50))
            .unwrap_or(LOOK_EVERY)
            .min(LOOK_EVERY);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// UTC milliseconds of a date and time, for tests and docs.
pub fn utc_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .map(|t: DateTime<Utc>| t.timestamp_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_in_new_york_follows_daylight_saving() {
        let s = Schedule::parse("0 9 * * *", "America/New_York").unwrap();
        // Winter: UTC-5; summer: UTC-4.
        assert_eq!(
            s.next_after(utc_ms(2026, 1, 15, 0, 0)),
            Some(utc_ms(2026, 1, 15, 14, 0))
        );
        assert_eq!(
            s.next_after(utc_ms(2026, 7, 15, 0, 0)),
            Some(utc_ms(2026, 7, 15, 13, 0))
        );
        // Across the spring change (8 March 2026): the next 09:00 is an hour earlier in UTC.
        assert_eq!(
            s.next_after(utc_ms(2026, 3, 7, 15, 0)),
            Some(utc_ms(2026, 3, 8, 13, 0))
        );
        assert_eq!(
            s.describe(utc_ms(2026, 3, 8, 13, 0)),
            "Sun 09:00 America/New_York"
        );
    }

    #[test]
    fn a_slot_in_the_spring_gap_runs_once_after_it_and_once_in_the_autumn_overlap() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        // 29 March 2026: 02:00 → 03:00 local; 02:30 does not exist, the slot is 03:00 CEST
        // (01:00 UTC), and there is exactly one that day.
        let day = s.slots_between(utc_ms(2026, 3, 28, 22, 0), utc_ms(2026, 3, 29, 22, 0), 10);
        assert_eq!(day, vec![utc_ms(2026, 3, 29, 1, 0)]);
        // 25 October 2026: 02:30 happens twice; the slot runs once.
        let day = s.slots_between(utc_ms(2026, 10, 24, 22, 0), utc_ms(2026, 10, 25, 23, 0), 10);
        assert_eq!(day.len(), 1, "{day:?}");
    }

    #[test]
    fn missed_days_are_owed_once_each_within_the_catch_up() {
        let s = Schedule::parse("0 9,17 * * *", "UTC").unwrap();
        let last = utc_ms(2026, 11, 16, 9, 0);
        let now = utc_ms(2026, 11, 18, 12, 0);
        let (run, skip) = owed(&s, Some(last), now);
        // 16th 17:00 (its day's last), 17th 17:00, 18th 09:00; the 17th's 09:00 is skipped.
        assert_eq!(
            run,
            vec![
                utc_ms(2026, 11, 16, 17, 0),
                utc_ms(2026, 11, 17, 17, 0),
                utc_ms(2026, 11, 18, 9, 0)
            ]
        );
        assert_eq!(skip, vec![utc_ms(2026, 11, 17, 9, 0)]);
        // Thirty days down: only the last seven are worked.
        let (run, skip) = owed(&s, Some(last), utc_ms(2026, 12, 16, 12, 0));
        assert_eq!(run.len() as i64, CATCH_UP_DAYS);
        assert!(skip.len() > 40);
        assert_eq!(owed(&s, None, now), (vec![], vec![]));
    }

    #[test]
    fn bad_expressions_and_zones_say_what_to_write() {
        let e = Schedule::parse("9am daily", "UTC").unwrap_err();
        assert!(e.contains("0 9 * * *"), "{e}");
        let e = Schedule::parse("0 9 * * *", "Mars/Olympus").unwrap_err();
        assert!(e.contains("IANA"), "{e}");
    }
}
