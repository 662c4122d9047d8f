//! Aider's output: plain-text stdout (`--no-pretty`) and the JSONL it writes with
//! `--analytics-log FILE` (even with `--no-analytics`).
//!
//! Stdout says what happened (edits, commits, API errors and retries) but its token counts
//! are rounded ("1.2k sent"), so usage comes only from the analytics log's `message_send`
//! events, one per model call. Aider exits 0 even after giving up on API errors, so the run
//! is judged from both: it succeeded only if a model call completed and no API error was
//! left unanswered by a retry. Either give [`AiderStdout`] the log's path
//! ([`AiderStdout::with_analytics_log`]) and it reads the log as it grows, or feed the log to
//! [`AiderAnalytics`] yourself and end with [`AiderStdout::finish_with_analytics`].

use super::events::{AgentEvent, AgentOutcome, CallUsage, Emitter, ModelTotal, StreamParser};
use super::{add_usage, json_object, str_field, tokens, usd_field};
use crate::money::{Micros, Usage};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Lines kept in one API error message; aider wraps a message over a few lines.
const ERROR_BLOCK_MAX_LINES: usize = 5;

/// Parser state for Aider's stdout.
#[derive(Debug, Default)]
pub struct AiderStdout {
    emit: Emitter,
    started: bool,
    finished: bool,
    /// The API error being read (it spans several lines until a blank or a retry notice).
    error_block: Vec<String>,
    /// An API error no retry followed: the call it belongs to failed for good.
    unanswered_error: Option<String>,
    retries: u32,
    /// "Tokens: … sent, … received" lines, each printed after a completed model call.
    completed_calls: usize,
    edited_paths: Vec<String>,
    commits: Vec<String>,
    analytics_log: Option<AnalyticsTail>,
}

/// The analytics log being followed: how far it was read, and what it said so far.
#[derive(Debug)]
struct AnalyticsTail {
    path: PathBuf,
    read_up_to: u64,
    unfinished_line: String,
    analytics: AiderAnalytics,
}

impl AiderStdout {
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows the `--analytics-log` file: its new lines are read with every stdout line and
    /// at the end, so calls reach the ledger during the run and the judgement uses them.
    pub fn with_analytics_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.analytics_log = Some(AnalyticsTail {
            path: path.into(),
            read_up_to: 0,
            unfinished_line: String::new(),
            analytics: AiderAnalytics::new(),
        });
        self
    }

    /// Emits the calls in whatever the analytics log gained since the last look. A log that
    /// cannot be read yet is looked at again later.
    fn poll_analytics(&mut self) {
        let Some(tail) = &mut self.analytics_log else {
            return;
        };
        let Ok(mut file) = std::fs::File::open(&tail.path) else {
            return;
        };
        let mut added = Vec::new();
        if file.seek(SeekFrom::Start(tail.read_up_to)).is_err()
            || file.read_to_end(&mut added).is_err()
        {
            return;
        }
        tail.read_up_to += added.len() as u64;
        tail.unfinished_line
            .push_str(&String::from_utf8_lossy(&added));
        while let Some(end) = tail.unfinished_line.find('\n') {
            let line: String = tail.unfinished_line.drain(..=end).collect();
            for event in tail.analytics.feed_line(&line) {
                self.emit.push(event);
            }
        }
    }

    /// Ends the run judging it with the analytics log too: its `message_send` count is the
    /// authority on completed calls, and its costs become the outcome's reported cost.
    pub fn finish_with_analytics(&mut self, analytics: &AiderAnalytics) -> Vec<AgentEvent> {
        self.finish_judged(Some(analytics))
    }

    fn close_error_block(&mut self) {
        if !self.error_block.is_empty() {
            self.unanswered_error = Some(self.error_block.join(" "));
            self.error_block.clear();
        }
    }

    fn finish_judged(&mut self, analytics: Option<&AiderAnalytics>) -> Vec<AgentEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        self.close_error_block();
        let calls = analytics.map_or(self.completed_calls, |a| a.message_sends);
        let (ok, reason) = if let Some(error) = &self.unanswered_error {
            let attempts = self.retries + 1;
            (
                false,
                format!("Aider gave up on its model call after {attempts} attempt(s): {error}"),
            )
        } else if calls == 0 {
            let mut reason =
                "Aider exited without completing a model call (killed, crashed or the API failed)"
                    .to_string();
            if let Some(exit) = analytics.and_then(|a| a.exit_reason.as_deref()) {
                reason.push_str(&format!("; its analytics log says \"{exit}\""));
            }
            reason.push('.');
            (false, reason)
        } else {
            (true, self.summary())
        };
        self.emit.push(AgentEvent::Finished(AgentOutcome {
            ok,
            reason,
            reported_cost: analytics.and_then(|a| a.total_cost),
            per_model: analytics.map(|a| a.per_model.clone()).unwrap_or_default(),
            permission_denials: 0,
        }));
        self.emit.take()
    }

    /// What a successful run did, as one sentence.
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.edited_paths.is_empty() {
            parts.push(format!("edited {}", self.edited_paths.join(", ")));
        }
        if !self.commits.is_empty() {
            parts.push(format!("committed {}", self.commits.join("; ")));
        }
        if parts.is_empty() {
            "Aider finished without editing any file.".to_string()
        } else {
            format!("Aider finished: {}.", parts.join("; "))
        }
    }
}

