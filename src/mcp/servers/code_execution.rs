//! `code-execution`: run_python, run_node and run_bash, each in a fresh Docker container
//! (no network, 256 MiB, half a CPU, a process limit, read-only root with a writable
//! scratch dir, a timeout, capped output). Nothing is ever executed on the host.
//!
//! run_in_repo runs a shell command on a copy of a run's worktree (a directory under the
//! worktrees directory the server is given): the worktree is mounted read-only and copied
//! into the scratch dir first, so the repository's checks never change it.
//!
//! A run's container is killed when its call is cancelled (`notifications/cancelled`) and
//! when the server shuts down; every in-flight call is still answered. A server sweeps the
//! sandboxes that killed processes left behind when it starts.

use super::fail;
use super::linter::LintResult;
use super::typescript;
use crate::containers::{Engine, SandboxSpec, images::SANDBOX_IMAGE};
use crate::engine::tools::ExecReport;
use crate::mcp::tools::UNAVAILABLE;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;

/// Longest run allowed, whatever a caller asks.
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// Files and code sent into one run, at most (1 MiB).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// How long a shutdown waits for in-flight calls to stop their containers and answer.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);
/// How long a start waits for the sweep of leftover sandboxes.
const SWEEP_WAIT: Duration = Duration::from_secs(10);
/// How long a finished call waits for rmcp to take its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct CodeExecution {
    engine: Arc<OnceCell<Engine>>,
    image: String,
    /// Where run_in_repo finds worktrees; None refuses it.
    worktrees: Option<PathBuf>,
    /// Fires when the server shuts down: new calls are refused, running ones stopped.
    closing: CancellationToken,
    /// How many calls are in flight.
    in_flight: Arc<watch::Sender<usize>>,
    tool_router: ToolRouter<Self>,
}

