//! The one door to git. Every git process ecca starts for a client's repository starts
//! here: the `git` CLI run directly (never through a shell), with the user's global and
//! system configuration shut out, no prompts, no hooks, and one audit entry per process.
//!
//! This module works without a token: it reaches local and public remotes only. A push
//! with a client's token goes through the client-github MCP server, which alone decrypts
//! it; nothing here ever puts a credential in an argument.

use crate::repo::AuditEntry;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Most bytes of git's stderr kept for an error sentence; the rest is cut.
const STDERR_CAP: usize = 64 * 1024;

/// Most characters of git's first line kept in an audit outcome.
const OUTCOME_CAP: usize = 200;

/// What a git process printed on stdout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitOutput {
    pub stdout: String,
    /// Stdout was longer than the cap: `stdout` ends at the last whole line that fit.
    pub truncated: bool,
}

/// One git invocation, built up and then run. `run_git` covers the common case; this is
/// for the few calls that need an environment variable or a cap on stdout.
#[derive(Debug, Clone)]
pub struct Git<'a> {
    dir: Option<&'a Path>,
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    stdout_cap: Option<usize>,
}

impl<'a> Git<'a> {
    /// `git` run in `dir` (as `git -C dir`), or in the current directory when `None`.
    pub fn new(dir: Option<&'a Path>) -> Self {
        Git {
            dir,
            args: Vec::new(),
            envs: Vec::new(),
            stdout_cap: None,
        }
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for this process only (author identity, for instance).
    pub fn env(mut self, key: &'static str, value: &str) -> Self {
        self.envs.push((key, value.to_string()));
        self
    }

    /// Reads at most `bytes` of stdout, cut back to a line boundary; git is stopped once
    /// the cap is reached instead of being read to the end (a huge generated file).
    pub fn stdout_cap(mut self, bytes: usize) -> Self {
        self.stdout_cap = Some(bytes);
        self
    }

    /// Runs git and records one audit entry, whatever the result.
    pub async fn run(self, audit: &mut Vec<AuditEntry>) -> Result<GitOutput, String> {
        let full = self.full_args();
        let tool = format!("git {}", subcommand(&self.args));
        let started = crate::time::now_ms();
        let result = self.spawn_and_read(&full).await;
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {}", first_line(e)),
        };
        let joined = serde_json::to_string(&full).unwrap_or_default();
        audit.push(AuditEntry::finished(&tool, &joined, &outcome, started));
        result
    }

    /// The argument list as git receives it.
    fn full_args(&self) -> Vec<String> {
        let mut full = Vec::with_capacity(self.args.len() + 8);
        if let Some(d) = self.dir {
            full.push("-C".to_string());
            full.push(d.to_string_lossy().into_owned());
        }
        for setting in FIXED_SETTINGS {
            full.push("-c".to_string());
            full.push(setting.to_string());
        }
        full.extend(self.args.iter().cloned());
        full
    }

    async fn spawn_and_read(&self, full: &[String]) -> Result<GitOutput, String> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.args(full)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Variables a parent git (a hook, an IDE) may have set would point this process at
        // another repository or index.
        for var in INHERITED_GIT_VARS {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            // English messages, so that the sentences shown to the operator read the same
            // everywhere.
            .env("LC_ALL", "C")
            // A remote that stops sending is given up after a minute instead of hanging a
            // run forever.
            .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
            .env("GIT_HTTP_LOW_SPEED_TIME", "60");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let what = describe(self.dir, &self.args);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start git for {what}: {e}; install git"))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(format!("git for {what} started without its output pipes"));
        };
        // Stderr is drained alongside stdout: a process blocked on a full stderr pipe would
        // never finish stdout.
        let stderr_task = tokio::spawn(read_capped(stderr, STDERR_CAP));
        let (bytes, over_cap) = read_stdout(stdout, self.stdout_cap)
            .await
            .map_err(|e| format!("could not read git's output for {what}: {e}"))?;
        if over_cap {
            // Enough was read: git is stopped rather than left writing into a closed pipe.
            let _ = child.start_kill();
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("could not wait for git for {what}: {e}"))?;
        let err_bytes = stderr_task
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let stdout_text = String::from_utf8_lossy(&bytes).into_owned();
        if over_cap {
            return Ok(GitOutput {
                stdout: stdout_text,
                truncated: true,
            });
        }
        if !status.success() {
            // git says why on stderr for most commands but on stdout for some (`commit`
            // with nothing to commit), so both are shown.
            let stderr_text = String::from_utf8_lossy(&err_bytes);
            let said: Vec<&str> = [stderr_text.trim(), stdout_text.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let reason = if said.is_empty() {
                format!("git exited with {status} and said nothing")
            } else {
                said.join("\n")
            };
            return Err(format!("{what} failed: {reason}"));
        }
        Ok(GitOutput {
            stdout: stdout_text,
            truncated: false,
        })
    }
}

/// Settings every invocation runs with, whatever the repository's own configuration says:
/// paths printed as they are, no hooks (they would be commands ecca did not choose), no
/// signing prompt.
const FIXED_SETTINGS: &[&str] = &[
    "core.quotepath=off",
    "core.hooksPath=/dev/null",
    "commit.gpgsign=false",
    "tag.gpgsign=false",
    "advice.detachedHead=false",
];

