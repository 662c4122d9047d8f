//! Codex CLI's `codex exec --json` output, and its session rollout file.
//!
//! The JSON stream reports usage once per turn (`turn.completed`), summed over the turn's
//! model calls, and never in dollars. The rollout file
//! (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*-<thread_id>.jsonl`) has the per-call numbers,
//! so once Codex has moved past a turn (the file then holds its last call) the turn becomes
//! one ledger row per model call, or one aggregated row when the file does not add up.
//!
//! Token mapping (OpenAI Responses semantics, confirmed by the recorded run, where
//! `total_tokens` = `input_tokens` + `output_tokens`): `input_tokens` is the whole prompt and
//! already contains `cached_input_tokens` (read from cache) and `cache_write_input_tokens`
//! (written to cache); `output_tokens` already contains `reasoning_output_tokens`. The ledger's
//! four counts are disjoint, so: cache_read = cached, cache_write = cache_write, input =
//! input − cached − cache_write (floored at zero), output = output_tokens. The four then sum
//! to `total_tokens`.

use super::events::{AgentEvent, AgentOutcome, CallUsage, Emitter, ModelTotal, StreamParser};
use super::{add_usage, json_object, one_line, reason_line, relative_path, str_field, tokens};
use crate::money::Usage;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Parser state for one `codex exec --json` run.
#[derive(Debug)]
pub struct CodexStream {
    emit: Emitter,
    /// The model ecca configured; the stream never names it.
    model: String,
    cwd: Option<String>,
    finished: bool,
    malformed: usize,
    turns_completed: usize,
    total: Usage,
    last_message: Option<String>,
    last_error: Option<String>,
    edited_paths: HashSet<String>,
    thread_id: String,
    /// `$CODEX_HOME`, where the rollout file with per-call usage is.
    codex_home: Option<PathBuf>,
    /// Rollout calls already emitted, so each turn takes only its own.
    rollout_calls_emitted: usize,
    /// A completed turn's usage not yet sent: nothing orders Codex's `turn.completed` line
    /// after its rollout file's record of the turn's last call, so with a rollout to read
    /// the turn is split into calls once Codex has moved on (the next turn, or its exit).
    pending_turn: Option<Usage>,
}

impl CodexStream {
    /// `model` is the model name ecca passed to Codex (`-m`, or its config), used for the
    /// ledger rows because the JSON stream does not say which model ran.
    pub fn new(model: impl Into<String>) -> Self {
        CodexStream {
            emit: Emitter::default(),
            model: model.into(),
            cwd: None,
            finished: false,
            malformed: 0,
            turns_completed: 0,
            total: Usage::default(),
            last_message: None,
            last_error: None,
            edited_paths: HashSet::new(),
            thread_id: String::new(),
            codex_home: None,
            pending_turn: None,
            rollout_calls_emitted: 0,
        }
    }

    /// The `CODEX_HOME` Codex runs with: each completed turn is then recorded call by call
    /// from the session rollout file, when its calls add up to the turn's usage exactly
    /// (otherwise, e.g. if the file is not written yet, as the turn's aggregate).
    pub fn with_codex_home(mut self, codex_home: impl Into<PathBuf>) -> Self {
        self.codex_home = Some(codex_home.into());
        self
    }

    /// The directory Codex ran in (`-C`), so edited paths are reported relative to it.
    pub fn with_cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Lines that were not JSON objects (skipped).
    pub fn malformed_lines(&self) -> usize {
        self.malformed
    }

    fn per_model(&self) -> Vec<ModelTotal> {
        if self.turns_completed == 0 {
            return Vec::new();
        }
        vec![ModelTotal {
            model: self.model.clone(),
            usage: self.total,
            reported_cost: None,
        }]
    }

    fn on_item_started(&mut self, item: &Value) {
        let (name, detail) = match str_field(item, "type") {
            Some("command_execution") => {
                let command = str_field(item, "command").unwrap_or("");
                (
                    "shell".to_string(),
                    format!("shell: {}", display_command(command)),
                )
            }
            Some("mcp_tool_call") => {
                let server = str_field(item, "server").unwrap_or("mcp");
                let tool = str_field(item, "tool").unwrap_or("tool");
                (tool.to_string(), format!("{server}.{tool}"))
            }
            Some("web_search") => {
                let query = str_field(item, "query").unwrap_or("");
                ("web_search".to_string(), format!("web_search {query}"))
            }
            _ => return,
        };
        let detail = one_line(&detail);
        self.emit.push(AgentEvent::ToolCall { name, detail });
    }

