//! The stand-ins for a client's remote behave like the real ones: git over HTTP with token
//! auth (clone, refusals, push), GitHub's pull-request API (success shape and refusals), and
//! the fixture repositories (a Python project whose tests pass, or fail when broken).

use crate::common;

use common::fixture_repo::{many_files, python_project, run_git};
use common::git_remote::{GitRemote, git_token_env};
use common::github_api::GithubApi;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_standin_token_0042";

/// `git ARGS` with no user or system config, never prompting, with `token` (if any) in the
/// environment as client-github passes it.
fn git(dir: Option<&Path>, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS");
    if let Some(t) = token {
        for (key, value) in git_token_env(t) {
            cmd.env(key, value);
        }
    }
    cmd.output().expect("git runs")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn clone(url: &str, into: &Path, token: Option<&str>) -> Output {
    git(
        None,
        &["clone", "--quiet", url, &into.to_string_lossy()],
        token,
    )
}

#[tokio::test]
async fn a_clone_with_the_token_works_and_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;
    assert!(remote.url.ends_with("/acme/site.git"), "{}", remote.url);

    let started = Instant::now();
    let out = clone(&remote.url, &dir.path().join("clone"), Some(TOKEN));
    let took = started.elapsed();
    assert!(out.status.success(), "clone failed: {}", said(&out));
    let cli = std::fs::read_to_string(dir.path().join("clone/greet/cli.py")).unwrap();
    assert!(cli.contains("def greet(name)"), "{cli}");
    let branch = git(
        Some(&dir.path().join("clone")),
        &["branch", "--show-current"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&branch.stdout).trim(), "main");
    // "Well under a second" on an idle machine; the bound leaves room for a loaded one.
    eprintln!("clone over HTTP took {took:?}");
    assert!(took < Duration::from_secs(20), "clone took {took:?}");

    let seen = remote.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| r.auth_ok && r.status == 200),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.path == "/acme/site.git/info/refs" && r.query == "service=git-upload-pack"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.method == "POST" && r.path == "/acme/site.git/git-upload-pack"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_clone_without_a_token_is_asked_for_credentials_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;

    let out = clone(&remote.url, &dir.path().join("clone"), None);
    assert!(!out.status.success(), "a tokenless clone got through");
    let text = said(&out);
    // With prompts off git cannot ask for a user name after the 401 and says so.
    assert!(
        text.contains("401")
            || text.contains("Authentication")
            || text.contains("could not read Username"),
        "{text}"
    );
    assert!(!dir.path().join("clone/greet").exists());
    let seen = remote.seen();
    assert!(
        seen.iter().any(|r| !r.auth_ok && r.status == 401),
        "{seen:?}"
    );

    // Given empty credentials (as a credential helper with none would), git reports the
    // authentication failure itself.
    let out = Command::new("git")
        .args(["clone", "--quiet", &remote.url])
        .arg(dir.path().join("clone2"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_ASKPASS", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        said(&out).contains("Authentication failed"),
        "{}",
        said(&out)
    );

    // The refusal itself is a Basic challenge, as git needs it.
    ecca::install_tls_provider();
    let resp = reqwest::get(format!("{}/info/refs?service=git-upload-pack", remote.url))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"git\""
    );
}

