//! A task on a client's repository, end to end with the real binary: the client's token
//! stored encrypted, a dry run to the approval gate in a worktree with the repository's own
//! tests run in the sandbox, then approval pushing `agt/T-0001` over authenticated HTTP and
//! opening a pull request that carries the evidence. And the token, once stored, appears
//! nowhere else: not in the store's files, logs, output, audit, events, the pull request, or
//! the arguments of any process ecca starts.

use crate::common;

use common::fixture_repo::python_project;
use common::git_remote::{GitRemote, SERVED_SLUG};
use common::github_api::GithubApi;
use common::repo_run::{EccaHome, recording_wrapper};
use common::{read_store, require_docker_and_sandbox};
use serde_json::Value;
use std::path::Path;

/// Shaped like a GitHub token (but not matching a scanner's pattern for one), and unique
/// enough that any hit is a leak.
const TOKEN: &str = "ghp_e2e_leak_canary_7Qx9Zr2Wm4Kp8Vt3Ny6";

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_the_client_repository_is_delivered_as_a_pull_request_and_the_token_never_leaks()
{
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let base_commit = common::fixture_repo::run_git(
        None,
        ["--git-dir", &bare.to_string_lossy(), "rev-parse", "main"],
        None,
    )
    .trim()
    .to_string();
    let remote = GitRemote::start(&bare, TOKEN).await;
    let api = GithubApi::start(TOKEN, "acme", "site")
        .await
        .with_repo(&bare);

    let home_dir = dir.path().join("home");
    std::fs::create_dir_all(&home_dir).unwrap();
    std::fs::write(
        home_dir.join("config.toml"),
        format!("[clients.acme]\nrepo_slug = \"{SERVED_SLUG}\"\n"),
    )
    .unwrap();
    let argv_log = dir.path().join("ecca-children.log");
    let wrapper = recording_wrapper(dir.path(), &argv_log);
    let mut home = EccaHome::new(&home_dir);
    home.env("ECCA_GITHUB_API", &api.base_url);
    home.env("ECCA_BIN", &wrapper.to_string_lossy());

    home.ok(&[
        "clients",
        "add",
        "acme",
        "--name",
        "Acme",
        "--budget-usd",
        "50",
    ]);
    let stored = home.run_with(
        &[
            "clients",
            "token",
            "acme",
            "--from-env",
            "ACME_TOKEN",
            "--repo",
            &remote.url,
        ],
        &[("ACME_TOKEN", TOKEN)],
    );
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    // The token is stored (encrypted), so searching for it below means something.
    let blob_len: i64 = read_store(
        &home.db(),
        "client_mcp_configs",
        "SELECT length(github_token_encrypted) FROM client_mcp_configs WHERE client_id = 'acme'",
        |r| r.get(0),
    )
    .expect("the client's token row");
    assert!(
        blob_len as usize > TOKEN.len(),
        "the encrypted token is {blob_len} bytes"
    );

    // To the approval gate.
    let run = home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Add a shout helper to greet",
        "--accept",
        "greet can shout",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    assert_eq!(run["result_status"], "SUCCESS", "{run:#}");
    assert_eq!(run["task_id"], "T-0001");
    let repo = &run["repo"];
    assert_eq!(repo["branch"], "agt/T-0001");
    assert_eq!(repo["base_branch"], "main");
    assert_eq!(repo["base_commit"], base_commit.as_str());
    let worktree = home_dir
        .join("worktrees")
        .join(repo["worktree"].as_str().expect("a worktree name"));
    assert!(worktree.is_dir(), "{} is missing", worktree.display());
    assert_eq!(repo["worktree"], "T-0001-r1");
    assert_eq!(repo["smoke"]["status"], "passed", "{:#}", repo["smoke"]);
    assert!(
        repo["smoke"]["output"]
            .as_str()
            .unwrap_or("")
            .contains("OK"),
        "{:#}",
        repo["smoke"]
    );
    let checks = repo["checks"].as_array().expect("checks");
    let test = checks
        .iter()
        .find(|c| c["kind"] == "test")
        .expect("the repository's tests ran");
    assert_eq!(test["status"], "passed", "{test:#}");
    assert!(
        test["command"].as_str().unwrap().contains("unittest"),
        "{test:#}"
    );
    assert!(
        checks.iter().all(|c| c["status"] == "passed"),
        "{checks:#?}"
    );
    let criteria = repo["criteria"].as_array().expect("criteria");
    assert_eq!(criteria.len(), 1);
    assert_eq!(criteria[0]["text"], "greet can shout");
    assert_eq!(criteria[0]["met"], true, "{:#}", criteria[0]);
    let files = repo["files"].as_array().expect("files");
    let status_of = |path: &str| {
        files
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["status"].clone())
    };
    assert_eq!(
        status_of("greet/cli.py"),
        Some(Value::from("modified")),
        "{files:#?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f["status"] == "added"
                && f["path"].as_str().unwrap().starts_with("tests/test_")),
        "{files:#?}"
    );
    assert_eq!(repo["pushed"], false);
    assert!(
        remote.branch_log("agt/T-0001").is_none(),
        "pushed too early"
    );

    // `ecca diff` is the change against the base commit.
    let diff = home.ok(&["diff", "T-0001"]);
    assert!(diff.contains("--- a/greet/cli.py"), "{diff}");
    assert!(diff.contains("+++ b/greet/cli.py"), "{diff}");
    assert!(diff.contains("+def add_a_shout_helper_to_greet"), "{diff}");
    let stat = home.ok(&["diff", "T-0001", "--stat"]);
    assert!(stat.contains(&base_commit[..12]), "{stat}");

    // Approval: commit, push with the token, pull request with the evidence.
    let approved = home.ok(&["approve", "T-0001"]);
    let log = remote
        .branch_log("agt/T-0001")
        .unwrap_or_else(|| panic!("agt/T-0001 was not pushed: {approved}"));
    let top = log.lines().next().unwrap();
    assert!(
        top.split_once(' ').unwrap().1.starts_with("feat(T-0001): "),
        "{log}"
    );
    assert!(log.contains(&base_commit), "not based on main: {log}");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert_eq!(api.pull_count(), 1, "rejected: {:?}", api.rejected);
    let pr = api.pulls.lock().unwrap()[0].clone();
    assert_eq!(pr["head"], "agt/T-0001");
    assert_eq!(pr["base"], "main");
    let body = pr["body"].as_str().expect("a body");
    for evidence in ["SUCCESS", "greet can shout", "unittest", "$0.", "simulated"] {
        assert!(
            body.contains(evidence),
            "the body lacks {evidence:?}:\n{body}"
        );
    }
    let task = home.task("T-0001");
    assert_eq!(task["status"], "delivered", "{task:#}");
    let html_url = format!("{}/acme/site/pull/1", api.base_url);
    assert_eq!(task["deliverable_url"], html_url.as_str(), "{task:#}");
    assert!(
        !worktree.exists(),
        "{} is left after delivery",
        worktree.display()
    );
    let seen = remote.seen();
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("git-receive-pack") && r.status == 200),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|r| r.auth_ok),
        "an unauthorised request reached the remote: {seen:?}"
    );

    // The token never leaks.
    let needle = TOKEN.as_bytes();
    let audit = home.ok(&["audit", "--task", "T-0001", "--json"]);
    for tool in [
        "client-github: push",
        "client-github: open_pr",
        "git commit",
    ] {
        assert!(audit.contains(tool), "no audit row for {tool}: {audit}");
    }
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    // Every file in the data dir: the store and its -wal/-shm, the logs, and the client's
    // mirror (whose git config must not hold the token in a remote URL).
    let stored_files = files_under(&home_dir);
    for must in ["ecca.db", "repos/acme/repo/.git/config"] {
        assert!(
            stored_files.contains(&home_dir.join(must)),
            "{must} is missing: {stored_files:?}"
        );
    }
    for f in stored_files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        places.push((f.display().to_string(), bytes));
    }
    for (i, text) in home.transcript.lock().unwrap().iter().enumerate() {
        places.push((format!("output of command {i}"), text.clone().into_bytes()));
    }
    let events: String = read_store(
        &home.db(),
        "run_events",
        "SELECT group_concat(kind || ' ' || payload, char(10)) FROM run_events",
        |r| r.get(0),
    )
    .expect("the run's events");
    assert!(!events.is_empty());
    places.push(("run events".into(), events.into_bytes()));
    places.push((
        "pull request".into(),
        format!("{}\n{}", pr["title"], pr["body"]).into_bytes(),
    ));
    let argv = std::fs::read_to_string(&argv_log).expect("ecca started a child through ECCA_BIN");
    assert!(
        argv.contains("mcp serve client-github --client acme"),
        "client-github was not started through the wrapper: {argv}"
    );
    places.push(("child process arguments".into(), argv.into_bytes()));
    for (place, bytes) in &places {
        assert!(
            !contains_bytes(bytes, needle),
            "the token leaked in {place}"
        );
    }
}