    fn on_item_completed(&mut self, item: &Value) {
        match str_field(item, "type") {
            Some("agent_message") => {
                let text = str_field(item, "text").unwrap_or("");
                self.emit.text(text);
                self.emit.end_text_block();
                self.last_message = Some(text.to_string());
            }
            Some("file_change") if str_field(item, "status") != Some("failed") => {
                let changes = item.get("changes").and_then(Value::as_array);
                let changes: Vec<(String, &str)> = changes
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        let path = relative_path(self.cwd.as_deref(), str_field(c, "path")?);
                        Some((path, str_field(c, "kind").unwrap_or("update")))
                    })
                    .collect();
                let listed: Vec<String> = changes
                    .iter()
                    .map(|(p, kind)| format!("{kind} {p}"))
                    .collect();
                self.emit.push(AgentEvent::ToolCall {
                    name: "apply_patch".to_string(),
                    detail: one_line(&format!("apply_patch: {}", listed.join(", "))),
                });
                for (path, _) in changes {
                    if self.edited_paths.insert(path.clone()) {
                        self.emit.push(AgentEvent::FileEdit { path });
                    }
                }
            }
            Some("command_execution") => {
                let exit_code = item
                    .get("exit_code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok());
                self.emit.push(AgentEvent::Command {
                    command: str_field(item, "command").unwrap_or("").to_string(),
                    exit_code,
                    output: str_field(item, "aggregated_output")
                        .unwrap_or("")
                        .to_string(),
                });
            }
            Some("error") => {
                self.last_error = str_field(item, "message").map(str::to_string);
            }
            _ => {}
        }
    }

    fn on_error(&mut self, message: &str) {
        // "Reconnecting... 1/5 (reason)": a retry of the stream, not the end of the turn.
        if let Some(rest) = message.strip_prefix("Reconnecting...") {
            let attempt = rest
                .trim_start()
                .split('/')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            self.emit.push(AgentEvent::Retry {
                attempt,
                detail: message.to_string(),
            });
        } else {
            self.last_error = Some(message.to_string());
        }
    }

    fn finished_event(&mut self, ok: bool, reason: String) {
        self.finished = true;
        let per_model = self.per_model();
        self.emit.push(AgentEvent::Finished(AgentOutcome {
            ok,
            reason,
            reported_cost: None,
            per_model,
            permission_denials: 0,
        }));
    }
}

impl CodexStream {
    /// A turn's usage as ledger calls: one per model call when the rollout file has them
    /// and they add up to the turn, else the turn as one aggregated call.
    fn send_turn(&mut self, usage: Usage) {
        let per_call = self.rollout_calls_for_turn(&usage);
        let aggregated = per_call.is_none();
        for usage in per_call.unwrap_or_else(|| vec![usage]) {
            self.emit.push(AgentEvent::Call(CallUsage {
                model: self.model.clone(),
                usage,
                reported_cost: None,
                aggregated,
            }));
        }
    }

    fn send_pending_turn(&mut self) {
        if let Some(usage) = self.pending_turn.take() {
            self.send_turn(usage);
        }
    }

    /// This turn's calls from the rollout file, if it can be read and they add up to `turn`.
    fn rollout_calls_for_turn(&mut self, turn: &Usage) -> Option<Vec<Usage>> {
        let home = self.codex_home.as_ref()?;
        let path =
            find_rollout_file(home, &self.thread_id).filter(|_| !self.thread_id.is_empty())?;
        let text = std::fs::read_to_string(path).ok()?;
        let calls = calls_from_rollout(&text);
        let new = calls.get(self.rollout_calls_emitted..)?;
        let sum = new
            .iter()
            .fold(Usage::default(), |sum, call| add_usage(&sum, call));
        if new.is_empty() || sum != *turn {
            return None;
        }
        self.rollout_calls_emitted = calls.len();
        Some(new.to_vec())
    }
}

