//! Claude Code's `--output-format stream-json --verbose [--include-partial-messages]` output.
//!
//! Usage has two sources and they answer different questions. Per model call, the final
//! numbers exist only in the raw `stream_event`s (partial messages on): `message_start`
//! carries input and cache tokens, `message_delta` the final output tokens; the `usage` on
//! `assistant` lines is the `message_start` snapshot (output 1) and is never used. For the
//! whole run, `result.modelUsage` is cumulative per model and also covers calls the stream
//! never shows (the session-title side call, the non-streaming retry after a cut stream).
//! So this parser emits one [`CallUsage`] per streamed call and, at `result`, one
//! `aggregated` call per model for whatever `modelUsage` holds beyond those: the ledger then
//! sums to Claude Code's own totals whether or not partial messages were on.

use super::events::{AgentEvent, AgentOutcome, CallUsage, Emitter, ModelTotal, StreamParser};
use super::{
    add_usage, json_object, one_line, reason_line, relative_path, saturating_sub_usage, str_field,
    tokens, usd_field,
};
use crate::money::Usage;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Tools whose `file_path` (or `notebook_path`) input is the file they change.
const EDIT_TOOLS: [&str; 4] = ["Write", "Edit", "MultiEdit", "NotebookEdit"];
/// Tools whose results may name a file they only looked at.
const READ_ONLY_TOOLS: [&str; 4] = ["Read", "Glob", "Grep", "LS"];

/// The shape of a streamed text delta line, read without the rest of the line.
#[derive(serde::Deserialize)]
struct DeltaLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    parent_tool_use_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<DeltaEvent<'a>>,
}

#[derive(serde::Deserialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(serde::Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// The text of a main-agent `text_delta` line; none for every other line.
fn main_text_delta(line: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !line.contains("\"text_delta\"") {
        return None;
    }
    let parsed: DeltaLine = serde_json::from_str(line).ok()?;
    let event = parsed.event?;
    let delta = event.delta?;
    (parsed.kind == "stream_event"
        && parsed.parent_tool_use_id.is_none()
        && event.kind == "content_block_delta"
        && delta.kind == "text_delta")
        .then(|| delta.text.unwrap_or_default())
}

/// Parser state for one Claude Code run.
#[derive(Debug, Default)]
pub struct ClaudeStream {
    emit: Emitter,
    cwd: Option<String>,
    started: bool,
    finished: bool,
    malformed: usize,
    /// Streamed calls that have started but not finished, keyed by the subagent's
    /// `parent_tool_use_id` (None for the main agent), since subagent calls may interleave.
    in_flight: HashMap<Option<String>, InFlightCall>,
    /// Usage already emitted per call, by model name without a `[1m]`-style suffix, so the
    /// cumulative `modelUsage` can be reduced to what is still unreported.
    emitted_per_model: BTreeMap<String, Usage>,
    /// The message whose text the main agent is streaming now.
    streaming_message_id: Option<String>,
    /// Messages whose text came as deltas; their whole `assistant` text blocks are skipped.
    streamed_text_messages: HashSet<String>,
    /// Indexes of the main agent's text blocks still open in the current message.
    open_text_blocks: HashSet<u64>,
    /// Tool calls by `tool_use` id, to interpret their results.
    tool_uses: HashMap<String, (String, Value)>,
    edited_paths: HashSet<String>,
    last_retry: Option<String>,
}

#[derive(Debug)]
struct InFlightCall {
    model: String,
    usage: Usage,
}

