//! A client's repository delivered through the console, in a real pseudo-terminal: the
//! operator launches a task for a client with a repository from the New task form, sees it
//! reach the approval queue with its evidence, approves it with one key, and sees it
//! delivered; outside the console the client's remote has the branch, GitHub (a local
//! stand-in) has the pull request, and the task points at it.

use crate::common;

use common::fixture_repo::python_project;
use common::git_remote::{GitRemote, SERVED_SLUG};
use common::github_api::GithubApi;
use common::pty::start_console;
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "ghp_console_standin_0001";
const TITLE: &str = "Add a shout helper to greet";

/// `ecca ARGS` on `home` (as `ECCA_HOME`); panics with what it said when it fails.
fn ecca(home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(common::ecca_bin());
    cmd.args(args);
    for var in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "ECCA_CONFIG",
        "ECCA_GITHUB_API",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("ECCA_HOME", home);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("ecca runs");
    assert!(
        out.status.success(),
        "ecca {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pull requests the GitHub stand-in holds for `acme/site`, as GitHub lists them.
async fn listed_pulls(api: &GithubApi) -> Vec<Value> {
    ecca::install_tls_provider();
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/repos/{SERVED_SLUG}/pulls?state=all",
            api.base_url
        ))
        .bearer_auth(TOKEN)
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .expect("the GitHub stand-in answers");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("a JSON list of pull requests")
}

/// Checks the Approvals view's evidence of T-0001 for what it shows. The task and its
/// client must be there; the rest is checked where the view shows it: the tests ran in the
/// sandbox and passed, the risk is scored, and the lint step, which has no command in this
/// repository, never reads as passed.
fn check_approval_evidence(screen: &str) {
    assert!(
        screen.contains(&format!("T-0001 · {TITLE}")) && screen.contains("client acme"),
        "the task and its client are shown:\n{screen}"
    );
    assert!(
        !screen.contains(TOKEN),
        "the token is never shown:\n{screen}"
    );
    // With one task in the queue, the evidence rows below the first have the queue's
    // column empty: a step's row starts with its name once the frame is trimmed.
    let step = |name: &str| {
        screen
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::trim))
    };
    if let Some(tests) = step("tests") {
        assert!(
            tests.starts_with("passed"),
            "the repository's tests passed in the sandbox: {tests:?}\n{screen}"
        );
    }
    if let Some(risk) = step("risk") {
        assert!(
            risk.chars().any(|c| c.is_ascii_digit()),
            "the risk is scored: {risk:?}\n{screen}"
        );
    }
    if let Some(lint) = step("lint") {
        assert!(
            !lint.starts_with("passed"),
            "no lint ran, so lint cannot read as passed: {lint:?}\n{screen}"
        );
    }
}

/// Why the delivery of T-0001 failed, if the run noted that it did.
fn delivery_failure(db: &Path) -> Option<String> {
    common::read_store(
        db,
        "run_events",
        "SELECT payload FROM run_events WHERE kind = 'note' AND payload LIKE '%delivery failed%' \
         AND run_id IN (SELECT id FROM runs WHERE task_id = 'T-0001') ORDER BY id DESC LIMIT 1",
        |r| r.get::<_, String>(0),
    )
}

