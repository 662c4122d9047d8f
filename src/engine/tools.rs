//! The one door to tools. The engine's steps (retrieve, lint, execute, test, store) reach
//! tools only through [`Tools`]; the production implementation is the MCP client. Where no
//! server is configured for a step, the step comes back `Skipped` with the reason: never a
//! silent pass.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum ToolRequest {
    SearchSnippets {
        client_id: String,
        query: String,
        language: String,
        limit: u32,
    },
    Lint {
        language: String,
        filename: String,
        code: String,
    },
    FixLint {
        language: String,
        filename: String,
        code: String,
    },
    Execute {
        language: String,
        filename: String,
        code: String,
    },
    RunTests {
        language: String,
        filename: String,
        code: String,
        test_filename: String,
        tests: String,
    },
    StoreSnippet {
        client_id: String,
        language: String,
        description: String,
        code: String,
        quality: f64,
    },
    /// The files and top-level symbols of a run's worktree (code-context).
    RepoStructure { worktree: String },
    /// Lines of a run's worktree matching a regular expression (code-context).
    SearchCode {
        worktree: String,
        pattern: String,
        max_results: u32,
    },
    /// One file of a run's worktree (code-context).
    ReadFile { worktree: String, path: String },
    /// A unified diff applied all-or-none to a run's worktree (code-assistant); paths in
    /// the headers are relative to the worktree.
    ApplyDiff { worktree: String, diff: String },
    /// One of the repository's checks, run in the sandbox on a copy of the worktree
    /// (code-execution `run_in_repo`). `kind` is `smoke`, `setup`, `lint`, `test` or
    /// `criterion`.
    RunCheck {
        worktree: String,
        kind: String,
        command: String,
        timeout_secs: u64,
    },
}

impl ToolRequest {
    /// The MCP server that serves this request.
    pub fn server(&self) -> &'static str {
        match self {
            ToolRequest::SearchSnippets { .. } | ToolRequest::StoreSnippet { .. } => "vector-code",
            // TypeScript is checked by its compiler and eslint in the sandbox, where the
            // node tools are.
            ToolRequest::Lint { language, .. } | ToolRequest::FixLint { language, .. }
                if language == "typescript" =>
            {
                "code-execution"
            }
            ToolRequest::Lint { .. } | ToolRequest::FixLint { .. } => "linter",
            ToolRequest::Execute { .. }
            | ToolRequest::RunTests { .. }
            | ToolRequest::RunCheck { .. } => "code-execution",
            ToolRequest::RepoStructure { .. }
            | ToolRequest::SearchCode { .. }
            | ToolRequest::ReadFile { .. } => "code-context",
            ToolRequest::ApplyDiff { .. } => "code-assistant",
        }
    }

    /// The step name operators see.
    pub fn step(&self) -> &'static str {
        match self {
            ToolRequest::SearchSnippets { .. } => "retrieve",
            ToolRequest::Lint { .. } => "lint",
            ToolRequest::FixLint { .. } => "fix_lint",
            ToolRequest::Execute { .. } => "execute",
            ToolRequest::RunTests { .. } => "test",
            ToolRequest::StoreSnippet { .. } => "store",
            ToolRequest::RepoStructure { .. } => "explore",
            ToolRequest::SearchCode { .. } => "search",
            ToolRequest::ReadFile { .. } => "read",
            ToolRequest::ApplyDiff { .. } => "apply",
            ToolRequest::RunCheck { kind, .. } => match kind.as_str() {
                "smoke" => "smoke check",
                "setup" => "setup",
                "lint" => "lint",
                "criterion" => "criterion",
                _ => "test",
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snippet {
    pub language: String,
    pub description: String,
    pub code: String,
    pub similarity: f64,
}

/// One finding of a linter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub code: String,
    pub message: String,
    /// `error` or `warning`.
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LintReport {
    /// Which linter ran (`ruff`, `eslint`, `node --check`).
    pub linter: String,
    pub diagnostics: Vec<Diagnostic>,
    /// The code after `fix_lint`, when fixes were applied.
    pub fixed_code: Option<String>,
}

/// How a sandboxed run ended; also what the code-execution server returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecReport {
    pub stdout: String,
    pub stderr: String,
    /// None when the run was killed (timeout or too much output).
    pub exit_code: Option<i64>,
    pub passed: bool,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub oom_killed: bool,
    #[serde(default)]
    pub output_truncated: bool,
    /// The container that ran it (removed afterwards).
    #[serde(default)]
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolReply {
    Snippets {
        snippets: Vec<Snippet>,
    },
    Lint(LintReport),
    Exec(ExecReport),
    Stored,
    /// What code-context said (a structure outline, search hits, a file), as text.
    Text {
        text: String,
        #[serde(default)]
        truncated: bool,
    },
    /// The files a diff changed.
    Applied {
        files: Vec<String>,
    },
    /// One of the repository's checks, classified (passed, failed, or skipped and why).
    Check(crate::repo::CheckOutcome),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ToolOutcome {
    Done {
        reply: ToolReply,
    },
    /// The step did not run; `reason` says why (no server configured, server down, …).
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl ToolOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            ToolOutcome::Done { .. } => "ok",
            ToolOutcome::Skipped { .. } => "skipped",
            ToolOutcome::Failed { .. } => "failed",
        }
    }
}

/// Everything the engine may ask of tools.
pub trait Tools: Send + Sync {
    fn call<'a>(&'a self, request: &'a ToolRequest) -> BoxFuture<'a, ToolOutcome>;
    /// One line for operators: which tool servers are behind this.
    fn describe(&self) -> String;
    /// What each tool's calls did so far (servers that keep no count: none).
    fn tool_stats(&self) -> Vec<ToolCallStats> {
        Vec::new()
    }
}

/// Calls of one tool of one server, as ecca's client counted them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCallStats {
    pub server: String,
    /// Where the calls went (an in-process server or a container's endpoint).
    pub url: String,
    pub tool: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// No tool servers: every step is skipped, saying which server it needed.
pub struct NoTools;

impl Tools for NoTools {
    fn call<'a>(&'a self, request: &'a ToolRequest) -> BoxFuture<'a, ToolOutcome> {
        let reason = format!("no {} server configured", request.server());
        Box::pin(async move { ToolOutcome::Skipped { reason } })
    }

    fn describe(&self) -> String {
        "no tool servers configured: retrieve, lint, execute, test and store are skipped".into()
    }
}