/// Counts a call as in flight for as long as it lives.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn enter(counter: &Arc<watch::Sender<usize>>) -> InFlight {
        counter.send_modify(|n| *n += 1);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
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
            worktrees: None,
            closing: CancellationToken::new(),
            in_flight: Arc::new(watch::channel(0).0),
            tool_router: Self::tool_router(),
        }
    }

    /// Lets run_in_repo run commands on the worktrees directly under `dir`. The Docker
    /// engine must see `dir` at the same path (a local engine does).
    pub fn with_worktrees(mut self, dir: PathBuf) -> Self {
        self.worktrees = Some(dir);
        self
    }

    /// The worktree directory `name` stands for: one plain path component naming a
    /// directory (not a link) directly under the worktrees directory.
    fn worktree_dir(&self, name: &str) -> Result<PathBuf, String> {
        let Some(root) = &self.worktrees else {
            return Err("this code-execution server has no worktrees directory; start it with --worktrees DIR".into());
        };
        let plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "worktree {name:?} must be one directory name such as T-0042-r1, with no / or .."
            ));
        }
        let dir = root.join(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(format!(
                "worktree {name:?} under {} is not a directory; pass the name of a run's worktree",
                root.display()
            )),
            Err(e) => Err(format!(
                "there is no worktree {name:?} under {} ({e}); pass the name of an existing run's worktree",
                root.display()
            )),
        }
    }

    async fn engine(&self) -> Result<&Engine, String> {
        self.engine
            .get_or_try_init(Engine::connect)
            .await
            .map_err(|e| e.0)
    }

    /// Removes the sandboxes that processes killed mid-run left behind (never one another
    /// live process is running). Without a Docker engine there is nothing to sweep; an
    /// engine that does not answer within 10 s is not waited for.
    pub async fn sweep_leftovers(&self) -> usize {
        let sweep = async {
            match self.engine().await {
                Ok(engine) => engine.sweep_sandboxes().await,
                Err(e) => {
                    tracing::debug!("no sandbox sweep: {e}");
                    0
                }
            }
        };
        match tokio::time::timeout(SWEEP_WAIT, sweep).await {
            Ok(swept) => {
                if swept > 0 {
                    tracing::info!("removed {swept} sandbox containers left behind");
                }
                swept
            }
            Err(_) => {
                tracing::warn!(
                    "the Docker engine did not answer the sandbox sweep within {} s",
                    SWEEP_WAIT.as_secs()
                );
                0
            }
        }
    }

    /// Refuses new calls, stops the runs in flight (their containers are killed and
    /// removed, and their calls answered that the server is shutting down), and returns
    /// once none is left, or after 30 s.
    pub async fn shutdown(&self) {
        self.closing.cancel();
        let mut count = self.in_flight.subscribe();
        // The answers themselves are written before the connections close by
        // `Running::stop`, which waits for every response in flight.
        let drained = tokio::time::timeout(SHUTDOWN_WAIT, count.wait_for(|n| *n == 0)).await;
        if drained.is_err() {
            tracing::warn!(
                "code-execution shut down with calls still in flight after {} s",
                SHUTDOWN_WAIT.as_secs()
            );
        }
    }

    async fn run(
        &self,
        interpreter: &str,
        default_name: &str,
        args: RunArgs,
        cancelled: CancellationToken,
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
                "the code and files come to {size} bytes, over the 1 MiB ({MAX_INPUT_BYTES} bytes) one run takes; send fewer or smaller files"
            ));
        }
        let timeout = args.timeout_secs.unwrap_or(30).clamp(1, MAX_TIMEOUT_SECS);
        let mut spec = SandboxSpec::new(&self.image, vec![interpreter.into(), filename]);
        spec.files = files;
        spec.env = vec!["HOME=/scratch".into(), "PATH=/usr/bin:/bin".into()];
        spec.timeout = Duration::from_secs(timeout);
        self.execute(spec, cancelled).await
    }

    /// Runs `spec`, stopped when the call is cancelled or the server shuts down.
    async fn execute(
        &self,
        spec: SandboxSpec,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        // Stopped by whichever comes first: the caller cancelling, or the server closing.
        let stop = self.closing.child_token();
        let _stop_when_done = stop.clone().drop_guard();
        let in_flight = InFlight::enter(&self.in_flight);
        tokio::spawn({
            let stop = stop.clone();
            async move {
                // Counted in flight until rmcp has taken the answer to send (it then cancels
                // the call's token), so a shutdown never closes the connection first.
                let _in_flight = in_flight;
                tokio::select! {
                    _ = cancelled.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {
                        let _ = tokio::time::timeout(ANSWER_WAIT, cancelled.cancelled()).await;
                    }
                }
            }
        });
        if self.closing.is_cancelled() {
            return fail("the code-execution server is shutting down; call again once it is back");
        }
        let timeout = spec.timeout.as_secs();
        let engine = self.engine().await?;
        let out = engine.run_sandboxed(&spec, &stop).await.map_err(|e| e.0)?;
        if out.stopped {
            let why = if self.closing.is_cancelled() {
                "the code-execution server is shutting down"
            } else {
                "the call was cancelled"
            };
            return fail(format!(
                "{why}; the run was stopped after {} ms and its container {} removed",
                out.duration.as_millis(),
                out.container_id
            ));
        }
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TsRunArgs {
    /// The program (or, with `test`, the test file) to compile and run.
    pub code: String,
    /// The file name `code` is saved as (`components/TipSplitter.tsx`, `tip.test.ts`).
    pub filename: String,
    /// Other files: the modules the code imports.
    #[serde(default)]
    pub files: Vec<SandboxFile>,
    /// Run node's test runner over the compiled project instead of running `filename`.
    #[serde(default)]
    pub test: bool,
    /// Seconds before the run is killed (default 120, at most 300).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TsLintArgs {
    pub code: String,
    /// The file name the code is saved as (`.ts` or `.tsx`).
    pub filename: String,
    /// Apply eslint's fixes and return the fixed code.
    #[serde(default)]
    pub fix: bool,
}

/// TypeScript's compiler needs more than the default 256 MiB and half a CPU to be quick.
const TS_MEMORY_BYTES: i64 = 768 * 1024 * 1024;
const TS_NANO_CPUS: i64 = 1_000_000_000;

impl CodeExecution {
    /// A TypeScript job on `files` (project files added) in a fresh sandbox; a sandbox image
    /// without the node tools makes the call unavailable (the step says `skipped`).
    async fn typescript(
        &self,
        mut files: BTreeMap<String, String>,
        job: typescript::Job<'_>,
        timeout_secs: u64,
        cancelled: CancellationToken,
    ) -> Result<ExecReport, String> {
        for path in files.keys() {
            if !safe_relative(path) {
                return fail(format!(
                    "file path {path:?} must be relative and stay inside the scratch directory"
                ));
            }
        }
        typescript::add_project_files(&mut files);
        let size: usize = files.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_INPUT_BYTES {
            return fail(format!(
                "the code and files come to {size} bytes, over the 1 MiB ({MAX_INPUT_BYTES} bytes) one run takes; send fewer or smaller files"
            ));
        }
        let argv = vec!["/bin/bash".into(), "-c".into(), typescript::script(&job)];
        let mut spec = SandboxSpec::new(&self.image, argv);
        spec.files = files;
        spec.env = vec!["HOME=/scratch".into(), "PATH=/usr/bin:/bin".into()];
        spec.timeout = Duration::from_secs(timeout_secs.clamp(1, MAX_TIMEOUT_SECS));
        spec.memory_bytes = TS_MEMORY_BYTES;
        spec.nano_cpus = TS_NANO_CPUS;
        let Json(report) = self.execute(spec, cancelled).await?;
        if report.exit_code == Some(typescript::MISSING_TOOLS_EXIT) {
            return Err(format!(
                "{UNAVAILABLE}{}",
                report.stderr.trim().trim_start_matches(UNAVAILABLE)
            ));
        }
        Ok(report)
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RepoRunArgs {
    /// The run's worktree: one directory name under the server's worktrees directory
    /// (`T-0042-r1`).
    pub worktree: String,
    /// The shell command to run at the top of the project (`python3 -m unittest discover -q`).
    pub command: String,
    /// Seconds before the run is killed (default and most 300).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Room for a copy of a repository and what its checks write, in the scratch dir.
const REPO_SCRATCH_MIB: u32 = 128;

#[tool_router]
impl CodeExecution {
    #[tool(
        description = "Run a shell command (sh -c) on a copy of a run's worktree in a fresh sandbox container (no network, 256 MiB, half a CPU, 128 MiB of scratch space). The worktree is mounted read-only and copied without .git, so the command cannot change it; exit 127 means the tool is not in the sandbox image. Needs the Docker engine to see the server's worktrees directory at the same path.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_in_repo(
        &self,
        Parameters(args): Parameters<RepoRunArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        let dir = self.worktree_dir(&args.worktree)?;
        if args.command.trim().is_empty() {
            return fail("the command is empty; pass the shell command to run in the worktree");
        }
        if args.command.len() > MAX_INPUT_BYTES {
            return fail(format!(
                "the command is {} bytes, over the 1 MiB one run takes",
                args.command.len()
            ));
        }
        let timeout = args
            .timeout_secs
            .unwrap_or(MAX_TIMEOUT_SECS)
            .clamp(1, MAX_TIMEOUT_SECS);
        let argv = vec!["/bin/sh".into(), "-c".into(), args.command];
        let mut spec = SandboxSpec::new(&self.image, argv);
        // HOME outside the project copy, so tools' caches do not show up in it.
        spec.env = vec!["HOME=/tmp".into(), "PATH=/usr/bin:/bin".into()];
        spec.timeout = Duration::from_secs(timeout);
        spec.source = Some(dir);
        spec.scratch_mib = REPO_SCRATCH_MIB;
        self.execute(spec, cancelled).await
    }

    #[tool(
        description = "Compile TypeScript (and TSX: React Native components against ecca's stand-in of its primitives) with tsc in strict mode in a fresh sandbox container (no network, 768 MiB, one CPU), then run `filename`, or with `test` run node's test runner over the compiled tests. A tsconfig.json and an eslint config are added unless given. Unavailable when the sandbox image has no node tools (`ecca images build`).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_typescript(
        &self,
        Parameters(args): Parameters<TsRunArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        let mut files: BTreeMap<String, String> = args
            .files
            .into_iter()
            .map(|f| (f.path, f.content))
            .collect();
        files.insert(args.filename.clone(), args.code);
        let job = if args.test {
            typescript::Job::Test
        } else {
            typescript::Job::Run {
                file: &args.filename,
            }
        };
        let timeout = args.timeout_secs.unwrap_or(120);
        self.typescript(files, job, timeout, cancelled)
            .await
            .map(Json)
    }

    #[tool(
        description = "Lint TypeScript or TSX in a fresh sandbox container: tsc --noEmit in strict mode and eslint with typescript-eslint's recommended rules; with `fix`, eslint's fixes are applied and the fixed code returned. Unavailable when the sandbox image has no node tools (`ecca images build`).",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn lint_typescript(
        &self,
        Parameters(args): Parameters<TsLintArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<LintResult>, String> {
        let mut files = BTreeMap::new();
        files.insert(args.filename.clone(), args.code.clone());
        let job = typescript::Job::Lint {
            file: &args.filename,
            fix: args.fix,
        };
        let report = self.typescript(files, job, 120, cancelled).await?;
        let out = report.stdout;
        let (tsc_part, rest) = out.split_once(typescript::ESLINT_MARK).ok_or_else(|| {
            format!(
                "the lint run printed no eslint report: {}{}",
                out, report.stderr
            )
        })?;
        let (eslint_part, fixed) = match rest.split_once(typescript::FIXED_MARK) {
            Some((e, f)) => (e, Some(f.strip_prefix('\n').unwrap_or(f).to_string())),
            None => (rest, None),
        };
        let mut diagnostics = typescript::tsc_diagnostics(tsc_part);
        diagnostics.extend(typescript::eslint_diagnostics(eslint_part, &args.filename)?);
        Ok(Json(LintResult {
            linter: format!(
                "tsc {} + eslint {} (typescript-eslint), in the sandbox",
                pinned("typescript"),
                pinned("eslint")
            ),
            ran: true,
            diagnostics,
            fixed_code: if args.fix {
                fixed.or(Some(args.code))
            } else {
                None
            },
            note: None,
        }))
    }

    #[tool(
        description = "Run Python 3 code in a fresh sandbox container (no network, 256 MiB, half a CPU; code and files up to 1 MiB).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_python(
        &self,
        Parameters(args): Parameters<RunArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/usr/bin/python3", "main.py", args, cancelled)
            .await
    }

    #[tool(
        description = "Run JavaScript with Node.js in a fresh sandbox container (no network, 256 MiB, half a CPU; code and files up to 1 MiB).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_node(
        &self,
        Parameters(args): Parameters<RunArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/usr/bin/node", "main.js", args, cancelled).await
    }

    #[tool(
        description = "Run a bash script in a fresh sandbox container (no network, 256 MiB, half a CPU; code and files up to 1 MiB).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn run_bash(
        &self,
        Parameters(args): Parameters<RunArgs>,
        cancelled: CancellationToken,
    ) -> Result<Json<ExecReport>, String> {
        self.run("/bin/bash", "main.sh", args, cancelled).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeExecution {
    fn get_info(&self) -> ServerConfig {
        super::server_info("code-execution", None)
    }
}

/// The pinned version of a node tool.
fn pinned(package: &str) -> &'static str {
    crate::containers::node_tools::PINS
        .iter()
        .find(|(p, _)| *p == package)
        .map(|(_, v)| *v)
        .unwrap_or("?")
}