#[tokio::test]
async fn a_repository_task_is_launched_approved_and_delivered_from_the_console() {
    common::require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(&dir.path().join("remote"), false);
    let remote = GitRemote::start(&bare, TOKEN).await;
    let api = GithubApi::start(TOKEN, "acme", "site")
        .await
        .with_repo(&bare);

    // The client, its repository and token, as an operator sets them up.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    ecca(
        &home,
        &[
            "clients",
            "add",
            "acme",
            "--name",
            "Acme",
            "--budget-usd",
            "50",
        ],
        &[],
    );
    ecca(
        &home,
        &[
            "clients",
            "token",
            "acme",
            "--from-env",
            "TOK",
            "--repo",
            &remote.url,
        ],
        &[("TOK", TOKEN)],
    );
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[models]\nprovider = \"offline\"\n[offline]\nlatency_ms = 100\n[clients.acme]\nrepo_slug = \"{SERVED_SLUG}\"\n"
        ),
    )
    .unwrap();

    let home_str = home.to_str().unwrap();
    let mut console = start_console(
        &[],
        &[("ECCA_HOME", home_str), ("ECCA_GITHUB_API", &api.base_url)],
        140,
        40,
    );
    let screen = &mut console.screen;
    let first = screen.wait_for("No runs yet. Press n to launch a task.", 60);
    assert!(
        first.contains("OFFLINE MODEL"),
        "the offline model is announced: {first}"
    );

    // The New task form: acme is the only client, so it is the one chosen.
    screen.keys(b"n");
    // ("New task" is on the tab bar already: the form is there when its client field is.)
    screen.wait_until(
        "the New task form with acme as its client",
        60,
        |text| {
            text.contains("(no client")
                .then(|| "the form has no client".to_string())
        },
        |text| text.contains("Client") && text.contains("◂ acme ▸"),
    );
    screen.keys(TITLE.as_bytes());
    screen.wait_for(TITLE, 60);
    screen.keys(&[0x13]); // Ctrl-S
    screen.wait_for(&format!("started: {TITLE}"), 60);

    // The run clones the repository, runs its checks in the sandbox before and after the
    // change, and stops at the approval gate.
    let failed = ["failed", "rejected", "cancelled", "interrupted", "paused"];
    screen.wait_for_line(&["T-0001", "approval"], &failed, 300);
    screen.wait_for("Approvals (1)", 60);

    screen.keys(b"2");
    screen.wait_for(&format!("T-0001 · {TITLE}"), 60);
    let evidence = screen.wait_until(
        "the approval evidence",
        120,
        |_| None,
        |text| text.contains("client acme") && !text.contains("loading the evidence…"),
    );
    check_approval_evidence(&evidence);

    // Approve with the approve key; delivery pushes the branch and opens the pull request.
    screen.keys(b"y");
    // "approved; delivering" until the delivery's outcome replaces it.
    screen.wait_until(
        "the approval to be taken",
        60,
        |_| None,
        |text| {
            text.contains("T-0001 approved; delivering")
                || text.contains("T-0001 delivered")
                || text.contains("T-0001 delivery failed")
        },
    );
    screen.keys(b"1");
    let db = home.join("ecca.db");
    let delivered = screen.wait_until(
        "T-0001 delivered in the Runs view",
        300,
        |text| {
            // A failed delivery goes back to the approval gate with a note saying why; the
            // screen alone would only show the task waiting again.
            delivery_failure(&db).or_else(|| {
                text.lines()
                    .find(|l| l.contains("T-0001") && failed.iter().any(|f| l.contains(f)))
                    .map(|l| format!("the line {:?}", l.trim()))
            })
        },
        |text| {
            text.lines()
                .any(|l| l.contains("T-0001") && l.contains("acme") && l.contains("delivered"))
        },
    );
    assert!(
        !delivered.contains(TOKEN),
        "the token is never shown:\n{delivered}"
    );

    screen.keys(b"q");
    let status = console.wait_exit(60);
    assert!(status.success(), "the console quits cleanly: {status:?}");
    console.screen.wait_restored();

    // The client's remote has the branch, one commit ahead of main, pushed with the token.
    let log = remote
        .branch_log("agt/T-0001")
        .expect("agt/T-0001 was pushed to the client's remote");
    let head = log.lines().next().unwrap_or_default();
    assert!(head.contains(" feat(T-0001): "), "{log}");
    assert_eq!(log.lines().count(), 2, "one commit on top of main: {log}");
    assert!(
        remote
            .seen()
            .iter()
            .any(|r| r.auth_ok && r.path.ends_with("/git-receive-pack") && r.status == 200),
        "the push went with the token: {:?}",
        remote.seen()
    );

    // GitHub received the pull request, with the evidence in its body.
    let sent = api.pulls.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one pull request: {sent:?}");
    assert_eq!(sent[0]["head"], "agt/T-0001");
    assert_eq!(sent[0]["base"], "main");
    assert!(
        sent[0]["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("feat(T-0001): "),
        "{sent:?}"
    );
    let body = sent[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("### Checks") && body.contains("before (base commit)"),
        "the body carries the checks: {body}"
    );
    assert!(!body.contains(TOKEN), "the token never reaches the body");
    let listed = listed_pulls(&api).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let html_url = listed[0]["html_url"].as_str().unwrap_or_default();
    assert!(html_url.ends_with("/acme/site/pull/1"), "{html_url}");

    // The task points at the pull request.
    let tasks: Vec<Value> =
        serde_json::from_str(&ecca(&home, &["tasks", "--json"], &[])).expect("tasks as JSON");
    let task = tasks
        .iter()
        .find(|t| t["id"] == "T-0001")
        .expect("T-0001 is listed");
    assert_eq!(task["status"], "delivered", "{task}");
    assert_eq!(task["client_id"], "acme", "{task}");
    assert_eq!(task["deliverable_url"], html_url, "{task}");

    // The push and the pull request are in the task's audit trail, as done.
    let audit: Vec<Value> =
        serde_json::from_str(&ecca(&home, &["audit", "--task", "T-0001", "--json"], &[]))
            .expect("the audit as JSON");
    // Both went through client-github, the one process that holds the token.
    let done = |tool: &str| {
        audit
            .iter()
            .any(|row| row["tool"] == tool && row["outcome"] == "ok")
    };
    assert!(
        done("client-github: push"),
        "the push is audited: {audit:#?}"
    );
    assert!(
        done("client-github: open_pr"),
        "the pull request is audited: {audit:#?}"
    );
    assert!(
        !serde_json::to_string(&audit).unwrap().contains(TOKEN),
        "the token never reaches the audit"
    );
}