#[tokio::test]
async fn a_clone_with_a_wrong_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;

    let out = clone(&remote.url, &dir.path().join("clone"), Some("ghp_wrong"));
    assert!(!out.status.success(), "a wrong token got through");
    assert!(said(&out).contains("403"), "{}", said(&out));
    let seen = remote.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|r| !r.auth_ok && r.status == 403),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_pushed_branch_lands_with_the_token_and_not_without() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;
    let work = dir.path().join("clone");
    let out = clone(&remote.url, &work, Some(TOKEN));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(remote.branches(), vec!["main".to_string()]);
    assert_eq!(remote.branch_log("agt/T-0042"), None);

    run_git(Some(&work), ["switch", "--quiet", "-c", "agt/T-0042"], None);
    std::fs::write(work.join("NOTES.md"), "A change.\n").unwrap();
    run_git(Some(&work), ["add", "NOTES.md"], None);
    run_git(Some(&work), ["commit", "--quiet", "-m", "Add notes"], None);
    let sha = run_git(Some(&work), ["rev-parse", "HEAD"], None);

    let out = git(
        Some(&work),
        &["push", "--quiet", "origin", "agt/T-0042"],
        None,
    );
    assert!(!out.status.success(), "a tokenless push got through");
    assert_eq!(remote.branch_log("agt/T-0042"), None);

    let out = git(
        Some(&work),
        &["push", "--quiet", "origin", "agt/T-0042"],
        Some(TOKEN),
    );
    assert!(out.status.success(), "push failed: {}", said(&out));
    let log = remote.branch_log("agt/T-0042").expect("the branch landed");
    let first = log.lines().next().unwrap();
    assert_eq!(first, format!("{} Add notes", sha.trim()));
    assert_eq!(log.lines().count(), 2, "{log}");
    assert_eq!(remote.branches(), vec!["agt/T-0042", "main"]);
    assert_eq!(
        remote.show("agt/T-0042", "NOTES.md").as_deref(),
        Some("A change.\n")
    );
    assert_eq!(remote.show("main", "NOTES.md"), None);

    // Someone else moves main on; a fetch over HTTP brings their commit.
    let theirs =
        remote.commit_upstream("main", "docs/CHANGES.md", "Upstream.\n", "Upstream change");
    assert_eq!(
        remote.show("main", "docs/CHANGES.md").as_deref(),
        Some("Upstream.\n")
    );
    assert!(
        remote
            .show("main", "greet/cli.py")
            .unwrap()
            .contains("def main(argv")
    );
    let out = git(Some(&work), &["fetch", "--quiet", "origin"], Some(TOKEN));
    assert!(out.status.success(), "{}", said(&out));
    let fetched = run_git(Some(&work), ["rev-parse", "origin/main"], None);
    assert_eq!(fetched.trim(), theirs);
    let log = remote.branch_log("main").unwrap();
    assert!(
        log.starts_with(&format!("{theirs} Upstream change\n")),
        "{log}"
    );
    assert!(
        remote
            .seen()
            .iter()
            .any(|r| r.auth_ok && r.path == "/acme/site.git/git-receive-pack" && r.status == 200),
        "{:?}",
        remote.seen()
    );
}

#[tokio::test]
async fn a_public_remote_serves_clone_and_push_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start_public(&bare).await;
    let work = dir.path().join("clone");
    let out = clone(&remote.url, &work, None);
    assert!(out.status.success(), "{}", said(&out));
    run_git(Some(&work), ["switch", "--quiet", "-c", "agt/T-0007"], None);
    run_git(
        Some(&work),
        ["commit", "--quiet", "--allow-empty", "-m", "Empty"],
        None,
    );
    let out = git(
        Some(&work),
        &["push", "--quiet", "origin", "agt/T-0007"],
        None,
    );
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        remote
            .branch_log("agt/T-0007")
            .unwrap()
            .contains(" Empty\n")
    );
}

async fn post_pull(api: &GithubApi, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    ecca::install_tls_provider();
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", api.base_url))
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "ecca-test")
        .json(&body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_github_stand_in_opens_a_pull_request_like_github() {
    let api = GithubApi::start(TOKEN, "acme", "site").await;
    let bearer = format!("Bearer {TOKEN}");
    let body = json!({"title": "Add notes", "head": "agt/T-0042", "base": "main", "body": "Evidence: tests passed."});
    let (status, reply) =
        post_pull(&api, "/repos/acme/site/pulls", Some(&bearer), body.clone()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["number"], 1);
    assert!(reply["id"].as_u64().is_some());
    assert_eq!(reply["state"], "open");
    assert_eq!(reply["title"], "Add notes");
    assert_eq!(reply["body"], "Evidence: tests passed.");
    assert_eq!(reply["head"]["ref"], "agt/T-0042");
    assert_eq!(reply["head"]["sha"].as_str().unwrap().len(), 40);
    assert_eq!(reply["base"]["ref"], "main");
    assert_eq!(reply["user"]["login"], "acme");
    assert!(reply["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        reply["html_url"],
        format!("{}/acme/site/pull/1", api.base_url)
    );
    assert_eq!(
        reply["url"],
        format!("{}/repos/acme/site/pulls/1", api.base_url)
    );
    assert_eq!(api.pulls.lock().unwrap().clone(), vec![body]);

    // `token TOKEN` is accepted as well; numbers count up.
    let second = json!({"title": "More", "head": "agt/T-0043", "base": "main"});
    let (status, reply) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&format!("token {TOKEN}")),
        second,
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["number"], 2);
    assert!(api.rejected.lock().unwrap().is_empty());

    // Listed as GitHub lists them, filtered by `owner:branch`.
    let list = |query: &'static str| {
        let url = format!("{}/repos/acme/site/pulls?{query}", api.base_url);
        let bearer = bearer.clone();
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .bearer_auth(bearer.trim_start_matches("Bearer "))
                .header("accept", "application/vnd.github+json")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.json::<Vec<Value>>().await.unwrap()
        }
    };
    let found = list("head=acme:agt/T-0042&state=open").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["number"], 1);
    assert_eq!(
        found[0]["html_url"],
        format!("{}/acme/site/pull/1", api.base_url)
    );
    assert!(list("head=acme:agt/T-9999").await.is_empty());
    assert_eq!(list("state=all").await.len(), 2);
    assert!(list("state=closed").await.is_empty());
}