impl StreamParser for CodexStream {
    fn feed_line(&mut self, line: &str) -> Vec<AgentEvent> {
        if line.trim().is_empty() || self.finished {
            return Vec::new();
        }
        let Some(value) = json_object(line, &mut self.malformed) else {
            return Vec::new();
        };
        let item = value.get("item").unwrap_or(&Value::Null);
        match str_field(&value, "type") {
            Some("thread.started") => {
                self.thread_id = str_field(&value, "thread_id").unwrap_or("").to_string();
                self.emit.push(AgentEvent::Started {
                    session_id: self.thread_id.clone(),
                    model: Some(self.model.clone()),
                });
            }
            Some("item.started") => self.on_item_started(item),
            Some("item.completed") => self.on_item_completed(item),
            Some("error") => self.on_error(str_field(&value, "message").unwrap_or("")),
            Some("turn.completed") => {
                let usage = codex_usage(value.get("usage").unwrap_or(&Value::Null));
                self.turns_completed += 1;
                self.total = add_usage(&self.total, &usage);
                self.send_pending_turn();
                if self.codex_home.is_some() {
                    self.pending_turn = Some(usage);
                } else {
                    self.send_turn(usage);
                }
            }
            Some("turn.failed") => {
                self.send_pending_turn();
                let error = value.get("error").unwrap_or(&Value::Null);
                let message = str_field(error, "message")
                    .or(self.last_error.as_deref())
                    .unwrap_or("no error message given");
                let reason = format!("Codex's turn failed: {}", reason_line(message));
                self.finished_event(false, reason);
            }
            _ => {}
        }
        self.emit.take()
    }

    fn finish(&mut self) -> Vec<AgentEvent> {
        // Codex has exited: its rollout file is whole.
        self.send_pending_turn();
        if self.finished {
            return self.emit.take();
        }
        if self.turns_completed > 0 {
            let reason = match &self.last_message {
                Some(message) => reason_line(message),
                None => "Codex completed its turn without a final message.".to_string(),
            };
            self.finished_event(true, reason);
        } else {
            let mut reason =
                "Codex CLI exited without finishing its turn (killed or crashed)".to_string();
            if let Some(error) = &self.last_error {
                reason.push_str(&format!("; its last error was: {}", reason_line(error)));
            }
            reason.push('.');
            self.finished_event(false, reason);
        }
        self.emit.take()
    }
}

/// Maps a Codex usage object (stream or rollout) to the ledger's disjoint counts; see the
/// module documentation for why.
pub fn codex_usage(usage: &Value) -> Usage {
    let cached = tokens(usage, "cached_input_tokens");
    let cache_write = tokens(usage, "cache_write_input_tokens");
    Usage {
        input_tokens: tokens(usage, "input_tokens").saturating_sub(cached + cache_write),
        output_tokens: tokens(usage, "output_tokens"),
        cache_write_tokens: cache_write,
        cache_read_tokens: cached,
    }
}

/// Per-call usage from a rollout file, in call order. Uses `token_usage_record` (one per
/// `response_id`) when present; otherwise each `token_count` event's `last_token_usage`,
/// skipping snapshots whose running total did not move (they repeat the previous call).
pub fn calls_from_rollout(text: &str) -> Vec<Usage> {
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let mut seen_responses = HashSet::new();
    let records: Vec<Usage> = lines
        .iter()
        .filter(|l| str_field(l, "type") == Some("token_usage_record"))
        .filter_map(|l| l.get("payload"))
        .filter(|p| match str_field(p, "response_id") {
            Some(id) => seen_responses.insert(id.to_string()),
            None => true,
        })
        .filter_map(|p| p.get("usage").map(codex_usage))
        .collect();
    if !records.is_empty() {
        return records;
    }
    let mut calls = Vec::new();
    let mut last_total: Option<&Value> = None;
    for line in &lines {
        let payload = line.get("payload").unwrap_or(&Value::Null);
        if str_field(line, "type") != Some("event_msg")
            || str_field(payload, "type") != Some("token_count")
        {
            continue;
        }
        let Some(info) = payload.get("info").filter(|i| !i.is_null()) else {
            continue;
        };
        let total = info.get("total_token_usage");
        if total.is_some() && total == last_total {
            continue;
        }
        last_total = total;
        if let Some(last) = info.get("last_token_usage") {
            calls.push(codex_usage(last));
        }
    }
    calls
}

/// The model a rollout's turns ran with (from `turn_context`), when ecca did not pin one.
pub fn rollout_model(text: &str) -> Option<String> {
    // The last turn's model: a thread can switch models between turns.
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| str_field(l, "type") == Some("turn_context"))
        .find_map(|l| {
            let payload = l.get("payload")?;
            str_field(payload, "model").map(String::from)
        })
}

