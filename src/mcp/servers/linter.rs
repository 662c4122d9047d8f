//! `linter`: lint_python (ruff), lint_js (eslint when installed, otherwise `node --check`
//! syntax checks, saying which ran) and fix_lint. Linters only parse code; none of it is run.

use super::fail;
use crate::engine::tools::Diagnostic;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

#[derive(Clone)]
pub struct Linter {
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LintArgs {
    pub code: String,
    /// The file name the code belongs to (default main.py / main.js).
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FixArgs {
    /// `python`, `javascript` or `typescript`.
    pub language: String,
    pub code: String,
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LintResult {
    /// Which linter ran, with its version (`ruff 0.17.6`, `node --check v20.20.2`).
    pub linter: String,
    /// False when no linter for the language is installed; `note` says what to install.
    pub ran: bool,
    pub diagnostics: Vec<Diagnostic>,
    /// The code after fixes (fix_lint only).
    pub fixed_code: Option<String>,
    pub note: Option<String>,
}

fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs a program with `input` on stdin in an empty directory (so no project config is
/// picked up) and returns (exit code, stdout, stderr).
async fn run(
    program: &PathBuf,
    args: &[&str],
    input: &str,
    dir: &std::path::Path,
) -> Result<(i32, String, String), String> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| format!("could not send code to the linter: {e}"))?;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| "the linter took more than 60 s".to_string())?
        .map_err(|e| format!("the linter failed: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn version(program: &PathBuf, name: &str) -> String {
    match tokio::process::Command::new(program)
        .arg("--version")
        .output()
        .await
    {
        Ok(o) => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.starts_with(name) {
                v
            } else {
                format!("{name} {v}")
            }
        }
        Err(_) => name.to_string(),
    }
}

fn scratch() -> Result<tempfile::TempDir, String> {
    tempfile::tempdir()
        .map_err(|e| format!("could not make a scratch directory for the linter: {e}"))
}

fn ruff() -> Result<PathBuf, String> {
    find("ruff").ok_or_else(|| {
        "ruff is not installed on the linter's machine; install it (pip install ruff)".to_string()
    })
}

/// Parses `ruff check --output-format json`.
fn ruff_diagnostics(json: &str, file: &str) -> Result<Vec<Diagnostic>, String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("ruff's report could not be read: {e}"))?;
    Ok(items
        .iter()
        .map(|d| {
            let code = d["code"].as_str().unwrap_or("syntax").to_string();
            // Syntax errors and pyflakes findings (undefined names, unused imports) are
            // errors; style findings are warnings.
            let severity = if code == "syntax" || code.starts_with("E9") || code.starts_with('F') {
                "error"
            } else {
                "warning"
            };
            Diagnostic {
                file: file.to_string(),
                line: d["location"]["row"].as_u64().unwrap_or(0) as u32,
                column: d["location"]["column"].as_u64().unwrap_or(0) as u32,
                code,
                message: d["message"].as_str().unwrap_or("").to_string(),
                severity: severity.into(),
            }
        })
        .collect())
}

/// Parses `node --check`'s report of a syntax error: `FILE:LINE`, the line, a caret, then
/// `SyntaxError: message`.
fn node_diagnostics(stderr: &str, file: &str) -> Vec<Diagnostic> {
    let lines: Vec<&str> = stderr.lines().collect();
    let line_no = lines
        .first()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let column = lines
        .get(2)
        .map(|caret| caret.find('^').map(|c| c as u32 + 1).unwrap_or(0))
        .unwrap_or(0);
    let message = lines
        .iter()
        .find(|l| l.contains("Error:"))
        .map(|l| l.trim().to_string());
    match message {
        Some(message) => vec![Diagnostic {
            file: file.into(),
            line: line_no,
            column,
            code: message
                .split(':')
                .next()
                .unwrap_or("SyntaxError")
                .to_string(),
            message,
            severity: "error".into(),
        }],
        None => vec![],
    }
}

impl Linter {
    pub fn new() -> Self {
        Linter {
            tool_router: Self::tool_router(),
        }
    }

    async fn python(&self, code: &str, file: &str, fix: bool) -> Result<LintResult, String> {
        let ruff = ruff()?;
        let dir = scratch()?;
        let mut fixed = None;
        if fix {
            let (_, out, err) = run(
                &ruff,
                &[
                    "check",
                    "--isolated",
                    "--no-cache",
                    "--fix",
                    "--exit-zero",
                    "--quiet",
                    "--stdin-filename",
                    file,
                    "-",
                ],
                code,
                dir.path(),
            )
            .await?;
            if out.is_empty() && !err.is_empty() {
                return fail(format!("ruff could not fix the code: {}", err.trim()));
            }
            let (status, formatted, _) = run(
                &ruff,
                &[
                    "format",
                    "--isolated",
                    "--no-cache",
                    "--stdin-filename",
                    file,
                    "-",
                ],
                &out,
                dir.path(),
            )
            .await?;
            fixed = Some(if status == 0 { formatted } else { out });
        }
        let target = fixed.as_deref().unwrap_or(code);
        let (_, out, err) = run(
            &ruff,
            &[
                "check",
                "--isolated",
                "--no-cache",
                "--output-format",
                "json",
                "--exit-zero",
                "--stdin-filename",
                file,
                "-",
            ],
            target,
            dir.path(),
        )
        .await?;
        if out.trim().is_empty() {
            return fail(format!("ruff gave no report: {}", err.trim()));
        }
        Ok(LintResult {
            linter: version(&ruff, "ruff").await,
            ran: true,
            diagnostics: ruff_diagnostics(&out, file)?,
            fixed_code: fixed,
            note: None,
        })
    }