impl ClaudeStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines that were not JSON objects (skipped).
    pub fn malformed_lines(&self) -> usize {
        self.malformed
    }

    fn on_system(&mut self, line: &Value) {
        match str_field(line, "subtype") {
            Some("init") if !self.started => {
                self.started = true;
                self.cwd = str_field(line, "cwd").map(str::to_string);
                self.emit.push(AgentEvent::Started {
                    session_id: str_field(line, "session_id").unwrap_or("").to_string(),
                    model: str_field(line, "model").map(str::to_string),
                });
            }
            Some("api_retry") => {
                let attempt = line.get("attempt").and_then(Value::as_u64).unwrap_or(0);
                let status = line
                    .get("error_status")
                    .filter(|s| !s.is_null())
                    .map_or("no status".to_string(), |s| format!("HTTP {s}"));
                let error = str_field(line, "error").unwrap_or("error");
                let mut detail = format!("API error ({status}, {error})");
                if let Some(max) = line.get("max_retries").and_then(Value::as_u64) {
                    detail.push_str(&format!("; retry {attempt} of {max}"));
                }
                if let Some(ms) = line.get("retry_delay_ms").and_then(Value::as_f64) {
                    detail.push_str(&format!(" in {:.1} s", ms / 1000.0));
                }
                self.last_retry = Some(detail.clone());
                self.emit.push(AgentEvent::Retry {
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                    detail,
                });
            }
            _ => {}
        }
    }

    /// Text the main agent streamed, of the message streaming now.
    fn on_text_delta(&mut self, text: &str) {
        if let Some(id) = &self.streaming_message_id
            && !self.streamed_text_messages.contains(id)
        {
            self.streamed_text_messages.insert(id.clone());
        }
        self.emit.text(text);
    }

    fn on_stream_event(&mut self, line: &Value) {
        let Some(event) = line.get("event") else {
            return;
        };
        let parent = str_field(line, "parent_tool_use_id").map(str::to_string);
        let main_agent = parent.is_none();
        match str_field(event, "type") {
            Some("message_start") => {
                let message = event.get("message").unwrap_or(&Value::Null);
                let usage = message.get("usage").unwrap_or(&Value::Null);
                let model = str_field(message, "model").unwrap_or("unknown").to_string();
                // A call still in flight here was cut off; Claude Code retries it and counts
                // the retry in modelUsage, which the reconciliation at `result` picks up.
                self.in_flight.insert(
                    parent,
                    InFlightCall {
                        model,
                        usage: Usage {
                            input_tokens: tokens(usage, "input_tokens"),
                            output_tokens: tokens(usage, "output_tokens"),
                            cache_write_tokens: tokens(usage, "cache_creation_input_tokens"),
                            cache_read_tokens: tokens(usage, "cache_read_input_tokens"),
                        },
                    },
                );
                if main_agent {
                    self.streaming_message_id = str_field(message, "id").map(str::to_string);
                    self.open_text_blocks.clear();
                }
            }
            Some("content_block_start") if main_agent => {
                let is_text = event
                    .get("content_block")
                    .and_then(|b| str_field(b, "type"))
                    == Some("text");
                if let (true, Some(index)) = (is_text, event.get("index").and_then(Value::as_u64)) {
                    self.open_text_blocks.insert(index);
                }
            }
            Some("content_block_delta") if main_agent => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                if str_field(delta, "type") == Some("text_delta") {
                    self.on_text_delta(str_field(delta, "text").unwrap_or(""));
                }
            }
            Some("content_block_stop") if main_agent => {
                if let Some(index) = event.get("index").and_then(Value::as_u64)
                    && self.open_text_blocks.remove(&index)
                {
                    self.emit.end_text_block();
                }
            }
            Some("message_delta") => {
                // message_delta usage is cumulative for the message: take every field it has.
                if let (Some(call), Some(usage)) =
                    (self.in_flight.get_mut(&parent), event.get("usage"))
                {
                    let fields = [
                        ("input_tokens", &mut call.usage.input_tokens),
                        ("output_tokens", &mut call.usage.output_tokens),
                        (
                            "cache_creation_input_tokens",
                            &mut call.usage.cache_write_tokens,
                        ),
                        ("cache_read_input_tokens", &mut call.usage.cache_read_tokens),
                    ];
                    for (key, slot) in fields {
                        if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                            *slot = n;
                        }
                    }
                }
                self.finish_call(&parent);
            }
            Some("message_stop") => self.finish_call(&parent),
            _ => {}
        }
    }

    /// Emits the call in flight for `parent`, if any, as one finished model call.
    fn finish_call(&mut self, parent: &Option<String>) {
        if let Some(call) = self.in_flight.remove(parent) {
            self.emit_call(call);
        }
    }

    fn emit_call(&mut self, call: InFlightCall) {
        let key = base_model(&call.model).to_string();
        let so_far = self.emitted_per_model.entry(key).or_default();
        *so_far = add_usage(so_far, &call.usage);
        self.emit.push(AgentEvent::Call(CallUsage {
            model: call.model,
            usage: call.usage,
            reported_cost: None,
            aggregated: false,
        }));
    }

    fn on_assistant(&mut self, line: &Value) {
        let Some(message) = line.get("message") else {
            return;
        };
        // Claude Code renders API failures as a `<synthetic>` assistant message; the result
        // line repeats it and becomes the outcome's reason, so it is not model text.
        if str_field(message, "model") == Some("<synthetic>") {
            return;
        }
        let main_agent = str_field(line, "parent_tool_use_id").is_none();
        let streamed =
            str_field(message, "id").is_some_and(|id| self.streamed_text_messages.contains(id));
        let blocks = message.get("content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            match str_field(block, "type") {
                Some("text") if main_agent && !streamed => {
                    self.emit.text(str_field(block, "text").unwrap_or(""));
                    self.emit.end_text_block();
                }
                Some("tool_use") => {
                    let name = str_field(block, "name").unwrap_or("tool").to_string();
                    let input = block.get("input").cloned().unwrap_or(Value::Null);
                    let detail = tool_summary(&name, &input, self.cwd.as_deref());
                    if let Some(id) = str_field(block, "id") {
                        self.tool_uses.insert(id.to_string(), (name.clone(), input));
                    }
                    self.emit.push(AgentEvent::ToolCall { name, detail });
                }
                _ => {}
            }
        }
    }

    fn on_user(&mut self, line: &Value) {
        let blocks = line
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array);
        let results: Vec<&Value> = blocks
            .into_iter()
            .flatten()
            .filter(|b| str_field(b, "type") == Some("tool_result"))
            .collect();
        // `tool_use_result` describes the message's tool result; with several results in one
        // message it cannot be told which, so it is only used for a single one.
        let structured = line.get("tool_use_result").filter(|_| results.len() == 1);
        for result in results {
            let is_error = result.get("is_error").and_then(Value::as_bool) == Some(true);
            let output = tool_result_text(result.get("content").unwrap_or(&Value::Null));
            let tool = str_field(result, "tool_use_id").and_then(|id| self.tool_uses.get(id));
            let (name, input) = match tool {
                Some((name, input)) => (name.clone(), input.clone()),
                None => (String::new(), Value::Null),
            };
            if name == "Bash" {
                let exit_code = if is_error {
                    exit_code_in(&output)
                } else {
                    Some(0)
                };
                self.emit.push(AgentEvent::Command {
                    command: str_field(&input, "command").unwrap_or("").to_string(),
                    exit_code,
                    output,
                });
            }
            if is_error {
                continue;
            }
            if EDIT_TOOLS.contains(&name.as_str())
                && let Some(path) = edited_path(&input)
            {
                self.file_edit(path);
            }
            if !READ_ONLY_TOOLS.contains(&name.as_str())
                && let Some(path) = structured.and_then(|s| str_field(s, "filePath"))
            {
                self.file_edit(path);
            }
        }
    }

    fn file_edit(&mut self, path: &str) {
        let path = relative_path(self.cwd.as_deref(), path);
        if self.edited_paths.insert(path.clone()) {
            self.emit.push(AgentEvent::FileEdit { path });
        }
    }

    fn on_result(&mut self, line: &Value) {
        self.finished = true;
        // modelUsage is authoritative from here on; an unfinished streamed call is in it.
        self.in_flight.clear();
        let reported_cost = line.get("total_cost_usd").and_then(usd_field);
        let per_model = Self::per_model_totals(line);
        for total in &per_model {
            let emitted = self.emitted_per_model.get(&total.model).copied();
            let remainder = saturating_sub_usage(&total.usage, &emitted.unwrap_or_default());
            if remainder != Usage::default() {
                self.emit.push(AgentEvent::Call(CallUsage {
                    model: total.model.clone(),
                    usage: remainder,
                    // The agent's cost covers the remainder only if nothing was emitted before.
                    reported_cost: total.reported_cost.filter(|_| emitted.is_none()),
                    aggregated: true,
                }));
            }
        }
        let denials: Vec<String> = line
            .get("permission_denials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| {
                let name = str_field(d, "tool_name").unwrap_or("tool");
                let input = d.get("tool_input").unwrap_or(&Value::Null);
                tool_summary(name, input, self.cwd.as_deref())
            })
            .collect();
        let (ok, reason) = judge(line, &denials);
        self.emit.push(AgentEvent::Finished(AgentOutcome {
            ok,
            reason,
            reported_cost,
            per_model,
            permission_denials: denials.len(),
        }));
    }

    /// `modelUsage` as reported, under the API's model names (`claude-opus-4-8`, not
    /// `claude-opus-4-8[1m]`) so totals and per-call rows can be matched by name.
    fn per_model_totals(line: &Value) -> Vec<ModelTotal> {
        let models = line.get("modelUsage").and_then(Value::as_object);
        let totals = models.into_iter().flatten().map(|(model, u)| ModelTotal {
            model: base_model(model).to_string(),
            usage: Usage {
                input_tokens: tokens(u, "inputTokens"),
                output_tokens: tokens(u, "outputTokens"),
                cache_write_tokens: tokens(u, "cacheCreationInputTokens"),
                cache_read_tokens: tokens(u, "cacheReadInputTokens"),
            },
            reported_cost: u.get("costUSD").and_then(usd_field),
        });
        totals.collect()
    }
}