impl StreamParser for AiderStdout {
    fn feed_line(&mut self, line: &str) -> Vec<AgentEvent> {
        if self.finished {
            return Vec::new();
        }
        self.poll_analytics();
        let line = line.trim_end();
        if let Some(delay) = line
            .strip_prefix("Retrying in ")
            .and_then(|rest| rest.strip_suffix(" seconds..."))
        {
            self.close_error_block();
            self.retries += 1;
            let error = self
                .unanswered_error
                .take()
                .unwrap_or_else(|| "an API error".into());
            self.emit.push(AgentEvent::Retry {
                attempt: self.retries,
                detail: format!("{error}; retrying in {delay} seconds"),
            });
        } else if line.is_empty() {
            self.close_error_block();
        } else if line.starts_with("litellm.") {
            self.close_error_block();
            self.error_block.push(line.trim().to_string());
        } else if !self.error_block.is_empty() && self.error_block.len() < ERROR_BLOCK_MAX_LINES {
            self.error_block.push(line.trim().to_string());
        } else {
            self.close_error_block();
            self.on_output_line(line);
        }
        self.emit.take()
    }

    fn finish(&mut self) -> Vec<AgentEvent> {
        self.poll_analytics();
        match self.analytics_log.take() {
            Some(mut tail) => {
                let last = tail.analytics.feed_line(&tail.unfinished_line);
                for event in last {
                    self.emit.push(event);
                }
                self.finish_judged(Some(&tail.analytics))
            }
            None => self.finish_judged(None),
        }
    }
}

impl AiderStdout {
    fn on_output_line(&mut self, line: &str) {
        if let Some(model) = line
            .strip_prefix("Model: ")
            .or_else(|| line.strip_prefix("Main model: "))
        {
            if !self.started {
                self.started = true;
                let model = model.split(" with ").next().unwrap_or(model);
                self.emit.push(AgentEvent::Started {
                    session_id: String::new(),
                    model: Some(model.to_string()),
                });
            }
        } else if [
            "Aider v",
            "Git repo:",
            "Repo-map:",
            "Weak model:",
            "Editor model:",
            "You can skip this check with",
        ]
        .iter()
        .any(|banner| line.starts_with(banner))
        {
            // Start-up banner: says nothing about the task.
        } else if let Some(path) = line.strip_prefix("Applied edit to ") {
            self.file_edit(path);
        } else if line.starts_with("Added ") && line.ends_with(" to .gitignore") {
            // Aider's own change, left uncommitted: it shows up in the run's diff.
            self.file_edit(".gitignore");
        } else if let Some(commit) = commit_line(line) {
            self.commits.push(commit.to_string());
            self.emit.push(AgentEvent::ToolCall {
                name: "git commit".to_string(),
                detail: line.to_string(),
            });
        } else if line.starts_with("Tokens: ") && line.contains(" sent, ") {
            self.completed_calls += 1;
        } else {
            self.emit.text(&format!("{line}\n"));
        }
    }
}

impl AiderStdout {
    fn file_edit(&mut self, path: &str) {
        if !self.edited_paths.iter().any(|p| p == path) {
            self.edited_paths.push(path.to_string());
            self.emit.push(AgentEvent::FileEdit {
                path: path.to_string(),
            });
        }
    }
}

/// `Commit 3072b3b Add hello.py` → `3072b3b Add hello.py`.
fn commit_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("Commit ")?;
    let sha = rest.split(' ').next()?;
    let is_sha = sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit());
    is_sha.then_some(rest)
}

/// What Aider's analytics log says about a run.
#[derive(Debug, Default)]
pub struct AiderAnalytics {
    message_sends: usize,
    /// Aider's running session total, as of the last `message_send`.
    total_cost: Option<Micros>,
    per_model: Vec<ModelTotal>,
    exit_reason: Option<String>,
    malformed: usize,
}