    async fn javascript(&self, code: &str, file: &str, fix: bool) -> Result<LintResult, String> {
        let dir = scratch()?;
        if let Some(eslint) = find("eslint") {
            let mut args = vec!["--format", "json", "--stdin", "--stdin-filename", file];
            if fix {
                args.push("--fix-dry-run");
            }
            let (_, out, err) = run(&eslint, &args, code, dir.path()).await?;
            let report: Vec<serde_json::Value> = serde_json::from_str(&out)
                .map_err(|_| format!("eslint gave no report: {}", err.trim()))?;
            let first = report.first().cloned().unwrap_or_default();
            let diagnostics = first["messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|d| Diagnostic {
                            file: file.into(),
                            line: d["line"].as_u64().unwrap_or(0) as u32,
                            column: d["column"].as_u64().unwrap_or(0) as u32,
                            code: d["ruleId"].as_str().unwrap_or("syntax").into(),
                            message: d["message"].as_str().unwrap_or("").into(),
                            severity: if d["severity"].as_u64() == Some(2) {
                                "error"
                            } else {
                                "warning"
                            }
                            .into(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let fixed = fix.then(|| first["output"].as_str().unwrap_or(code).to_string());
            return Ok(LintResult {
                linter: version(&eslint, "eslint").await,
                ran: true,
                diagnostics,
                fixed_code: fixed,
                note: None,
            });
        }
        if file.ends_with(".ts") || file.ends_with(".tsx") {
            return Ok(LintResult {
                linter: "none".into(),
                ran: false,
                diagnostics: vec![],
                fixed_code: fix.then(|| code.to_string()),
                note: Some("no TypeScript linter is installed; install eslint with typescript-eslint to lint .ts files".into()),
            });
        }
        let node = find("node").ok_or(
            "neither eslint nor node is installed on the linter's machine; install nodejs",
        )?;
        let path = dir
            .path()
            .join(file.rsplit('/').next().unwrap_or("main.js"));
        std::fs::write(&path, code)
            .map_err(|e| format!("could not write the code for node --check: {e}"))?;
        let name = path.to_string_lossy().into_owned();
        let (status, _, err) = run(&node, &["--check", &name], "", dir.path()).await?;
        let diagnostics = if status == 0 {
            vec![]
        } else {
            node_diagnostics(&err, file)
        };
        Ok(LintResult {
            linter: format!("node --check {}", version(&node, "").await.trim()),
            ran: true,
            diagnostics,
            fixed_code: fix.then(|| code.to_string()),
            note: Some(
                if fix {
                    "node --check finds syntax errors but fixes nothing; install eslint for fixes"
                } else {
                    "eslint is not installed: only syntax was checked"
                }
                .into(),
            ),
        })
    }
}

impl Default for Linter {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl Linter {
    #[tool(
        description = "Lint Python code with ruff; diagnostics with file, line, column, code, message, severity.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn lint_python(
        &self,
        Parameters(args): Parameters<LintArgs>,
    ) -> Result<Json<LintResult>, String> {
        let file = args.filename.unwrap_or_else(|| "main.py".into());
        self.python(&args.code, &file, false).await.map(Json)
    }

    #[tool(
        description = "Lint JavaScript with eslint when installed, otherwise check its syntax with node --check.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn lint_js(
        &self,
        Parameters(args): Parameters<LintArgs>,
    ) -> Result<Json<LintResult>, String> {
        let file = args.filename.unwrap_or_else(|| "main.js".into());
        self.javascript(&args.code, &file, false).await.map(Json)
    }

    #[tool(
        description = "Fix what the linter can fix; returns the fixed code and what remains.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn fix_lint(
        &self,
        Parameters(args): Parameters<FixArgs>,
    ) -> Result<Json<LintResult>, String> {
        match args.language.as_str() {
            "python" => self
                .python(
                    &args.code,
                    &args.filename.unwrap_or_else(|| "main.py".into()),
                    true,
                )
                .await
                .map(Json),
            "javascript" | "typescript" => {
                let default = if args.language == "typescript" {
                    "main.ts"
                } else {
                    "main.js"
                };
                self.javascript(
                    &args.code,
                    &args.filename.unwrap_or_else(|| default.into()),
                    true,
                )
                .await
                .map(Json)
            }
            other => fail(format!(
                "no linter for {other:?}; use python, javascript or typescript"
            )),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Linter {
    fn get_info(&self) -> ServerConfig {
        super::server_info("linter", None)
    }
}