impl StreamParser for ClaudeStream {
    fn feed_line(&mut self, line: &str) -> Vec<AgentEvent> {
        if line.trim().is_empty() || self.finished {
            return Vec::new();
        }
        // Most lines of a streaming run are text deltas: read those without building a
        // tree of the line (a third of ecca's CPU per line when it did).
        if let Some(text) = main_text_delta(line) {
            self.on_text_delta(&text);
            return self.emit.take();
        }
        let Some(value) = json_object(line, &mut self.malformed) else {
            return Vec::new();
        };
        match str_field(&value, "type") {
            Some("system") => self.on_system(&value),
            Some("stream_event") => self.on_stream_event(&value),
            Some("assistant") => self.on_assistant(&value),
            Some("user") => self.on_user(&value),
            Some("result") => self.on_result(&value),
            _ => {}
        }
        self.emit.take()
    }

    fn finish(&mut self) -> Vec<AgentEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        // Without a result there is no modelUsage: a call that started was sent and is billed,
        // so it goes to the ledger with what is known (its input, output so far).
        let mut unfinished: Vec<_> = self.in_flight.drain().collect();
        unfinished.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, call) in unfinished {
            self.emit_call(call);
        }
        let mut reason = "Claude Code exited without a result (killed or crashed)".to_string();
        if let Some(retry) = &self.last_retry {
            reason.push_str(&format!("; its last API retry was after: {retry}"));
        }
        reason.push('.');
        self.emit.push(AgentEvent::Finished(AgentOutcome {
            ok: false,
            reason,
            reported_cost: None,
            per_model: Vec::new(),
            permission_denials: 0,
        }));
        self.emit.take()
    }
}