impl AiderAnalytics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one log line; a `message_send` is one finished model call. Aider logs prompt
    /// and completion tokens only (no cache split), with its own cost for the call.
    pub fn feed_line(&mut self, line: &str) -> Vec<AgentEvent> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        let Some(value) = json_object(line, &mut self.malformed) else {
            return Vec::new();
        };
        let properties = value.get("properties").unwrap_or(&Value::Null);
        match str_field(&value, "event") {
            Some("message_send") => {
                self.message_sends += 1;
                let model = str_field(properties, "main_model").unwrap_or("unknown");
                let usage = Usage {
                    input_tokens: tokens(properties, "prompt_tokens"),
                    output_tokens: tokens(properties, "completion_tokens"),
                    ..Usage::default()
                };
                let cost = properties.get("cost").and_then(usd_field);
                if let Some(total) = properties.get("total_cost").and_then(usd_field) {
                    self.total_cost = Some(total);
                }
                self.add_to_model(model, &usage, cost);
                vec![AgentEvent::Call(CallUsage {
                    model: model.to_string(),
                    usage,
                    reported_cost: cost,
                    aggregated: false,
                })]
            }
            Some("exit") => {
                self.exit_reason = str_field(properties, "reason").map(str::to_string);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn add_to_model(&mut self, model: &str, usage: &Usage, cost: Option<Micros>) {
        if let Some(total) = self.per_model.iter_mut().find(|t| t.model == model) {
            total.usage = add_usage(&total.usage, usage);
            total.reported_cost = match (total.reported_cost, cost) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        } else {
            self.per_model.push(ModelTotal {
                model: model.to_string(),
                usage: *usage,
                reported_cost: cost,
            });
        }
    }

    /// Completed model calls so far.
    pub fn message_sends(&self) -> usize {
        self.message_sends
    }

    /// The `exit` event's reason, once Aider has exited cleanly.
    pub fn exit_reason(&self) -> Option<&str> {
        self.exit_reason.as_deref()
    }

    /// Lines that were not JSON objects (skipped).
    pub fn malformed_lines(&self) -> usize {
        self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::events::test_support::{calls, kinds, outcome, texts, usage};
    use crate::money::Price;

    const STREAMED: &str = include_str!("../../tests/fixtures/agents/aider.txt");
    const STREAMED_LOG: &str = include_str!("../../tests/fixtures/agents/aider-analytics.jsonl");
    const NO_STREAM: &str = include_str!("../../tests/fixtures/agents/aider-no-stream.txt");
    const NO_STREAM_LOG: &str =
        include_str!("../../tests/fixtures/agents/aider-no-stream-analytics.jsonl");
    const API_500: &str = include_str!("../../tests/fixtures/agents/aider-500.txt");
    const API_500_LOG: &str = include_str!("../../tests/fixtures/agents/aider-500-analytics.jsonl");
    const MODEL: &str = "openai/stub-model";

    /// Runs stdout and the analytics log through their parsers the way a supervisor does:
    /// the log's calls, then stdout's events ending with the combined judgement.
    fn run(stdout: &str, log: &str) -> (Vec<AgentEvent>, AiderAnalytics) {
        let mut analytics = AiderAnalytics::new();
        let mut events: Vec<AgentEvent> =
            log.lines().flat_map(|l| analytics.feed_line(l)).collect();
        let mut parser = AiderStdout::new();
        events.extend(stdout.lines().flat_map(|l| parser.feed_line(l)));
        events.extend(parser.finish_with_analytics(&analytics));
        (events, analytics)
    }

    #[test]
    fn streamed_run_gives_edit_commit_and_the_logged_call() {
        let (events, analytics) = run(STREAMED, STREAMED_LOG);
        let expected = "call edit started text text text text text text edit tool finished";
        assert_eq!(kinds(&events), expected);
        let call = CallUsage {
            model: MODEL.into(),
            usage: usage(585, 18, 0, 0),
            reported_cost: Some(2_025),
            aggregated: false,
        };
        assert_eq!(events[0], AgentEvent::Call(call));
        let started = AgentEvent::Started {
            session_id: String::new(),
            model: Some(MODEL.into()),
        };
        assert_eq!(events[2], started);
        let text = "I'll create hello.py.\nhello.py\n```python\nprint(\"hello\")\n```\nhello.py\n";
        assert_eq!(texts(&events), text);
        assert!(events.contains(&AgentEvent::FileEdit {
            path: "hello.py".into()
        }));
        assert!(events.contains(&AgentEvent::ToolCall {
            name: "git commit".into(),
            detail: "Commit 7ea2b21 Add hello.py that prints hello".into(),
        }));
        let outcome = outcome(&events);
        assert!(outcome.ok);
        let reason = "Aider finished: edited .gitignore, hello.py; committed 7ea2b21 Add \
            hello.py that prints hello.";
        assert_eq!(outcome.reason, reason);
        assert_eq!(outcome.reported_cost, Some(2_025));
        assert_eq!(outcome.per_model.len(), 1);
        assert_eq!(outcome.per_model[0].usage, usage(585, 18, 0, 0));
        assert_eq!(analytics.exit_reason(), Some("Completed --message"));
    }

    #[test]
    fn no_stream_run_logs_the_servers_usage_and_cost() {
        let (events, analytics) = run(NO_STREAM, NO_STREAM_LOG);
        let calls = calls(&events);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].usage, usage(1234, 567, 0, 0));
        assert_eq!(calls[0].reported_cost, Some(12_207));
        // Aider priced it from the metadata file: $3 / $15 per million tokens.
        let price = Price::per_mtok_usd(3.0, 15.0, 0.0, 0.0);
        assert_eq!(price.cost(&calls[0].usage), 12_207);
        assert!(outcome(&events).ok);
        assert_eq!(analytics.message_sends(), 1);
    }

    #[test]
    fn api_failure_is_judged_failed_although_aider_exits_zero() {
        let (events, analytics) = run(API_500, API_500_LOG);
        let error = "litellm.InternalServerError: InternalServerError: OpenAIException - stub \
            injected 500 The API provider's servers are down or overloaded.";
        let retries: Vec<&AgentEvent> = events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Retry { .. }))
            .collect();
        assert_eq!(retries.len(), 8);
        let first = AgentEvent::Retry {
            attempt: 1,
            detail: format!("{error}; retrying in 0.2 seconds"),
        };
        assert_eq!(retries[0], &first);
        assert!(calls(&events).is_empty());
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        let reason = format!("Aider gave up on its model call after 9 attempt(s): {error}");
        assert_eq!(outcome.reason, reason);
        assert_eq!(outcome.reported_cost, None);
        assert_eq!(analytics.message_sends(), 0);
    }

    #[test]
    fn a_retried_error_that_then_succeeds_is_a_success() {
        let flaky = format!(
            "litellm.RateLimitError: RateLimitError: OpenAIException - slow down\n\
             Retrying in 0.2 seconds...\n{STREAMED}"
        );
        let (events, _) = run(&flaky, STREAMED_LOG);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, AgentEvent::Retry { .. }))
                .count(),
            1
        );
        assert!(outcome(&events).ok);
    }

    #[test]
    fn stdout_alone_judges_by_the_token_report() {
        let mut parser = AiderStdout::new();
        let events = crate::agents::parse_all(&mut parser, STREAMED);
        assert!(outcome(&events).ok);
        // Killed before the model answered: no token report, so no completed call.
        let cut: String = STREAMED.lines().take(5).map(|l| format!("{l}\n")).collect();
        let events = crate::agents::parse_all(&mut AiderStdout::new(), &cut);
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        let reason = "Aider exited without completing a model call (killed, crashed or the API \
            failed).";
        assert_eq!(outcome.reason, reason);
    }

    #[test]
    fn the_followed_analytics_log_feeds_calls_and_judgement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("analytics.jsonl");
        std::fs::write(&log, NO_STREAM_LOG).expect("write log");
        let mut parser = AiderStdout::new().with_analytics_log(&log);
        let events = crate::agents::parse_all(&mut parser, NO_STREAM);
        assert_eq!(
            kinds(&events),
            "call started text text text text text text edit tool finished"
        );
        assert_eq!(calls(&events)[0].usage, usage(1234, 567, 0, 0));
        let done = outcome(&events);
        assert!(done.ok);
        assert_eq!(done.reported_cost, Some(12_207));
        // The failed run's log has no message_send, so even clean stdout is not a success.
        std::fs::write(&log, API_500_LOG).expect("write log");
        let mut parser = AiderStdout::new().with_analytics_log(&log);
        let events = crate::agents::parse_all(&mut parser, "Aider v0.86.2\n");
        let outcome = outcome(&events);
        assert!(!outcome.ok);
        assert!(
            outcome
                .reason
                .ends_with("its analytics log says \"Completed --message\".")
        );
    }

    #[test]
    fn malformed_log_lines_are_skipped_and_counted() {
        let mut analytics = AiderAnalytics::new();
        let log = format!("{{\"event\": \"message_se\n{NO_STREAM_LOG}garbage\n");
        let events: Vec<AgentEvent> = log.lines().flat_map(|l| analytics.feed_line(l)).collect();
        assert_eq!(calls(&events).len(), 1);
        assert_eq!(analytics.malformed_lines(), 2);
    }
}
