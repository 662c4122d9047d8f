//! A repository's own checks, run by the code-execution server's run_in_repo on a worktree
//! mounted read-only in the real sandbox. These tests need Docker and the ecca-sandbox
//! image; without them they fail and say so.

use crate::common;

use ecca::config::ClientConfig;
use ecca::engine::tools::ExecReport;
use ecca::mcp::client::McpClients;
use ecca::mcp::servers::{self, code_execution::CodeExecution};
use ecca::repo::{CheckStatus, checks};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CALC: &str = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n";

const PASSING: &str = "import unittest\nfrom calc import add, sub\n\n\nclass CalcTest(unittest.TestCase):\n    def test_adds(self):\n        self.assertEqual(add(2, 3), 5)\n\n    def test_subtracts(self):\n        self.assertEqual(sub(5, 3), 2)\n";

/// A data dir's worktrees directory holding one worktree `name` with a small Python project
/// whose test file is `test_source`, and a `.git` file pointing outside as git writes one.
fn worktrees_with(name: &str, test_source: &str) -> (tempfile::TempDir, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let worktrees = data.path().join("worktrees");
    let tree = worktrees.join(name);
    std::fs::create_dir_all(tree.join("tests")).unwrap();
    std::fs::write(tree.join("calc.py"), CALC).unwrap();
    std::fs::write(tree.join("tests/__init__.py"), "").unwrap();
    std::fs::write(tree.join("tests/test_calc.py"), test_source).unwrap();
    std::fs::write(
        tree.join(".git"),
        "gitdir: /nowhere/repo/.git/worktrees/x\n",
    )
    .unwrap();
    // The sandbox runs as nobody: the project must be readable by others, as a worktree
    // git makes under the usual umask is.
    for dir in [&tree, &tree.join("tests")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (data, worktrees)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=ecca", "-c", "user.email=ecca@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client's mirror with the small Python project committed, and a real git worktree of
/// it on `agt/<task>` under the data dir's worktrees directory, as a run has one.
fn git_worktree(task: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (data, _) = worktrees_with("seed", PASSING);
    let mirror = data.path().join("repos/acme/repo");
    std::fs::create_dir_all(mirror.parent().unwrap()).unwrap();
    let seed = data.path().join("worktrees/seed");
    std::fs::remove_file(seed.join(".git")).unwrap();
    std::fs::rename(&seed, &mirror).unwrap();
    git(&mirror, &["init", "-q", "-b", "main"]);
    git(&mirror, &["add", "-A"]);
    git(&mirror, &["commit", "-q", "-m", "calc"]);
    let worktrees = data.path().join("worktrees");
    let tree = worktrees.join(format!("{task}-r1"));
    let branch = format!("agt/{task}");
    let tree_arg = tree.display().to_string();
    git(
        &mirror,
        &["worktree", "add", "-q", "-b", &branch, &tree_arg],
    );
    for dir in [&tree, &tree.join("tests")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (data, worktrees, tree)
}

async fn serve(worktrees: &Path) -> (servers::Running, McpClients) {
    common::require_docker_and_sandbox();
    let server = CodeExecution::new(None).with_worktrees(worktrees.to_path_buf());
    let running = servers::serve(SocketAddr::from(([127, 0, 0, 1], 0)), move || {
        server.clone()
    })
    .await
    .unwrap();
    let clients = McpClients::new(
        [("x".to_string(), running.url.clone())],
        Duration::from_secs(330),
    );
    (running, clients)
}

async fn run_in_repo(c: &McpClients, worktree: &str, command: &str) -> ExecReport {
    let value = c
        .call(
            "x",
            "run_in_repo",
            json!({"worktree": worktree, "command": command, "timeout_secs": 120}),
        )
        .await
        .unwrap_or_else(|e| panic!("run_in_repo {command:?} failed: {e}"));
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"))
}

/// Every path under `dir` with its content (directories as empty), to compare before and
/// after.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                pending.push(path);
                all.insert(key, Vec::new());
            } else {
                all.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

/// Polls until no container with these short ids exists; says whether they all went.
async fn all_gone(ids: &[String]) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let left = ids.iter().any(|id| {
            let out = std::process::Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("id={id}")])
                .output()
                .unwrap();
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        });
        if !left {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Sandbox containers (running or not) that mount `dir` or anything under it.
fn sandboxes_mounting(dir: &Path) -> Vec<String> {
    let ids = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=ecca.managed=true"])
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
    if ids.trim().is_empty() {
        return Vec::new();
    }
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.Id}} {{json .Mounts}}"])
        .args(ids.split_whitespace())
        .output()
        .unwrap();
    let dir = dir.canonicalize().unwrap().display().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&dir))
        .map(|l| l.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_tests_pass_and_leave_the_worktree_as_it_was() {
    let (_data, worktrees, tree) = git_worktree("T-0042");
    assert!(tree.join(".git").is_file(), "a worktree's .git is a file");
    let before = snapshot(&tree);
    let commands = checks::detect(&tree, &ClientConfig::default());
    let test = commands.test.clone().unwrap();
    assert_eq!(test, "python3 -m unittest discover -q -s tests -t .");
    let (running, c) = serve(&worktrees).await;

    let report = run_in_repo(&c, "T-0042-r1", &test).await;
    let outcome = checks::classify("test", &test, &report);
    assert_eq!(outcome.status, CheckStatus::Passed, "{report:?}");
    assert!(report.stderr.contains("Ran 2 tests"), "{report:?}");

    // The copy has no .git (it points outside the mount), and the mount cannot be written.
    let probe = run_in_repo(
        &c,
        "T-0042-r1",
        "test ! -e .git && test -f calc.py && echo copied; (echo x > /src/new) 2>&1; echo \"write=$?\"",
    )
    .await;
    assert!(probe.stdout.contains("copied"), "{probe:?}");
    assert!(
        probe.stdout.contains("Read-only file system") && !probe.stdout.contains("write=0"),
        "the worktree is mounted read-only: {probe:?}"
    );
    running.stop().await;

    assert_eq!(
        snapshot(&tree),
        before,
        "the checks left the worktree as it was (no __pycache__, no new file)"
    );
    assert!(!tree.join("tests/__pycache__").exists());
    assert_eq!(
        git(&tree, &["status", "--porcelain", "--ignored"]),
        "",
        "git sees nothing new in the worktree"
    );
    let ids = [report.container.clone(), probe.container.clone()];
    assert!(
        all_gone(&ids).await,
        "sandbox containers {ids:?} were not removed"
    );
    assert_eq!(sandboxes_mounting(&worktrees), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_fails_and_a_missing_tool_is_skipped() {
    let failing = PASSING.replace("sub(5, 3), 2", "sub(5, 3), 3");
    let (_data, worktrees) = worktrees_with("T-0043-r1", &failing);
    let (running, c) = serve(&worktrees).await;

    let test = "python3 -m unittest discover -q -s tests -t .";
    let report = run_in_repo(&c, "T-0043-r1", test).await;
    assert_ne!(report.exit_code, Some(0), "{report:?}");
    assert!(!report.passed);
    let outcome = checks::classify("test", test, &report);
    assert_eq!(outcome.status, CheckStatus::Failed, "{report:?}");
    assert!(
        outcome.output.contains("test_subtracts"),
        "the failing test is named: {}",
        outcome.output
    );
    assert!(!outcome.output.contains("FAIL: test_adds"));

    let pytest = "python3 -m pytest -q";
    let report = run_in_repo(&c, "T-0043-r1", pytest).await;
    let outcome = checks::classify("test", pytest, &report);
    assert_eq!(
        (outcome.status, outcome.reason.as_str()),
        (
            CheckStatus::Skipped,
            "pytest is not installed in the sandbox image"
        ),
        "{report:?}"
    );

    let report = run_in_repo(&c, "T-0043-r1", "npm test --silent").await;
    assert_eq!(report.exit_code, Some(127), "{report:?}");
    let outcome = checks::classify("test", "npm test --silent", &report);
    assert_eq!(outcome.status, CheckStatus::Skipped, "{report:?}");
    assert_eq!(outcome.reason, "npm is not in the sandbox image");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_network_inside_and_names_outside_the_worktrees_are_refused() {
    let (data, worktrees) = worktrees_with("T-0044-r1", PASSING);
    std::fs::write(data.path().join("secret.txt"), "outside\n").unwrap();
    let (running, c) = serve(&worktrees).await;

    let connect = "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=5); print('connected')\"";
    let report = run_in_repo(&c, "T-0044-r1", connect).await;
    assert!(
        report.exit_code != Some(0) && !report.stdout.contains("connected"),
        "a connection from the sandbox must fail: {report:?}"
    );
    assert!(
        report.stderr.contains("OSError") || report.stderr.contains("unreachable"),
        "{report:?}"
    );

    for name in [
        "..",
        "../worktrees/T-0044-r1",
        "T-0044-r1/tests",
        "",
        ".",
        "/etc",
    ] {
        let refused = c
            .call(
                "x",
                "run_in_repo",
                json!({"worktree": name, "command": "cat ../secret.txt"}),
            )
            .await;
        let text = format!("{refused:?}");
        assert!(
            refused.is_err() && text.contains("must be one directory name"),
            "{name:?}: {text}"
        );
    }
    let missing = c
        .call(
            "x",
            "run_in_repo",
            json!({"worktree": "T-9999-r1", "command": "true"}),
        )
        .await;
    assert!(
        format!("{missing:?}").contains("there is no worktree")
            && format!("{missing:?}").contains("T-9999-r1"),
        "{missing:?}"
    );
    // A link in the worktrees directory is not a worktree, wherever it points.
    std::os::unix::fs::symlink(data.path(), worktrees.join("T-0045-r1")).unwrap();
    let linked = c
        .call(
            "x",
            "run_in_repo",
            json!({"worktree": "T-0045-r1", "command": "cat secret.txt"}),
        )
        .await;
    assert!(
        format!("{linked:?}").contains("is not a directory"),
        "{linked:?}"
    );
    running.stop().await;
    assert!(all_gone(std::slice::from_ref(&report.container)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_worktrees_refuses_run_in_repo() {
    common::require_docker_and_sandbox();
    let server = CodeExecution::new(None);
    let running = servers::serve(SocketAddr::from(([127, 0, 0, 1], 0)), move || {
        server.clone()
    })
    .await
    .unwrap();
    let c = McpClients::new(
        [("x".to_string(), running.url.clone())],
        Duration::from_secs(60),
    );
    let refused = c
        .call(
            "x",
            "run_in_repo",
            json!({"worktree": "T-0042-r1", "command": "true"}),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("no worktrees directory"),
        "{refused:?}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_process_finds_worktrees_in_its_data_dir() {
    common::require_docker_and_sandbox();
    let (data, _worktrees) = worktrees_with("T-0046-r1", PASSING);
    let mut child = common::ecca_command(data.path())
        .args(["mcp", "serve", "code-execution", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = common::listening_url(&mut child);
    let _server = KillOnDrop(child);
    let c = McpClients::new([("x".to_string(), url)], Duration::from_secs(330));
    let report = run_in_repo(&c, "T-0046-r1", "ls tests").await;
    assert_eq!(
        (report.exit_code, report.stdout.as_str()),
        (Some(0), "__init__.py\ntest_calc.py\n"),
        "{report:?}"
    );
}

/// Ends a served process however its test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