/// Whether the run did what was asked, and a sentence saying so or why not.
fn judge(result: &Value, denials: &[String]) -> (bool, String) {
    let subtype = str_field(result, "subtype").unwrap_or("missing");
    let is_error = result.get("is_error").and_then(Value::as_bool) == Some(true);
    let message = reason_line(str_field(result, "result").unwrap_or(""));
    let status = result.get("api_error_status").filter(|s| !s.is_null());
    let terminal = str_field(result, "terminal_reason").unwrap_or("unknown");
    if subtype == "success" && !is_error {
        if denials.is_empty() {
            let reason = if message.is_empty() {
                "Claude Code finished without a final message.".to_string()
            } else {
                message
            };
            return (true, reason);
        }
        return (
            false,
            format!(
                "Claude Code was refused permission for {} tool call(s) ({}), so the task is \
                 not done; run it with a permission mode that allows them.",
                denials.len(),
                denials.join(", ")
            ),
        );
    }
    let reason = match (status, subtype) {
        (Some(status), _) => {
            format!("Claude Code gave up after an API error (HTTP {status}): {message}")
        }
        (None, "error_max_budget_usd") => {
            "Claude Code stopped at its spending limit (--max-budget-usd) before finishing.".into()
        }
        (None, "error_max_turns") => {
            "Claude Code stopped after reaching its maximum number of turns.".into()
        }
        (None, "error_during_execution") if terminal.starts_with("aborted") => {
            format!("Claude Code was interrupted ({terminal}) before finishing the task.")
        }
        (None, "error_during_execution") => {
            format!("Claude Code stopped with an error during execution ({terminal}).")
        }
        (None, _) if message.is_empty() => format!("Claude Code ended with {subtype}."),
        (None, _) => format!("Claude Code ended with {subtype}: {message}"),
    };
    (false, reason)
}

