//! How a task on a client's repository fails, with the real binary: a base that fails its
//! own tests, a writer whose diffs never apply, a change that breaks a test, a rejected or
//! cancelled deliverable, and a push refused at approval time. Each leaves nothing behind
//! (no worktree, no pushed branch) and says why.

use crate::common;

use common::fixture_repo::python_project;
use common::git_remote::{GitRemote, SERVED_SLUG, bare_git};
use common::github_api::GithubApi;
use common::repo_run::{
    EccaHome, Role, acme_with_repo, prompt_of, repo_model, requests_for, use_model,
};
use common::{read_store, require_docker_and_sandbox};
use serde_json::{Value, json};
use std::path::Path;

/// A plan that changes `greet/cli.py` and proves nothing beyond the repository's tests.
fn plan_changing_cli() -> Value {
    json!({
        "approach": "change the greeting in greet/cli.py",
        "files": [{"path": "greet/cli.py", "action": "change", "why": "the greeting lives there"}],
        "criteria": [],
    })
}

/// A diff whose context lines are not in `greet/cli.py` at all.
const DIFF_WITH_WRONG_CONTEXT: &str = "```diff
--- a/greet/cli.py
+++ b/greet/cli.py
@@ -9,4 +9,4 @@ def greet(name):
     name = name.lower()
     if name is None:
         name = \"nobody\"
-    return f\"Hello, {name}!\"
+    return f\"Hi, {name}!\"
```
";

fn home_in(dir: &Path) -> EccaHome {
    let home_dir = dir.join("home");
    std::fs::create_dir_all(&home_dir).unwrap();
    EccaHome::new(&home_dir)
}

fn cost_rows(home: &EccaHome) -> i64 {
    read_store(
        &home.db(),
        "cost_log",
        "SELECT COUNT(*) FROM cost_log",
        |r| r.get(0),
    )
    .expect("the store answers")
}

fn run_json(home: &EccaHome, task: &str, dry_run: bool) -> Value {
    let mut args = vec!["run", "--client", "acme", "--task", task, "--json"];
    if dry_run {
        args.push("--dry-run");
    }
    home.json(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_fails_its_own_tests_stops_before_any_model_call() {
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), true);
    let model = repo_model(plan_changing_cli(), DIFF_WITH_WRONG_CONTEXT.into()).await;
    let mut home = home_in(dir.path());
    use_model(&mut home, &model);
    acme_with_repo(&home, &bare.to_string_lossy());

    let run = run_json(&home, "Capitalise names", false);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("broken_base"), "{reason}");
    assert!(reason.contains("unittest"), "{reason}");
    assert_eq!(run["repo"]["smoke"]["status"], "failed", "{run:#}");
    assert!(
        run["repo"]["smoke"]["output"]
            .as_str()
            .unwrap_or("")
            .contains("test_name_is_capitalised"),
        "{run:#}"
    );
    assert_eq!(model.request_count(), 0, "the model was asked");
    assert_eq!(cost_rows(&home), 0, "a cost was booked");
    assert_eq!(run["cost_micros"], 0);
    assert!(home.worktrees().is_empty(), "{:?}", home.worktrees());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_that_never_applies_ends_hard_fail_after_two_retries() {
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let model = repo_model(plan_changing_cli(), DIFF_WITH_WRONG_CONTEXT.into()).await;
    let mut home = home_in(dir.path());
    use_model(&mut home, &model);
    acme_with_repo(&home, &bare.to_string_lossy());

    let run = run_json(&home, "Greet more casually", false);
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["result_status"], "HARD_FAIL", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("HARD_FAIL"), "{reason}");
    assert!(reason.contains("did not apply"), "{reason}");
    let writes = requests_for(&model, Role::Writer);
    assert_eq!(writes.len(), 3, "1 writer call and 2 retries");
    assert!(
        !prompt_of(&writes[0]).contains("did not apply"),
        "the first writer prompt already speaks of a failure"
    );
    for (i, w) in writes.iter().enumerate().skip(1) {
        let prompt = prompt_of(w);
        assert!(
            prompt.contains("## Feedback") && prompt.contains("the diff did not apply"),
            "writer prompt {} lacks the apply failure:\n{prompt}",
            i + 1
        );
    }
    assert_eq!(requests_for(&model, Role::Planner).len(), 1);
    let branches = bare_branches(&bare);
    assert_eq!(branches, vec!["main".to_string()], "something was pushed");
    assert!(home.worktrees().is_empty(), "{:?}", home.worktrees());
}

/// The greetings the breaking writer cycles through: each reply changes the current one to
/// the next, so every diff applies and every change breaks `test_greets_by_name`.
const GREETINGS: [&str; 4] = ["Hello", "Hi", "Hey", "Yo"];

fn breaking_diff(prompt: &str) -> String {
    let i = GREETINGS
        .iter()
        .position(|g| prompt.contains(&format!("    return f\"{g}, {{name}}!\"")))
        .unwrap_or(0);
    let (from, to) = (GREETINGS[i], GREETINGS[(i + 1) % GREETINGS.len()]);
    format!(
        "```diff
--- a/greet/cli.py
+++ b/greet/cli.py
@@ -9,4 +9,4 @@ def greet(name):
     name = name.strip()
     if not name:
         name = \"world\"