#[tokio::test]
async fn the_github_stand_in_refuses_what_github_refuses() {
    let api = GithubApi::start(TOKEN, "acme", "site").await;
    let bearer = format!("Bearer {TOKEN}");
    let good = json!({"title": "T", "head": "agt/T-0001", "base": "main"});

    let (status, reply) =
        post_pull(&api, "/repos/acme/other/pulls", Some(&bearer), good.clone()).await;
    assert_eq!(
        (status, reply["message"].as_str()),
        (404, Some("Not Found"))
    );
    let (status, reply) = post_pull(&api, "/repos/acme/site/pulls", None, good.clone()).await;
    assert_eq!(
        (status, reply["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    let (status, _) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some("Bearer ghp_wrong"),
        good.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, reply) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&bearer),
        json!({"title": "T"}),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["message"], "Validation Failed");
    let fields: Vec<&str> = reply["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["head", "base"]);
    let (status, _) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&bearer),
        json!({"title": 3, "head": "a", "base": "main"}),
    )
    .await;
    assert_eq!(status, 422);

    api.fail_next(502);
    let (status, _) = post_pull(&api, "/repos/acme/site/pulls", Some(&bearer), good.clone()).await;
    assert_eq!(status, 502);
    let (status, _) = post_pull(&api, "/repos/acme/site/pulls", Some(&bearer), good.clone()).await;
    assert_eq!(status, 201, "fail_next fails one call only");
    let (status, reply) = post_pull(&api, "/repos/acme/site/pulls", Some(&bearer), good).await;
    assert_eq!(status, 422, "a second PR for one head: {reply}");

    assert_eq!(api.pull_count(), 1);
    let rejected = api.rejected.lock().unwrap().clone();
    assert_eq!(rejected.len(), 7, "{rejected:?}");
    assert!(rejected[0].contains("acme/other"), "{rejected:?}");
}