/// The model name without a context-window suffix: `modelUsage` says `claude-opus-4-8[1m]`
/// where the API stream says `claude-opus-4-8`.
fn base_model(model: &str) -> &str {
    match model.find('[') {
        Some(i) if model.ends_with(']') && i > 0 => &model[..i],
        _ => model,
    }
}

/// One line naming a tool call by what it acts on.
fn tool_summary(name: &str, input: &Value, cwd: Option<&str>) -> String {
    let field = |key: &str| str_field(input, key).map(one_line);
    let target = match name {
        "Bash" => field("command").map(|c| format!("{name}: {c}")),
        "Glob" | "Grep" => field("pattern").map(|p| format!("{name} {p}")),
        "WebFetch" => field("url").map(|u| format!("{name} {u}")),
        "WebSearch" => field("query").map(|q| format!("{name} {q}")),
        _ => None,
    };
    let path = edited_path(input);
    let summary = target
        .or_else(|| path.map(|p| format!("{name} {}", relative_path(cwd, p))))
        .or_else(|| field("description").map(|d| format!("{name}: {d}")))
        .unwrap_or_else(|| name.to_string());
    one_line(&summary)
}

fn edited_path(input: &Value) -> Option<&str> {
    str_field(input, "file_path").or_else(|| str_field(input, "notebook_path"))
}

