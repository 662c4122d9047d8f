//! The events ecca derives from a coding agent's output, whichever agent it is. The parsers
//! in the sibling modules turn each agent's own format into these, so the supervisor, the
//! console and the ledger only ever deal with one vocabulary.

use crate::money::{Micros, Usage};

/// One thing an agent did or reported, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent is up. `session_id` is the agent's own id for the run (Claude's
    /// `session_id`, Codex's `thread_id`); empty when the agent has none (Aider).
    Started {
        session_id: String,
        model: Option<String>,
    },
    /// Assistant text, meant to be appended verbatim to whatever `Text` came just before.
    /// Streamed deltas where the agent streams them, else whole blocks, never both for the
    /// same block. A parser puts the separator between two blocks itself (a blank line, or a
    /// newline at the end of each of Aider's lines), so a reader never has to guess.
    Text(String),
    /// A tool the agent invoked, as a one-line summary such as `Write hello.py` or `Bash: ls`.
    ToolCall { name: String, detail: String },
    /// A file the agent created or changed (relative to the working directory when it is
    /// under it). Reported once per path per run, and only once the change succeeded.
    FileEdit { path: String },
    /// A shell command the agent ran and its result.
    Command {
        command: String,
        exit_code: Option<i32>,
        output: String,
    },
    /// The agent is retrying or reconnecting after an API error.
    Retry { attempt: u32, detail: String },
    /// Model usage the ledger must record: one finished model call, or (when
    /// [`CallUsage::aggregated`]) usage the agent only reported summed over several calls.
    Call(CallUsage),
    /// The run is over; always the last event.
    Finished(AgentOutcome),
}

/// Usage for a ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct CallUsage {
    pub model: String,
    pub usage: Usage,
    /// What the agent itself says this usage cost, when it says so.
    pub reported_cost: Option<Micros>,
    /// True when this covers usage the agent did not show call by call: a Codex turn (which
    /// may hold several model calls), or the part of Claude Code's cumulative `modelUsage`
    /// not already reported per call (side calls, non-streamed fallbacks, runs without
    /// `--include-partial-messages`). The ledger should label such a row as a sum.
    pub aggregated: bool,
}

/// How a run ended, judged from what the agent wrote, never from its exit code: Claude Code
/// exits 0 after SIGINT, Aider exits 0 after giving up on API errors.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    pub ok: bool,
    /// A sentence: why the run failed, or the agent's final message.
    pub reason: String,
    /// The agent's own total for the run (Claude: `total_cost_usd`; Aider: `total_cost`).
    pub reported_cost: Option<Micros>,
    /// Cumulative per-model totals as the agent reports them; empty if it reports none.
    pub per_model: Vec<ModelTotal>,
    pub permission_denials: usize,
}

/// One model's cumulative usage over a run, as the agent reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTotal {
    pub model: String,
    pub usage: Usage,
    pub reported_cost: Option<Micros>,
}

/// Turns an agent's output, one line at a time, into [`AgentEvent`]s.
pub trait StreamParser {
    /// Parses one line of output (without its newline). Lines that cannot be parsed are
    /// skipped, never fatal: an agent's output is not ours to trust.
    fn feed_line(&mut self, line: &str) -> Vec<AgentEvent>;

    /// Called once at end of output or process exit. Emits `Finished` (preceded by any usage
    /// still owed to the ledger) unless the stream already ended the run; a stream that
    /// stops without its terminal event is a failed run.
    fn finish(&mut self) -> Vec<AgentEvent>;
}

/// Feeds a whole recorded output through a parser and finishes it.
pub fn parse_all<P: StreamParser + ?Sized>(parser: &mut P, text: &str) -> Vec<AgentEvent> {
    let mut events = Vec::new();
    for line in text.lines() {
        events.extend(parser.feed_line(line));
    }
    events.extend(parser.finish());
    events
}

/// Collects events for one line and keeps consecutive text blocks apart: after a block ends,
/// the next text gets a blank line in front unless some other event came in between.
#[derive(Debug, Default)]
pub(crate) struct Emitter {
    events: Vec<AgentEvent>,
    break_before_next_text: bool,
}

impl Emitter {
    /// Emits a text fragment, separated from the previous block if one just ended.
    pub(crate) fn text(&mut self, fragment: &str) {
        if fragment.is_empty() {
            return;
        }
        let text = if self.break_before_next_text {
            format!("\n\n{fragment}")
        } else {
            fragment.to_string()
        };
        self.break_before_next_text = false;
        self.events.push(AgentEvent::Text(text));
    }

    /// Marks the end of a text block, so a following block is set apart.
    pub(crate) fn end_text_block(&mut self) {
        self.break_before_next_text = true;
    }

    /// Emits a non-text event; text after it starts fresh.
    pub(crate) fn push(&mut self, event: AgentEvent) {
        self.break_before_next_text = false;
        self.events.push(event);
    }

    /// Hands over the events gathered since the last call.
    pub(crate) fn take(&mut self) -> Vec<AgentEvent> {
        std::mem::take(&mut self.events)
    }
}

/// Helpers shared by the parsers' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{AgentEvent, AgentOutcome, CallUsage};
    use crate::money::Usage;

    pub(crate) fn usage(input: u64, output: u64, write: u64, read: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_write_tokens: write,
            cache_read_tokens: read,
        }
    }

    pub(crate) fn outcome(events: &[AgentEvent]) -> &AgentOutcome {
        match events.last() {
            Some(AgentEvent::Finished(outcome)) => outcome,
            other => panic!("last event is not Finished: {other:?}"),
        }
    }

    pub(crate) fn calls(events: &[AgentEvent]) -> Vec<&CallUsage> {
        let calls = events.iter().filter_map(|e| match e {
            AgentEvent::Call(call) => Some(call),
            _ => None,
        });
        calls.collect()
    }

    /// All text events joined, as a reader would show them.
    pub(crate) fn texts(events: &[AgentEvent]) -> String {
        let texts = events.iter().filter_map(|e| match e {
            AgentEvent::Text(text) => Some(text.as_str()),
            _ => None,
        });
        texts.collect()
    }

    /// The events' kinds, space-separated, to check their order at a glance.
    pub(crate) fn kinds(events: &[AgentEvent]) -> String {
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e {
                AgentEvent::Started { .. } => "started",
                AgentEvent::Text(_) => "text",
                AgentEvent::ToolCall { .. } => "tool",
                AgentEvent::FileEdit { .. } => "edit",
                AgentEvent::Command { .. } => "command",
                AgentEvent::Retry { .. } => "retry",
                AgentEvent::Call(_) => "call",
                AgentEvent::Finished(_) => "finished",
            })
            .collect();
        kinds.join(" ")
    }
}
