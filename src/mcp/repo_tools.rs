//! The engine's repository requests as MCP tool calls. Every path a run names is relative
//! to its worktree; the servers are confined to the worktrees directory, so paths go out
//! prefixed with the worktree's name and come back with it taken off.

use crate::engine::tools::{ExecReport, ToolReply, ToolRequest};
use crate::repo::{CheckOutcome, CheckStatus};
use serde_json::{Value, json};

/// The tool and arguments for a repository request; None for other requests.
pub fn plan(request: &ToolRequest) -> Option<Result<(&'static str, Value), String>> {
    Some(Ok(match request {
        ToolRequest::RepoStructure { worktree } => ("get_structure", json!({ "path": worktree })),
        ToolRequest::SearchCode {
            worktree,
            pattern,
            max_results,
        } => (
            "search_code",
            json!({"pattern": pattern, "path": worktree, "max_results": max_results}),
        ),
        ToolRequest::ReadFile { worktree, path } => {
            ("read_file", json!({ "path": format!("{worktree}/{path}") }))
        }
        ToolRequest::ApplyDiff { worktree, diff } => {
            return Some(
                prefix_diff_paths(diff, worktree).map(|d| ("apply_diff", json!({ "diff": d }))),
            );
        }
        ToolRequest::RunCheck {
            worktree,
            command,
            timeout_secs,
            ..
        } => (
            "run_in_repo",
            json!({"worktree": worktree, "command": command, "timeout_secs": timeout_secs}),
        ),
        _ => return None,
    }))
}

/// Reads a repository request's reply; None for other requests.
pub fn reply(request: &ToolRequest, v: &Value) -> Option<Result<ToolReply, String>> {
    let strip = |worktree: &str, p: &str| -> String {
        p.strip_prefix(worktree)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(p)
            .to_string()
    };
    Some(Ok(match request {
        ToolRequest::RepoStructure { worktree } => {
            let mut text = String::new();
            for f in v["files"].as_array().into_iter().flatten() {
                let symbols: Vec<&str> = f["symbols"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                text.push_str(&format!(
                    "{} ({} lines){}{}\n",
                    strip(worktree, f["path"].as_str().unwrap_or("")),
                    f["lines"].as_u64().unwrap_or(0),
                    if symbols.is_empty() { "" } else { ": " },
                    symbols.join(", ")
                ));
            }
            ToolReply::Text {
                text,
                truncated: false,
            }
        }
        ToolRequest::SearchCode { worktree, .. } => {
            let mut text = String::new();
            for m in v["matches"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "{}:{}: {}\n",
                    strip(worktree, m["path"].as_str().unwrap_or("")),
                    m["line"].as_u64().unwrap_or(0),
                    m["text"].as_str().unwrap_or("").trim_end()
                ));
            }
            ToolReply::Text {
                text,
                truncated: v["truncated"].as_bool().unwrap_or(false),
            }
        }
        ToolRequest::ReadFile { .. } => ToolReply::Text {
            text: v["content"].as_str().unwrap_or("").to_string(),
            truncated: v["truncated"].as_bool().unwrap_or(false),
        },
        ToolRequest::ApplyDiff { worktree, .. } => ToolReply::Applied {
            files: v["files"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| strip(worktree, f["path"].as_str().unwrap_or("")))
                .collect(),
        },
        ToolRequest::RunCheck { kind, command, .. } => {
            let report: ExecReport = match serde_json::from_value(v.clone()) {
                Ok(r) => r,
                Err(e) => {
                    return Some(Err(format!(
                        "the code-execution server's reply to run_in_repo could not be read: {e}"
                    )));
                }
            };
            ToolReply::Check(classify(kind, command, &report))
        }
        _ => return None,
    }))
}

/// A check's report as an outcome: what could not run is skipped with the reason.
fn classify(kind: &str, command: &str, report: &ExecReport) -> CheckOutcome {
    crate::repo::checks::classify(kind, command, report)
}