/// A tool result's content: a string, or a list of blocks whose text is joined.
fn tool_result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| str_field(b, "text"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Claude Code reports a failed command as a result starting `Exit code N`.
fn exit_code_in(output: &str) -> Option<i32> {
    let rest = output.strip_prefix("Exit code ")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::events::parse_all;
    use crate::agents::events::test_support::{calls, kinds, outcome, texts, usage};
    use crate::money::Price;

    const PLAIN: &str = include_str!("../../tests/fixtures/agents/claude.jsonl");
    const PARTIAL: &str = include_str!("../../tests/fixtures/agents/claude-partial-messages.jsonl");
    const API_500: &str = include_str!("../../tests/fixtures/agents/claude-500.jsonl");
    const SIGINT: &str =
        include_str!("../../tests/fixtures/agents/claude-sigint-during-tool.jsonl");

    #[test]
    fn plain_stream_gives_text_tool_edit_and_one_aggregated_call() {
        let events = parse_all(&mut ClaudeStream::new(), PLAIN);
        let total = usage(2235, 666, 2356, 7456);
        let expected = vec![
            AgentEvent::Started {
                session_id: "2c3e487c-1f93-44a9-8e5a-936b00c8649a".into(),
                model: Some("claude-opus-4-8[1m]".into()),
            },
            AgentEvent::Text("I'll create hello.py.".into()),
            AgentEvent::ToolCall {
                name: "Write".into(),
                detail: "Write hello.py".into(),
            },
            AgentEvent::FileEdit {
                path: "hello.py".into(),
            },
            AgentEvent::Text("Done: hello.py written.".into()),
            AgentEvent::Call(CallUsage {
                model: "claude-opus-4-8".into(),
                usage: total,
                reported_cost: Some(46_278),
                aggregated: true,
            }),
            AgentEvent::Finished(AgentOutcome {
                ok: true,
                reason: "Done: hello.py written.".into(),
                reported_cost: Some(46_278),
                per_model: vec![ModelTotal {
                    model: "claude-opus-4-8".into(),
                    usage: total,
                    reported_cost: Some(46_278),
                }],
                permission_denials: 0,
            }),
        ];
        assert_eq!(events, expected);
        // Claude Code's own figure is Opus pricing: $5 / $25 / $6.25 / $0.50 per million.
        assert_eq!(
            Price::per_mtok_usd(5.0, 25.0, 6.25, 0.5).cost(&total),
            46_278
        );
    }

    #[test]
    fn partial_messages_give_one_call_per_model_call_and_streamed_text() {
        let events = parse_all(&mut ClaudeStream::new(), PARTIAL);
        let expected = "started text text text tool call edit text text text call finished";
        assert_eq!(kinds(&events), expected);
        assert_eq!(
            texts(&events),
            "I'll create hello.py.Done: hello.py written."
        );
        let calls = calls(&events);
        assert_eq!(calls[0].usage, usage(1234, 567, 2345, 3456));
        assert_eq!(calls[1].usage, usage(1001, 99, 11, 4000));
        assert!(
            calls
                .iter()
                .all(|c| c.model == "claude-opus-4-8" && !c.aggregated)
        );
        // The per-call rows add up to Claude Code's cumulative total, so no remainder row.
        let outcome = outcome(&events);
        assert_eq!(
            add_usage(&calls[0].usage, &calls[1].usage),
            outcome.per_model[0].usage
        );
        assert!(outcome.ok);
        assert_eq!(outcome.reported_cost, Some(46_278));
    }

    #[test]
    fn api_error_after_retries_is_a_failure_naming_the_status() {
        let events = parse_all(&mut ClaudeStream::new(), API_500);
        assert_eq!(kinds(&events), "started retry retry finished");
        assert_eq!(
            events[1],
            AgentEvent::Retry {
                attempt: 1,
                detail: "API error (HTTP 500, server_error); retry 1 of 2 in 0.6 s".into(),
            }
        );
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        let expected = "Claude Code gave up after an API error (HTTP 500): API Error: 500 stub \
            injected 500. This is a server-side issue, usually temporary — try again in a moment. \
            If it persists, check your inference gateway (127.0.0.1:19201).";
        assert_eq!(outcome.reason, expected);
        assert_eq!(outcome.reported_cost, Some(0));
        assert!(outcome.per_model.is_empty());
    }

    #[test]
    fn sigint_during_a_tool_is_a_failure_and_still_billed() {
        let events = parse_all(&mut ClaudeStream::new(), SIGINT);
        assert_eq!(kinds(&events), "started text tool command call finished");
        assert!(events.contains(&AgentEvent::ToolCall {
            name: "Bash".into(),
            detail: "Bash: sleep 300".into(),
        }));
        let rejected = "The user doesn't want to proceed with this tool use. The tool use was \
            rejected (eg. if it was a file edit, the new_string was NOT written to the file). \
            STOP what you are doing and wait for the user to tell you how to proceed.";
        assert!(events.contains(&AgentEvent::Command {
            command: "sleep 300".into(),
            exit_code: None,
            output: rejected.into(),
        }));
        let calls = calls(&events);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].usage, usage(1234, 567, 2345, 3456));
        assert_eq!(calls[0].reported_cost, Some(36_729));
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        assert_eq!(
            outcome.reason,
            "Claude Code was interrupted (aborted_tools) before finishing the task."
        );
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let mut lines: Vec<&str> = PLAIN.lines().collect();
        lines.insert(2, "not json at all");
        lines.insert(4, "[1, 2]");
        lines.insert(5, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"ty");
        let mut parser = ClaudeStream::new();
        let events = parse_all(&mut parser, &lines.join("\n"));
        assert_eq!(events, parse_all(&mut ClaudeStream::new(), PLAIN));
        assert_eq!(parser.malformed_lines(), 3);
    }

    #[test]
    fn killed_run_fails_and_bills_the_call_in_flight() {
        // Cut the partial-messages run just after the second call's message_start.
        let cut: Vec<&str> = PARTIAL.lines().take(22).collect();
        assert!(cut[21].contains("msg_stub_117d8cdd50df"));
        let events = parse_all(&mut ClaudeStream::new(), &cut.join("\n"));
        let calls = calls(&events);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].usage, usage(1001, 1, 11, 4000));
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        assert_eq!(
            outcome.reason,
            "Claude Code exited without a result (killed or crashed)."
        );
    }

    #[test]
    fn permission_denials_fail_an_otherwise_successful_run() {
        let denial = r#""permission_denials":[{"tool_name":"Write","tool_use_id":"toolu_1","tool_input":{"file_path":"<workdir>/s-claude/repo/hello.py","content":"x"}}]"#;
        let denied = PLAIN.replace(r#""permission_denials":[]"#, denial);
        let events = parse_all(&mut ClaudeStream::new(), &denied);
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        assert_eq!(outcome.permission_denials, 1);
        assert!(
            outcome
                .reason
                .contains("refused permission for 1 tool call(s) (Write hello.py)"),
            "{}",
            outcome.reason
        );
    }

    #[test]
    fn failed_commands_report_their_exit_code() {
        assert_eq!(exit_code_in("Exit code 137\nKilled"), Some(137));
        assert_eq!(exit_code_in("permission denied"), None);
        assert_eq!(base_model("claude-opus-4-8[1m]"), "claude-opus-4-8");
        assert_eq!(base_model("claude-haiku-4-5"), "claude-haiku-4-5");
    }
}