-    return f\"{from}, {{name}}!\"
+    return f\"{to}, {{name}}!\"
```
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_keeps_breaking_a_test_ends_soft_fail_naming_the_test() {
    use common::repo_run::role_of;
    use common::{MockLlm, Scripted, anthropic_stream};
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let plan = plan_changing_cli().to_string();
    let model = MockLlm::start(
        vec![],
        Some(std::sync::Arc::new(move |request: &Value| {
            let text = match role_of(request) {
                Role::Planner => plan.clone(),
                Role::Writer => breaking_diff(&prompt_of(request)),
                _ => r#"{"score": 9, "issues": []}"#.to_string(),
            };
            Scripted::sse(anthropic_stream(&text, 900, 300, 0, 0))
        })),
    )
    .await;
    let mut home = home_in(dir.path());
    use_model(&mut home, &model);
    acme_with_repo(&home, &bare.to_string_lossy());

    let run = run_json(&home, "Greet more casually", false);
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["result_status"], "SOFT_FAIL", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("SOFT_FAIL"), "{reason}");
    let checks = run["repo"]["checks"].to_string();
    assert!(
        reason.contains("test_greets_by_name") || checks.contains("test_greets_by_name"),
        "the failing test is named nowhere: {reason}\n{checks}"
    );
    let test = run["repo"]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "test"))
        .cloned()
        .expect("the tests ran");
    assert_eq!(test["status"], "failed", "{test:#}");
    assert_eq!(requests_for(&model, Role::Writer).len(), 3);
    assert_eq!(bare_branches(&bare), vec!["main".to_string()]);
    assert!(home.worktrees().is_empty(), "{:?}", home.worktrees());
}

fn bare_branches(bare: &Path) -> Vec<String> {
    let out = bare_git(bare)
        .args(["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
        .output()
        .expect("git runs");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn a_rejected_or_cancelled_deliverable_leaves_no_worktree_and_pushes_nothing() {
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let home = home_in(dir.path());
    acme_with_repo(&home, &bare.to_string_lossy());

    for (task, decision) in [("T-0001", "reject"), ("T-0002", "cancel")] {
        let run = run_json(&home, "Add a shout helper to greet", true);
        assert_eq!(run["task_id"], task);
        assert_eq!(run["status"], "awaiting_approval", "{run:#}");
        let worktree = run["repo"]["worktree"].as_str().unwrap().to_string();
        assert!(
            home.worktrees().contains(&worktree),
            "{:?}",
            home.worktrees()
        );
        let out = match decision {
            "reject" => home.run(&["reject", task, "--note", "not what we asked for"]),
            _ => home.run(&["cancel", task]),
        };
        assert!(
            out.status.success(),
            "{decision}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let row = home.task(task);
        let expected = if decision == "reject" {
            "rejected"
        } else {
            "cancelled"
        };
        assert_eq!(row["status"], expected, "{row:#}");
        assert!(
            home.worktrees().is_empty(),
            "{decision} left {:?}",
            home.worktrees()
        );
        assert_eq!(bare_branches(&bare), vec!["main".to_string()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_keeps_the_task_awaiting_approval_and_a_retry_delivers_once() {
    const RIGHT: &str = "ghp_right_token_for_the_remote_1";
    const WRONG: &str = "ghp_wrong_token_for_the_remote_2";
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, RIGHT).await;
    let api = GithubApi::start(RIGHT, "acme", "site")
        .await
        .with_repo(&bare);
    let mut home = home_in(dir.path());
    std::fs::write(
        home.dir.join("config.toml"),
        format!("[clients.acme]\nrepo_slug = \"{SERVED_SLUG}\"\n"),
    )
    .unwrap();
    home.env("ECCA_GITHUB_API", &api.base_url);
    home.ok(&[
        "clients",
        "add",
        "acme",
        "--name",
        "Acme",
        "--budget-usd",
        "50",
    ]);
    let store_token = |token: &str| {
        let out = home.run_with(
            &[
                "clients",
                "token",
                "acme",
                "--from-env",
                "ACME_TOKEN",
                "--repo",
                &remote.url,
            ],
            &[("ACME_TOKEN", token)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    store_token(RIGHT);
    let run = run_json(&home, "Add a shout helper to greet", true);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");

    // The token was replaced by a wrong one before approval: the push is refused.
    store_token(WRONG);
    let refused = home.run(&["approve", "T-0001"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "the approval passed: {said}");
    assert!(
        said.contains("the push of agt/T-0001 failed") && said.contains("403"),
        "{said}"
    );
    assert!(said.contains("not delivered"), "{said}");
    assert!(!said.contains(WRONG), "the token was printed: {said}");
    let row = home.task("T-0001");
    assert_eq!(row["status"], "awaiting_approval", "{row:#}");
    assert_eq!(api.pull_count(), 0);
    assert!(remote.branch_log("agt/T-0001").is_none());

    store_token(RIGHT);
    home.ok(&["approve", "T-0001"]);
    let row = home.task("T-0001");
    assert_eq!(row["status"], "delivered", "{row:#}");
    assert_eq!(api.pull_count(), 1, "{:?}", api.rejected);
    let count = bare_git(&bare)
        .args(["rev-list", "--count", "main..agt/T-0001"])
        .output()
        .expect("git runs");
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&count.stderr)
    );
    assert!(home.worktrees().is_empty(), "{:?}", home.worktrees());
}
