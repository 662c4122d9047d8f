//! The operator's vocabulary: task statuses, stacks, sources and agent kinds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a task stands. `running` is refined by the agent state (planning, coding, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    AwaitingApproval,
    Revising,
    Delivering,
    Delivered,
    /// Stopped by a budget (the client's month) until the operator resumes it.
    Paused,
    Failed,
    Rejected,
    Cancelled,
    /// The process died while the run was in flight; `ecca resume` continues it.
    Interrupted,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 11] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::AwaitingApproval,
        TaskStatus::Revising,
        TaskStatus::Delivering,
        TaskStatus::Delivered,
        TaskStatus::Paused,
        TaskStatus::Failed,
        TaskStatus::Rejected,
        TaskStatus::Cancelled,
        TaskStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::AwaitingApproval => "awaiting_approval",
            TaskStatus::Revising => "revising",
            TaskStatus::Delivering => "delivering",
            TaskStatus::Delivered => "delivered",
            TaskStatus::Paused => "paused",
            TaskStatus::Failed => "failed",
            TaskStatus::Rejected => "rejected",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Nothing more happens to the task without a new attempt.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Delivered
                | TaskStatus::Failed
                | TaskStatus::Rejected
                | TaskStatus::Cancelled
        )
    }

    /// A process is (or was, before it died) working on the task.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            TaskStatus::Pending
                | TaskStatus::Running
                | TaskStatus::Revising
                | TaskStatus::Delivering
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSource {
    Manual,
    Upwork,
    Batch,
    Schedule,
}

impl TaskSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSource::Manual => "manual",
            TaskSource::Upwork => "upwork",
            TaskSource::Batch => "batch",
            TaskSource::Schedule => "schedule",
        }
    }
}

/// Which agent runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    Builtin,
    ClaudeCode,
    Codex,
    Aider,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Builtin => "builtin",
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Codex => "codex",
            AgentKind::Aider => "aider",
        }
    }
}

/// The stacks ecca knows how to write, lint and test.
pub const STACKS: &[&str] = &["python", "typescript", "javascript", "react-native", "bash"];

/// The language a stack's code files are written in.
pub fn language_of_stack(stack: &str) -> &'static str {
    match stack {
        "typescript" | "react-native" => "typescript",
        "javascript" | "node" => "javascript",
        "bash" | "shell" => "bash",
        _ => "python",
    }
}

/// File extension for a language.
pub fn extension_of(language: &str) -> &'static str {
    match language {
        "typescript" => "ts",
        "javascript" => "js",
        "bash" => "sh",
        _ => "py",
    }
}
