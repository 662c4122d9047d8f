//! Wall-clock helpers. Times are stored as unix milliseconds, months as `YYYY-MM` (UTC).

use chrono::{TimeZone, Utc};

/// Milliseconds since the unix epoch, UTC.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The budget month (`YYYY-MM`, UTC) that a moment belongs to.
pub fn month_of(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m").to_string(),
        None => "1970-01".to_string(),
    }
}

/// The current budget month.
pub fn current_month() -> String {
    month_of(now_ms())
}

/// A short UTC timestamp for operators: `2026-11-21 12:04:05`.
pub fn format_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_boundaries_are_utc() {
        // 2026-11-30T23:59:59.999Z and one millisecond later
        assert_eq!(month_of(1_796_083_199_999), "2026-11");
        assert_eq!(month_of(1_796_083_200_000), "2026-12");
    }
}
