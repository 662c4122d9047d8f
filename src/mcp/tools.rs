//! The engine's tools, served by MCP servers. Each engine step maps to one tool call; a
//! server that is not configured, cannot be reached or has nothing installed for the
//! language makes the step `skipped` with that reason; a tool that ran and failed makes it
//! `failed`, and so does a call cut before its answer that may or may not have run (the
//! error says so and what to check; it is never sent again silently).

use super::client::{CallError, McpClients};
use crate::engine::tools::{
    Diagnostic, ExecReport, LintReport, Snippet, ToolOutcome, ToolReply, ToolRequest, Tools,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Errors a server marks as "this step could not run here" rather than "the code failed".
pub const UNAVAILABLE: &str = "unavailable: ";

pub struct McpTools {
    clients: McpClients,
}

impl McpTools {
    pub fn new(clients: McpClients) -> Self {
        McpTools { clients }
    }

    pub fn clients(&self) -> &McpClients {
        &self.clients
    }
}

fn skipped(reason: impl Into<String>) -> ToolOutcome {
    ToolOutcome::Skipped {
        reason: reason.into(),
    }
}

/// The tool call for a request, or why the step cannot run.
fn plan(request: &ToolRequest) -> Result<(&'static str, Value), String> {
    if let Some(planned) = super::repo_tools::plan(request) {
        return planned;
    }
    Ok(match request {
        ToolRequest::SearchSnippets {
            client_id,
            query,
            language,
            limit,
        } => (
            "search_similar",
            json!({"client_id": client_id, "query": query, "language": language, "limit": limit}),
        ),
        ToolRequest::StoreSnippet {
            client_id,
            language,
            description,
            code,
            quality,
        } => (
            "store_snippet",
            json!({"client_id": client_id, "language": language, "description": description, "code": code, "quality": quality}),
        ),
        ToolRequest::Lint {
            language,
            filename,
            code,
        } => match language.as_str() {
            "typescript" => (
                "lint_typescript",
                json!({"code": code, "filename": filename, "fix": false}),
            ),
            "python" => ("lint_python", json!({"code": code, "filename": filename})),
            "javascript" => ("lint_js", json!({"code": code, "filename": filename})),
            other => return Err(format!("no linter for {other}")),
        },
        ToolRequest::FixLint {
            language,
            filename,
            code,
        } if language == "typescript" => (
            "lint_typescript",
            json!({"code": code, "filename": filename, "fix": true}),
        ),
        ToolRequest::FixLint {
            language,
            filename,
            code,
        } => (
            "fix_lint",
            json!({"language": language, "code": code, "filename": filename}),
        ),
        ToolRequest::Execute {
            language,
            filename,
            code,
        } if language == "typescript" => (
            "run_typescript",
            json!({"code": code, "filename": filename}),
        ),
        ToolRequest::RunTests {
            language,
            filename,
            code,
            test_filename,
            tests,
        } if language == "typescript" => (
            "run_typescript",
            json!({"code": tests, "filename": test_filename, "files": [{"path": filename, "content": code}], "test": true}),
        ),
        ToolRequest::Execute {
            language,
            filename,
            code,
        } => (
            runner(language)?,
            json!({"code": code, "filename": filename}),
        ),
        ToolRequest::RunTests {
            language,
            filename,
            code,
            test_filename,
            tests,
        } => (
            runner(language)?,
            json!({"code": tests, "filename": test_filename, "files": [{"path": filename, "content": code}]}),
        ),
        other => return Err(format!("{} has no tool mapping", other.step())),
    })
}

fn runner(language: &str) -> Result<&'static str, String> {
    match language {
        "python" => Ok("run_python"),
        "javascript" => Ok("run_node"),
        "bash" => Ok("run_bash"),
        other => Err(format!("the sandbox has no runtime for {other}")),
    }
}

fn reply(request: &ToolRequest, v: Value) -> Result<ToolReply, String> {
    if let Some(read) = super::repo_tools::reply(request, &v) {
        return read;
    }
    let bad = |e: serde_json::Error| {
        format!(
            "the {} server's reply could not be read: {e}",
            request.server()
        )
    };
    Ok(match request {
        ToolRequest::SearchSnippets { .. } => {
            let snippets: Vec<Snippet> = v["snippets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| Snippet {
                            language: s["language"].as_str().unwrap_or("").into(),
                            description: s["description"].as_str().unwrap_or("").into(),
                            code: s["code"].as_str().unwrap_or("").into(),
                            similarity: s["similarity"].as_f64().unwrap_or(0.0),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ToolReply::Snippets { snippets }
        }
        ToolRequest::StoreSnippet { .. } => ToolReply::Stored,
        ToolRequest::Lint { .. } | ToolRequest::FixLint { .. } => {
            if v["ran"] == Value::Bool(false) {
                return Err(format!(
                    "{UNAVAILABLE}{}",
                    v["note"].as_str().unwrap_or("no linter ran")
                ));
            }
            let diagnostics: Vec<Diagnostic> =
                serde_json::from_value(v["diagnostics"].clone()).map_err(bad)?;
            ToolReply::Lint(LintReport {
                linter: v["linter"].as_str().unwrap_or("").into(),
                diagnostics,
                fixed_code: v["fixed_code"].as_str().map(str::to_string),
            })
        }
        ToolRequest::Execute { .. } | ToolRequest::RunTests { .. } => {
            ToolReply::Exec(serde_json::from_value::<ExecReport>(v).map_err(bad)?)
        }
        other => return Err(format!("{} has no reply mapping", other.step())),
    })
}

impl Tools for McpTools {
    fn call<'a>(&'a self, request: &'a ToolRequest) -> BoxFuture<'a, ToolOutcome> {
        Box::pin(async move {
            let server = request.server();
            if !self.clients.has(server) {
                return skipped(format!("no {server} server configured"));
            }
            let (tool, args) = match plan(request) {
                Ok(p) => p,
                Err(why) => return skipped(why),
            };
            match self.clients.call(server, tool, args).await {
                Ok(v) => match reply(request, v) {
                    Ok(r) => ToolOutcome::Done { reply: r },
                    Err(why) if why.starts_with(UNAVAILABLE) => {
                        skipped(why.trim_start_matches(UNAVAILABLE))
                    }
                    Err(error) => ToolOutcome::Failed { error },
                },
                Err(CallError::Tool(msg)) if msg.starts_with(UNAVAILABLE) => {
                    skipped(msg.trim_start_matches(UNAVAILABLE))
                }
                Err(e @ (CallError::Unreachable { .. } | CallError::Unknown(_))) => {
                    skipped(e.to_string())
                }
                Err(e) => ToolOutcome::Failed {
                    error: e.to_string(),
                },
            }
        })
    }

    fn describe(&self) -> String {
        format!("MCP tool servers: {}", self.clients.names().join(", "))
    }

    fn tool_stats(&self) -> Vec<crate::engine::tools::ToolCallStats> {
        self.clients.tool_stats()
    }
}
