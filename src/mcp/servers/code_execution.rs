//! `code-execution`: run_python, run_node and run_bash, each in a fresh Docker container
//! (no network, 256 MiB, half a CPU, a process limit, read-only root with a writable
//! scratch dir, a timeout, capped output). Nothing is ever executed on the host.

use super::fail;
use crate::containers::{Engine, SandboxSpec, images::SANDBOX_IMAGE};
use crate::engine::tools::ExecReport;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Longest run allowed, whatever a caller asks.
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// Files and code sent into one run, at most.
const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Writes the caller's files into /scratch inside the container, then becomes the
/// interpreter. Runs as `python3 -I -c`, so nothing on the host is involved.
const BOOTSTRAP: &str = r#"
import json, os
spec = json.loads(os.environ.pop("ECCA_SANDBOX"))
os.chdir("/scratch")
for path, content in spec["files"].items():
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        f.write(content)
os.execv(spec["argv"][0], spec["argv"])
"#;

#[derive(Clone)]
pub struct CodeExecution {
    engine: Arc<OnceCell<Engine>>,
    image: String,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct SandboxFile {
    /// Relative path inside the scratch directory.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunArgs {
    /// The program to run.
    pub code: String,
    /// The file name the program is saved as (default main.py / main.js / main.sh).
    #[serde(default)]
    pub filename: Option<String>,
    /// Other files the program needs (modules it imports, test data).
    #[serde(default)]
    pub files: Vec<SandboxFile>,
    /// Seconds before the run is killed (default 30, at most 300).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

impl CodeExecution {
    pub fn new(image: Option<String>) -> Self {
        CodeExecution {
            engine: Arc::new(OnceCell::new()),
            image: image.unwrap_or_else(|| SANDBOX_IMAGE.to_string()),
            tool_router: Self::tool_router(),
        }
    }

    async fn run(
        &self,
        interpreter: &str,
        default_name: &str,
        args: RunArgs,
    ) -> Result<Json<ExecReport>, String> {
        let filename = args.filename.unwrap_or_else(|| default_name.to_string());
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for f in args.files {
            if !safe_relative(&f.path) {
                return fail(format!(
                    "file path {:?} must be relative and stay inside the scratch directory",
                    f.path
                ));
            }
            files.insert(f.path, f.content);
        }
        if !safe_relative(&filename) {
            return fail(format!(
                "filename {filename:?} must be relative and stay inside the scratch directory"
            ));
        }
        files.insert(filename.clone(), args.code);
        let size: usize = files.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_INPUT_BYTES {
            return fail(format!(
                "the code and files come to {size} bytes; a run takes at most {MAX_INPUT_BYTES}"
            ));
        }
        let timeout = args.timeout_secs.unwrap_or(30).clamp(1, MAX_TIMEOUT_SECS);
        let spec_json =
            serde_json::json!({"files": files, "argv": [interpreter, filename]}).to_string();
        let mut spec = SandboxSpec::new(
            &self.image,
            vec![
                "/usr/bin/python3".into(),
                "-I".into(),
                "-c".into(),
                BOOTSTRAP.into(),
            ],
        );
        spec.env = vec![
            format!("ECCA_SANDBOX={spec_json}"),
            "HOME=/scratch".into(),
            "PATH=/usr/bin:/bin".into(),
        ];
        spec.timeout = Duration::from_secs(timeout);
        let engine = self
            .engine
            .get_or_try_init(Engine::connect)
            .await
            .map_err(|e| e.0)?;
        let out = engine.run_sandboxed(&spec).await.map_err(|e| e.0)?;
        Ok(Json(ExecReport {
            container: out.container_id.clone(),
            passed: out.exit_code == Some(0),
            stdout: out.stdout,
            stderr: if out.timed_out {
                format!("{}\n[killed by ecca after {timeout} s]\n", out.stderr)
            } else {
                out.stderr
            },
            exit_code: out.exit_code,
            duration_ms: out.duration.as_millis() as u64,
            timed_out: out.timed_out,
            oom_killed: out.oom_killed,
            output_truncated: out.output_truncated,
        }))
    }
}

#[tool_router]
impl CodeExecution {
    #[tool(
        description = "Run Python 3 code in a fresh sandbox container (no network, 256 MiB, half a CPU)."
    )]
    pub async fn run_python(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/usr/bin/python3", "main.py", args).await
    }

    #[tool(
        description = "Run JavaScript with Node.js in a fresh sandbox container (no network, 256 MiB, half a CPU)."
    )]
    pub async fn run_node(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/usr/bin/node", "main.js", args).await
    }

    #[tool(
        description = "Run a bash script in a fresh sandbox container (no network, 256 MiB, half a CPU)."
    )]
    pub async fn run_bash(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/bin/bash", "main.sh", args).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeExecution {
    fn get_info(&self) -> ServerConfig {
        super::server_info("code-execution", None)
    }
}