/// The rollout file of `thread_id` under `codex_home`
/// (`sessions/YYYY/MM/DD/rollout-<time>-<thread_id>.jsonl`), if it exists.
pub fn find_rollout_file(codex_home: &Path, thread_id: &str) -> Option<PathBuf> {
    let suffix = format!("-{thread_id}.jsonl");
    find_file(&codex_home.join("sessions"), 4, &|name: &str| {
        name.starts_with("rollout-") && name.ends_with(&suffix)
    })
}

fn find_file(dir: &Path, depth: usize, matches: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    // Newest date directories sort last; look there first.
    entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
    for entry in entries {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            if let Some(found) = find_file(&path, depth - 1, matches) {
                return Some(found);
            }
        } else if entry.file_name().to_str().is_some_and(matches) {
            return Some(path);
        }
    }
    None
}

/// The command as typed, without the `/bin/bash -lc '…'` wrapper Codex adds.
fn display_command(command: &str) -> &str {
    ["/bin/bash -lc ", "bash -lc ", "/bin/sh -c ", "sh -c "]
        .iter()
        .find_map(|prefix| command.strip_prefix(prefix))
        .and_then(|rest| rest.strip_prefix('\'')?.strip_suffix('\''))
        .filter(|inner| !inner.contains('\''))
        .unwrap_or(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::events::parse_all;
    use crate::agents::events::test_support::{calls, kinds, outcome, usage};

    const EXEC: &str = include_str!("../../tests/fixtures/agents/codex.jsonl");
    const ROLLOUT: &str = include_str!("../../tests/fixtures/agents/codex-session-rollout.jsonl");
    const API_500: &str = include_str!("../../tests/fixtures/agents/codex-500.jsonl");
    const SIGINT: &str = include_str!("../../tests/fixtures/agents/codex-sigint-during-tool.jsonl");
    const MODEL: &str = "gpt-6.1-sol";

    fn stream() -> CodexStream {
        CodexStream::new(MODEL).with_cwd("<workdir>/s-codex/repo")
    }

    #[test]
    fn exec_stream_gives_edit_text_and_one_call_for_the_turn() {
        let events = parse_all(&mut stream(), EXEC);
        // 2235 prompt tokens of which 745 cached and 256 written to cache; 666 output.
        let turn = usage(1234, 666, 256, 745);
        assert_eq!(turn.total(), 2901);
        let expected = vec![
            AgentEvent::Started {
                session_id: "01a20168-27b9-7aa3-8e46-0eb94c7d1d40".into(),
                model: Some(MODEL.into()),
            },
            AgentEvent::ToolCall {
                name: "apply_patch".into(),
                detail: "apply_patch: add hello.py".into(),
            },
            AgentEvent::FileEdit {
                path: "hello.py".into(),
            },
            AgentEvent::Text("Done: hello.py written.".into()),
            AgentEvent::Call(CallUsage {
                model: MODEL.into(),
                usage: turn,
                reported_cost: None,
                aggregated: true,
            }),
            AgentEvent::Finished(AgentOutcome {
                ok: true,
                reason: "Done: hello.py written.".into(),
                reported_cost: None,
                per_model: vec![ModelTotal {
                    model: MODEL.into(),
                    usage: turn,
                    reported_cost: None,
                }],
                permission_denials: 0,
            }),
        ];
        assert_eq!(events, expected);
    }

    #[test]
    fn rollout_calls_sum_to_the_turn_usage() {
        let per_call = calls_from_rollout(ROLLOUT);
        assert_eq!(
            per_call,
            vec![usage(655, 567, 234, 345), usage(579, 99, 22, 400)]
        );
        // Each call's four counts add up to the total_tokens Codex recorded for it.
        assert_eq!((per_call[0].total(), per_call[1].total()), (1801, 1100));
        let events = parse_all(&mut stream(), EXEC);
        let turn = calls(&events)[0].usage;
        assert_eq!(add_usage(&per_call[0], &per_call[1]), turn);
        assert_eq!(rollout_model(ROLLOUT).as_deref(), Some(MODEL));
    }

    #[test]
    fn rollout_without_usage_records_falls_back_to_token_counts() {
        let mut lines: Vec<&str> = ROLLOUT
            .lines()
            .filter(|l| !l.contains("\"type\":\"token_usage_record\""))
            .collect();
        assert_eq!(lines.len(), ROLLOUT.lines().count() - 2);
        // A repeated snapshot (same running total) must not count as another call.
        let repeated = lines.iter().position(|l| l.contains("\"token_count\""));
        let repeated = lines[repeated.expect("a token_count line")];
        lines.insert(lines.len() - 3, repeated);
        let per_call = calls_from_rollout(&lines.join("\n"));
        assert_eq!(per_call, calls_from_rollout(ROLLOUT));
    }

    #[test]
    fn turn_failed_after_reconnecting_is_a_failure() {
        let events = parse_all(&mut stream(), API_500);
        assert_eq!(kinds(&events), "started retry finished");
        let demand = "We’re currently experiencing high demand, which may cause temporary errors.";
        let retry = AgentEvent::Retry {
            attempt: 1,
            detail: format!("Reconnecting... 1/1 ({demand})"),
        };
        assert_eq!(events[1], retry);
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        assert_eq!(outcome.reason, format!("Codex's turn failed: {demand}"));
        assert!(outcome.per_model.is_empty());
    }

    #[test]
    fn sigint_during_a_command_is_a_failure() {
        let events = parse_all(&mut stream(), SIGINT);
        assert_eq!(kinds(&events), "started tool finished");
        let tool = AgentEvent::ToolCall {
            name: "shell".into(),
            detail: "shell: sleep 300".into(),
        };
        assert_eq!(events[1], tool);
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        let expected = "Codex CLI exited without finishing its turn (killed or crashed).";
        assert_eq!(outcome.reason, expected);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let mut lines: Vec<&str> = EXEC.lines().collect();
        lines.insert(1, "Reading additional input from stdin...");
        lines.insert(3, "{\"type\":\"item.completed\",\"item\":{");
        let mut parser = stream();
        let events = parse_all(&mut parser, &lines.join("\n"));
        assert_eq!(events, parse_all(&mut stream(), EXEC));
        assert_eq!(parser.malformed_lines(), 2);
    }

    #[test]
    fn completed_commands_keep_their_exit_code_and_output() {
        let line = r#"{"type":"item.completed","item":{"id":"item_3","type":"command_execution","command":"/bin/bash -lc 'false'","aggregated_output":"boom\n","exit_code":1,"status":"failed"}}"#;
        let command = AgentEvent::Command {
            command: "/bin/bash -lc 'false'".into(),
            exit_code: Some(1),
            output: "boom\n".into(),
        };
        assert_eq!(stream().feed_line(line), vec![command]);
    }

    #[test]
    fn with_codex_home_each_call_of_the_turn_is_its_own_row() {
        let home = tempfile::tempdir().expect("temp dir");
        let day = home.path().join("sessions/2026/11/22");
        std::fs::create_dir_all(&day).expect("create sessions dir");
        let file =
            day.join("rollout-2026-11-22T03-58-52-01a20168-27b9-7aa3-8e46-0eb94c7d1d40.jsonl");
        std::fs::write(&file, ROLLOUT).expect("write rollout");
        let events = parse_all(&mut stream().with_codex_home(home.path()), EXEC);
        let per_call = calls(&events);
        assert_eq!(per_call.len(), 2);
        assert_eq!(per_call[0].usage, usage(655, 567, 234, 345));
        assert_eq!(per_call[1].usage, usage(579, 99, 22, 400));
        assert!(per_call.iter().all(|c| !c.aggregated && c.model == MODEL));
        // A rollout that does not account for the whole turn is not trusted.
        let partial: Vec<&str> = ROLLOUT.lines().take(18).collect();
        std::fs::write(&file, partial.join("\n")).expect("write rollout");
        let events = parse_all(&mut stream().with_codex_home(home.path()), EXEC);
        let turn = calls(&events);
        assert_eq!(turn.len(), 1);
        assert!(turn[0].aggregated);
    }

    #[test]
    fn rollout_file_is_found_by_thread_id() {
        let home = tempfile::tempdir().expect("temp dir");
        let day = home.path().join("sessions/2026/11/22");
        std::fs::create_dir_all(&day).expect("create sessions dir");
        let file = day.join("rollout-2026-11-22T03-58-52-01a20168-27b9.jsonl");
        std::fs::write(&file, ROLLOUT).expect("write rollout");
        assert_eq!(find_rollout_file(home.path(), "01a20168-27b9"), Some(file));
        assert_eq!(find_rollout_file(home.path(), "other-thread"), None);
    }
}