#[tokio::test]
async fn with_a_repository_the_head_must_be_a_branch_ahead_of_base() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let api = GithubApi::start(TOKEN, "acme", "site")
        .await
        .with_repo(&bare);
    let bearer = format!("Bearer {TOKEN}");
    let pull = |head: &str| json!({"title": "T", "head": head, "base": "main"});

    let (status, reply) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&bearer),
        pull("agt/T-0009"),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["errors"][0]["field"], "head");

    // A branch with no commits of its own: "No commits between".
    run_git(
        None,
        [
            "--git-dir",
            &bare.to_string_lossy(),
            "branch",
            "agt/T-0009",
            "main",
        ],
        None,
    );
    let (status, reply) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&bearer),
        pull("agt/T-0009"),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(
        reply["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("No commits between main and agt/T-0009")
    );

    // Pushed work on the branch: accepted, with the branch's real head commit.
    let remote = GitRemote::start(&bare, TOKEN).await;
    let work = dir.path().join("clone");
    assert!(clone(&remote.url, &work, Some(TOKEN)).status.success());
    run_git(Some(&work), ["switch", "--quiet", "agt/T-0009"], None);
    run_git(
        Some(&work),
        ["commit", "--quiet", "--allow-empty", "-m", "Work"],
        None,
    );
    let out = git(
        Some(&work),
        &["push", "--quiet", "origin", "agt/T-0009"],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{}", said(&out));
    let sha = run_git(Some(&work), ["rev-parse", "HEAD"], None);
    let (status, reply) = post_pull(
        &api,
        "/repos/acme/site/pulls",
        Some(&bearer),
        pull("acme:agt/T-0009"),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["head"]["sha"], sha.trim());
    assert_eq!(reply["head"]["ref"], "agt/T-0009");
}

fn unittest(dir: &Path) -> Output {
    Command::new("python3")
        .args(["-m", "unittest", "discover", "-q", "-s", "tests", "-t", "."])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs")
}

#[tokio::test]
async fn the_python_fixture_passes_its_tests_and_the_broken_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let good = python_project(&dir.path().join("good"), false);
    let broken = python_project(&dir.path().join("broken"), true);
    for (bare, name) in [(&good, "good-clone"), (&broken, "broken-clone")] {
        let out = git(
            None,
            &[
                "clone",
                "--quiet",
                &bare.to_string_lossy(),
                &dir.path().join(name).to_string_lossy(),
            ],
            None,
        );
        assert!(out.status.success(), "{}", said(&out));
    }
    let files = run_git(
        None,
        [
            "--git-dir",
            &good.to_string_lossy(),
            "ls-tree",
            "-r",
            "--name-only",
            "main",
        ],
        None,
    );
    for f in [
        "greet/__init__.py",
        "greet/cli.py",
        "tests/test_cli.py",
        "README.md",
        "pyproject.toml",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} missing from {files}");
    }
    let pyproject = std::fs::read_to_string(dir.path().join("good-clone/pyproject.toml")).unwrap();
    assert!(!pyproject.contains("pytest"));

    let out = unittest(&dir.path().join("good-clone"));
    assert!(out.status.success(), "{}", said(&out));
    let out = unittest(&dir.path().join("broken-clone"));
    assert!(!out.status.success(), "the broken fixture passed");
    assert!(said(&out).contains("FAILED (failures=1)"), "{}", said(&out));
}

#[test]
fn many_files_makes_a_tree_of_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let bare = many_files(dir.path(), 300);
    let files = run_git(
        None,
        [
            "--git-dir",
            &bare.to_string_lossy(),
            "ls-tree",
            "-r",
            "--name-only",
            "main",
        ],
        None,
    );
    assert_eq!(files.lines().count(), 300);
    assert!(
        files.lines().any(|l| l == "src/d05/e01/file_21.txt"),
        "{files}"
    );
}

#[tokio::test]
async fn a_large_tree_clones_and_a_large_push_streams_through() {
    let dir = tempfile::tempdir().unwrap();
    let bare = many_files(dir.path(), 2000);
    let remote = GitRemote::start(&bare, TOKEN).await;
    let work = dir.path().join("clone");
    let started = Instant::now();
    let out = clone(&remote.url, &work, Some(TOKEN));
    eprintln!("clone of 2000 files over HTTP took {:?}", started.elapsed());
    assert!(out.status.success(), "{}", said(&out));
    assert!(work.join("src/d05/e01/file_21.txt").exists());

    // Over 1 MiB of pack: git sends it chunked, with no Content-Length, so http-backend
    // must read the body to its end.
    run_git(Some(&work), ["switch", "--quiet", "-c", "agt/T-0100"], None);
    // Pseudo-random hex, different in every file, so that neither zlib nor deltas shrink
    // the pack below git's 1 MiB post buffer.
    let mut seed: u64 = 42;
    for i in 0..8 {
        let mut text = String::with_capacity(410_000);
        for n in 0..400_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push(char::from_digit((seed >> 60) as u32, 16).unwrap());
            if n % 64 == 63 {
                text.push('\n');
            }
        }
        std::fs::write(work.join(format!("blob_{i}.txt")), text).unwrap();
    }
    run_git(Some(&work), ["add", "--all"], None);
    run_git(Some(&work), ["commit", "--quiet", "-m", "Large"], None);
    let out = git(
        Some(&work),
        &["push", "--quiet", "origin", "agt/T-0100"],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        remote
            .branch_log("agt/T-0100")
            .unwrap()
            .contains(" Large\n")
    );
    let seen = remote.seen();
    assert!(
        seen.iter().any(|r| r.path.ends_with("/git-receive-pack")
            && r.status == 200
            && r.content_length.is_none()),
        "the large push was not sent chunked: {seen:?}"
    );
}