const INHERITED_GIT_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_ASKPASS",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_PAGER",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE2_PERF",
];

/// Runs `git [-C dir] ARGS` and returns its stdout; records one audit entry.
pub async fn run_git(
    dir: Option<&Path>,
    args: &[&str],
    audit: &mut Vec<AuditEntry>,
) -> Result<String, String> {
    Git::new(dir).args(args).run(audit).await.map(|o| o.stdout)
}

/// Runs git and tells success from failure without treating failure as an error: for the
/// questions git answers with its exit code (`rev-parse --verify --quiet`).
pub async fn git_succeeds(dir: Option<&Path>, args: &[&str], audit: &mut Vec<AuditEntry>) -> bool {
    run_git(dir, args, audit).await.is_ok()
}

/// Resolves `rev` to a full commit sha, or `None` when there is no such commit.
pub async fn resolve_commit(dir: &Path, rev: &str, audit: &mut Vec<AuditEntry>) -> Option<String> {
    let spec = format!("{rev}^{{commit}}");
    run_git(
        Some(dir),
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
        audit,
    )
    .await
    .ok()
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty())
}

/// Refuses a branch name git would not accept, or one that could be read as an option.
pub async fn check_branch_name(
    dir: &Path,
    branch: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<(), String> {
    if branch.is_empty() || branch.starts_with('-') {
        return Err(format!(
            "{branch:?} is not a valid branch name; use a name such as agt/T-0001"
        ));
    }
    run_git(Some(dir), &["check-ref-format", "--branch", branch], audit)
        .await
        .map(|_| ())
        .map_err(|_| {
            format!("{branch:?} is not a valid branch name; use a name such as agt/T-0001")
        })
}

/// A full commit sha (40 hex digits, or 64 in a SHA-256 repository). Anything else is
/// refused before it reaches git, where it could be read as an option or a range.
pub fn is_full_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The subcommand as the audit names it: `commit`, `worktree add`.
fn subcommand(args: &[String]) -> String {
    // `-c NAME=VALUE` and `-C DIR` before the subcommand take the next argument.
    let mut words = Vec::new();
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if a == "-c" || a == "-C" {
            iter.next();
        } else if !a.starts_with('-') {
            words.push(a);
        }
    }
    let mut words = words.into_iter();
    match words.next() {
        Some(first)
            if matches!(
                first.as_str(),
                "worktree" | "remote" | "stash" | "submodule"
            ) =>
        {
            match words.next() {
                Some(second) => format!("{first} {second}"),
                None => first.clone(),
            }
        }
        Some(first) => first.clone(),
        None => String::new(),
    }
}

/// `git worktree add in /path` for error sentences.
fn describe(dir: Option<&Path>, args: &[String]) -> String {
    match dir {
        Some(d) => format!("git {} in {}", subcommand(args), d.display()),
        None => format!("git {}", subcommand(args)),
    }
}

/// The first line of git's reason, capped, for an audit outcome.
fn first_line(error: &str) -> String {
    let reason = error.split_once(" failed: ").map_or(error, |(_, r)| r);
    let line = reason.lines().next().unwrap_or("").trim();
    line.chars().take(OUTCOME_CAP).collect()
}

async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Reads stdout to the end, or up to `cap` bytes cut back to the last whole line; the flag
/// says the cap was reached.
async fn read_stdout<R: AsyncRead + Unpin>(
    mut reader: R,
    cap: Option<usize>,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(cap) = cap else {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).await?;
        return Ok((all, false));
    };
    let mut kept = Vec::new();
    // One byte past the cap tells "exactly the cap" from "more than the cap".
    let mut limited = (&mut reader).take(cap as u64 + 1);
    limited.read_to_end(&mut kept).await?;
    if kept.len() <= cap {
        return Ok((kept, false));
    }
    kept.truncate(cap);
    let end = kept.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    kept.truncate(end);
    Ok((kept, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subcommands_are_named_with_their_verb() {
        assert_eq!(
            subcommand(&strings(&["worktree", "add", "-B", "x"])),
            "worktree add"
        );
        assert_eq!(
            subcommand(&strings(&["--no-pager", "commit", "-m", "x"])),
            "commit"
        );
        assert_eq!(
            subcommand(&strings(&["fetch", "--prune", "origin"])),
            "fetch"
        );
        assert_eq!(
            subcommand(&strings(&["-c", "checkout.workers=0", "worktree", "add"])),
            "worktree add"
        );
    }

    #[test]
    fn outcome_is_the_first_line_of_gits_reason() {
        let err = "git push in /tmp/x failed: error: failed to push\nhint: pull first";
        assert_eq!(first_line(err), "error: failed to push");
    }

    #[test]
    fn only_full_hex_shas_pass() {
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha("HEAD"));
        assert!(!is_full_sha(&format!("-{}", "a".repeat(39))));
    }

    #[tokio::test]
    async fn capped_stdout_ends_on_a_line_boundary() {
        let text: &[u8] = b"one\ntwo\nthree\n";
        let (kept, over) = read_stdout(text, Some(10)).await.unwrap_or_default();
        assert!(over);
        assert_eq!(kept, b"one\ntwo\n");
        let (all, over) = read_stdout(text, Some(14)).await.unwrap_or_default();
        assert!(!over);
        assert_eq!(all, text);
    }
}
