//! Reading the structured output of the coding agents ecca runs as subprocesses — Claude
//! Code (`stream-json`), Codex CLI (`exec --json` plus its session rollout file) and Aider
//! (plain stdout plus its analytics log) — into one event vocabulary, [`AgentEvent`], so that
//! every model call lands in the ledger and every run is judged from what the agent wrote
//! rather than from its exit code.

pub mod aider;
pub mod claude;
pub mod codex;
pub mod events;
pub mod output;
pub mod process;
pub mod registry;

pub use aider::{AiderAnalytics, AiderStdout};
pub use claude::ClaudeStream;
pub use codex::{CodexStream, calls_from_rollout, find_rollout_file, rollout_model};
pub use events::{AgentEvent, AgentOutcome, CallUsage, ModelTotal, StreamParser, parse_all};

use crate::money::{Micros, Usage, usd_to_micros};
use serde_json::Value;
use std::path::Path;

/// Longest one-line summary shown for a tool call; longer ones are cut with an ellipsis.
const SUMMARY_MAX_CHARS: usize = 160;
/// Longest error or final message kept in an outcome's reason.
const REASON_MAX_CHARS: usize = 1000;

/// `path` relative to `cwd` when it lies under it, else unchanged, so edits read as
/// repository paths (`src/main.rs`) rather than machine-specific absolute ones.
pub(crate) fn relative_path(cwd: Option<&str>, path: &str) -> String {
    if let Some(cwd) = cwd.filter(|c| !c.is_empty())
        && let Ok(rel) = Path::new(path).strip_prefix(cwd)
        && !rel.as_os_str().is_empty()
    {
        return rel.to_string_lossy().into_owned();
    }
    path.to_string()
}

/// The first line of `text`, cut to a length that fits a status line.
pub(crate) fn one_line(text: &str) -> String {
    first_line_cut(text, SUMMARY_MAX_CHARS)
}

/// The first line of an agent's message for an outcome's reason: whole unless absurdly long,
/// since the operator acts on it.
pub(crate) fn reason_line(text: &str) -> String {
    first_line_cut(text, REASON_MAX_CHARS)
}

fn first_line_cut(text: &str, max_chars: usize) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    if first.chars().count() <= max_chars {
        return first.to_string();
    }
    let mut cut: String = first.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}

/// A dollar amount an agent reported as a JSON number, in micro-dollars rounded to the
/// nearest micro (0.046278 is 46277.999… micros as a float). `None` if absent or unusable.
pub(crate) fn usd_field(value: &Value) -> Option<Micros> {
    value.as_f64().and_then(|usd| usd_to_micros(usd).ok())
}

/// One line of an agent's JSON output as an object, or `None` (counted in `malformed`)
/// when it is not one: an agent's output is not ours to trust.
pub(crate) fn json_object(line: &str, malformed: &mut usize) -> Option<Value> {
    match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => {
            *malformed += 1;
            None
        }
    }
}

/// A token count field; absent, negative or non-numeric counts as zero.
pub(crate) fn tokens(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A string field, if present.
pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Field-by-field sum.
pub(crate) fn add_usage(a: &Usage, b: &Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens + b.input_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        cache_write_tokens: a.cache_write_tokens + b.cache_write_tokens,
        cache_read_tokens: a.cache_read_tokens + b.cache_read_tokens,
    }
}

/// Field-by-field `a - b`, floored at zero.
pub(crate) fn saturating_sub_usage(a: &Usage, b: &Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.saturating_sub(b.input_tokens),
        output_tokens: a.output_tokens.saturating_sub(b.output_tokens),
        cache_write_tokens: a.cache_write_tokens.saturating_sub(b.cache_write_tokens),
        cache_read_tokens: a.cache_read_tokens.saturating_sub(b.cache_read_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_cwd_become_relative() {
        assert_eq!(
            relative_path(Some("/w/repo"), "/w/repo/src/a.rs"),
            "src/a.rs"
        );
        assert_eq!(relative_path(Some("/w/repo/"), "/w/repo/a.rs"), "a.rs");
        assert_eq!(
            relative_path(Some("/w/repo"), "/w/repo2/a.rs"),
            "/w/repo2/a.rs"
        );
        assert_eq!(relative_path(None, "/w/a.rs"), "/w/a.rs");
        assert_eq!(relative_path(Some("/w/repo"), "/w/repo"), "/w/repo");
    }

    #[test]
    fn dollars_round_to_the_nearest_micro() {
        assert_eq!(usd_field(&serde_json::json!(0.046278)), Some(46_278));
        assert_eq!(
            usd_field(&serde_json::json!(0.036729250000000005)),
            Some(36_729)
        );
        assert_eq!(usd_field(&serde_json::json!(0.0277668)), Some(27_767));
        assert_eq!(usd_field(&serde_json::json!(0)), Some(0));
        assert_eq!(usd_field(&serde_json::json!(-1.0)), None);
        assert_eq!(usd_field(&serde_json::json!("0.5")), None);
    }

    #[test]
    fn summaries_keep_one_short_line() {
        assert_eq!(one_line("ls -la\necho hi"), "ls -la");
        let long = "x".repeat(400);
        assert_eq!(one_line(&long).chars().count(), SUMMARY_MAX_CHARS);
        assert!(one_line(&long).ends_with('…'));
    }
}