/// A check that could not be asked for (no server, the server down) as a skipped outcome.
pub fn skipped_check(kind: &str, command: &str, reason: &str) -> CheckOutcome {
    CheckOutcome {
        kind: kind.to_string(),
        command: command.to_string(),
        status: CheckStatus::Skipped,
        reason: reason.to_string(),
        output: String::new(),
        duration_ms: 0,
    }
}

/// Puts every path of a unified diff's headers under `prefix/`; `/dev/null` stays.
/// A header whose path climbs out (`..`) or is absolute is refused here already. Hunk
/// bodies are skipped by their line counts, so a removed line that reads `-- x` is never
/// taken for a header.
pub fn prefix_diff_paths(diff: &str, prefix: &str) -> Result<String, String> {
    let mut out = String::with_capacity(diff.len() + 64);
    let (mut old_left, mut new_left) = (0u64, 0u64);
    for line in diff.split_inclusive('\n') {
        if old_left > 0 || new_left > 0 {
            match line.as_bytes().first() {
                Some(b'-') => old_left = old_left.saturating_sub(1),
                Some(b'+') => new_left = new_left.saturating_sub(1),
                Some(b'\\') => {}
                _ => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
            }
            out.push_str(line);
            continue;
        }
        if let Some((o, n)) = hunk_counts(line) {
            old_left = o;
            new_left = n;
            out.push_str(line);
            continue;
        }
        let header = ["--- ", "+++ "].into_iter().find(|h| line.starts_with(h));
        let Some(h) = header else {
            out.push_str(line);
            continue;
        };
        let rest = line[h.len()..].trim_end_matches(['\n', '\r']);
        // A timestamp after a tab is allowed by the format; keep only the path.
        let path = rest.split('\t').next().unwrap_or("").trim();
        if path == "/dev/null" {
            out.push_str(line);
            continue;
        }
        let (side, bare) = match path.split_once('/') {
            Some((s @ ("a" | "b"), p)) => (format!("{s}/"), p),
            _ => (String::new(), path),
        };
        if bare.is_empty() || bare.starts_with('/') || bare.split('/').any(|c| c == "..") {
            return Err(format!(
                "the diff names {path:?}, which is not a path inside the repository; paths must be relative to its root"
            ));
        }
        out.push_str(&format!("{h}{side}{prefix}/{bare}\n"));
    }
    Ok(out)
}

/// The old and new line counts of a hunk header `@@ -a,b +c,d @@`.
fn hunk_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let count = |r: &str| -> Option<u64> {
        match r.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => r.parse::<u64>().ok().map(|_| 1),
        }
    };
    Some((count(old)?, count(new)?))
}

#[cfg(test)]
mod tests {
    use super::prefix_diff_paths;

    #[test]
    fn diff_paths_go_under_the_worktree() {
        let diff = "--- a/greet/cli.py\n+++ b/greet/cli.py\n@@ -1 +1 @@\n-x\n+y\n--- /dev/null\n+++ b/tests/test_new.py\n@@ -0,0 +1 @@\n+z\n";
        let got = prefix_diff_paths(diff, "T-0001-r1").unwrap();
        assert!(got.contains("--- a/T-0001-r1/greet/cli.py\n+++ b/T-0001-r1/greet/cli.py\n"));
        assert!(got.contains("--- /dev/null\n+++ b/T-0001-r1/tests/test_new.py\n"));
        assert!(got.contains("\n-x\n+y\n"));
        assert!(prefix_diff_paths("--- a/../x\n+++ b/../x\n", "T").is_err());
        // A removed line reading "-- note" is hunk body, not a header.
        let sql = "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,1 @@\n--- note\n select 1;\n";
        assert_eq!(
            prefix_diff_paths(sql, "W").unwrap(),
            "--- a/W/q.sql\n+++ b/W/q.sql\n@@ -1,2 +1,1 @@\n--- note\n select 1;\n"
        );
    }
}