/// ecca's own client-github tools, called directly, against both stand-ins: what they send
/// is what the stand-ins take.
#[tokio::test]
async fn client_github_clones_pushes_and_opens_a_pull_request_on_the_stand_ins() {
    use ecca::mcp::servers::client_github::{
        ClientGithub, CloneArgs, CommitArgs, FileArg, GithubConfig, PullRequestArgs, PushArgs,
    };
    use rmcp::handler::server::wrapper::Parameters;
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;
    let api = GithubApi::start(TOKEN, "acme", "site")
        .await
        .with_repo(&bare);
    let server = |token: &str, workdir: &str| {
        ClientGithub::new(GithubConfig {
            client_id: "acme".into(),
            token: token.into(),
            repo_url: remote.url.clone(),
            api_base: api.base_url.clone(),
            repo_slug: Some(common::git_remote::SERVED_SLUG.into()),
            workdir: dir.path().join(workdir),
        })
    };

    let wrong = server("ghp_wrong", "wrong");
    let err = wrong
        .clone_repo(Parameters(CloneArgs {}))
        .await
        .err()
        .expect("a wrong token cannot clone");
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("ghp_wrong"), "the token leaked: {err}");

    let github = server(TOKEN, "acme");
    let cloned = github.clone_repo(Parameters(CloneArgs {})).await.unwrap();
    assert_eq!(cloned.0.branch, "main");
    let committed = github
        .commit(Parameters(CommitArgs {
            branch: "agt/T-0042".into(),
            message: "Greet politely".into(),
            files: vec![FileArg {
                path: "NOTES.md".into(),
                content: "Polite.\n".into(),
            }],
        }))
        .await
        .unwrap();
    github
        .push(Parameters(PushArgs {
            branch: "agt/T-0042".into(),
        }))
        .await
        .unwrap();
    let log = remote.branch_log("agt/T-0042").unwrap();
    assert!(
        log.starts_with(&format!("{} Greet politely", committed.0.sha)),
        "{log}"
    );

    api.fail_next(502);
    let pr = || PullRequestArgs {
        title: "Greet politely".into(),
        body: "Checks: passed.".into(),
        head: "agt/T-0042".into(),
        base: Some("main".into()),
    };
    let err = github.open_pr(Parameters(pr())).await.err().unwrap();
    assert!(err.contains("502"), "{err}");
    let opened = github.open_pr(Parameters(pr())).await.unwrap();
    assert_eq!(opened.0.number, 1);
    assert_eq!(opened.0.url, format!("{}/acme/site/pull/1", api.base_url));
    assert_eq!(api.pulls.lock().unwrap()[0]["body"], "Checks: passed.");
}

/// git compresses a fetch request over 1 KiB (here: forty "want" lines); http-backend must
/// be told so through HTTP_CONTENT_ENCODING, or it reads gzip as protocol.
#[tokio::test]
async fn a_gzip_fetch_request_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let remote = GitRemote::start(&bare, TOKEN).await;
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    for clone_dir in [&ours, &theirs] {
        let out = clone(&remote.url, clone_dir, Some(TOKEN));
        assert!(out.status.success(), "{}", said(&out));
    }
    for i in 0..40 {
        run_git(
            Some(&theirs),
            ["switch", "--quiet", "-c", &format!("agt/T-{i:04}"), "main"],
            None,
        );
        run_git(
            Some(&theirs),
            [
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                &format!("Theirs {i}"),
            ],
            None,
        );
    }
    let out = git(
        Some(&theirs),
        &[
            "push",
            "--quiet",
            "origin",
            "refs/heads/agt/*:refs/heads/agt/*",
        ],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{}", said(&out));

    let out = git(Some(&ours), &["fetch", "--quiet", "origin"], Some(TOKEN));
    assert!(out.status.success(), "{}", said(&out));
    let theirs_head = run_git(Some(&theirs), ["rev-parse", "HEAD"], None);
    let fetched = run_git(Some(&ours), ["rev-parse", "origin/agt/T-0039"], None);
    assert_eq!(fetched, theirs_head);
    let seen = remote.seen();
    assert!(
        seen.iter().any(|r| r.path.ends_with("/git-upload-pack")
            && r.content_encoding.as_deref() == Some("gzip")
            && r.status == 200),
        "no gzip request was seen: {seen:?}"
    );
}
