//! The git door against real repositories: a bare "remote" in a temp dir seeded with one
//! commit, a mirror of it in a data dir, and runs' worktrees cut from that mirror.

use ecca::repo::AuditEntry;
use ecca::repo::worktree::{
    commit_all, create_worktree, default_branch, diff_against_base, ensure_mirror, mirror_dir,
    push_tokenless, remove_worktree, sweep_worktrees, worktrees_dir,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A line no git argument ever carries: a file's content, to prove the audit never holds it.
const CONTENT_MARKER: &str = "print('content-marker-7f3a')";

/// The git the test's own set-up runs (never through the door under test). The audit
/// count test points it at the real binary while the door's `git` is a counting wrapper.
fn real_git() -> String {
    std::env::var("ECCA_TEST_REAL_GIT").unwrap_or_else(|_| "git".to_string())
}

/// Runs git for the test's set-up and checks; panics with git's words when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(real_git())
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Seeder",
            "-c",
            "user.email=seeder@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent dir");
    }
    std::fs::write(path, text).expect("write file");
}

/// A bare remote with one commit on `main`, and the working clone that seeded it (used to
/// push more commits later).
struct Remote {
    _tmp: tempfile::TempDir,
    bare: PathBuf,
    seed: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let tmp = tempfile::tempdir().expect("temp dir");
        let bare = tmp.path().join("remote.git");
        let seed = tmp.path().join("seed");
        std::fs::create_dir_all(&bare).expect("bare dir");
        std::fs::create_dir_all(&seed).expect("seed dir");
        git(&bare, &["init", "--quiet", "--bare"]);
        git(&seed, &["init", "--quiet"]);
        write(&seed.join("README.md"), "# Shop\n");
        write(&seed.join("src/app.py"), "def main():\n    return 1\n");
        write(&seed.join("docs/old.md"), "old notes\n");
        git(&seed, &["add", "--all"]);
        git(&seed, &["commit", "--quiet", "-m", "seed"]);
        let url = bare.to_string_lossy().into_owned();
        git(&seed, &["remote", "add", "origin", &url]);
        git(&seed, &["push", "--quiet", "origin", "main"]);
        Remote {
            _tmp: tmp,
            bare,
            seed,
        }
    }

    fn url(&self) -> String {
        self.bare.to_string_lossy().into_owned()
    }

    fn head(&self) -> String {
        git(&self.bare, &["rev-parse", "refs/heads/main"])
    }

    /// Another commit on the remote's `main`, as someone else would push it.
    fn push_commit(&self, file: &str, text: &str) -> String {
        write(&self.seed.join(file), text);
        git(&self.seed, &["add", "--all"]);
        git(&self.seed, &["commit", "--quiet", "-m", "more"]);
        git(&self.seed, &["push", "--quiet", "origin", "main"]);
        self.head()
    }
}

fn tools(audit: &[AuditEntry]) -> Vec<&str> {
    audit.iter().map(|e| e.tool.as_str()).collect()
}

/// A data dir with the remote mirrored for client `acme` and one worktree on `agt/T-0001`.
async fn mirrored_worktree(
    remote: &Remote,
    audit: &mut Vec<AuditEntry>,
) -> (tempfile::TempDir, PathBuf, ecca::repo::worktree::Worktree) {
    let data = tempfile::tempdir().expect("data dir");
    let mirror = ensure_mirror(data.path(), "acme", &remote.url(), audit)
        .await
        .expect("mirror");
    let wt = create_worktree(
        &mirror,
        &worktrees_dir(data.path()),
        "T-0001-r1",
        "agt/T-0001",
        "main",
        audit,
    )
    .await
    .expect("worktree");
    (data, mirror, wt)
}

/// The change every diff and commit test makes: one file modified, one new untracked
/// file, one deleted, and ecca's temporaries that must stay out.
fn make_change(wt: &Path) {
    write(
        &wt.join("src/app.py"),
        "def main():\n    return 2\n\n\ndef extra():\n    return 3\n",
    );
    write(&wt.join("notes/new.txt"), &format!("{CONTENT_MARKER}\n"));
    std::fs::remove_file(wt.join("docs/old.md")).expect("delete docs/old.md");
    write(&wt.join("x.ecca-tmp"), "half-written\n");
    write(&wt.join("src/app.py.ecca-bak"), "backup\n");
}

#[tokio::test]
async fn mirror_clones_once_then_fetch_picks_up_a_new_remote_commit() {
    let remote = Remote::new();
    let data = tempfile::tempdir().expect("data dir");
    let mut audit = Vec::new();
    let mirror = ensure_mirror(data.path(), "acme", &remote.url(), &mut audit)
        .await
        .expect("first mirror");
    assert_eq!(mirror, data.path().join("repos/acme/repo"));
    assert_eq!(mirror, mirror_dir(data.path(), "acme"));
    assert!(tools(&audit).contains(&"git clone"), "{:?}", tools(&audit));
    assert_eq!(git(&mirror, &["rev-parse", "origin/main"]), remote.head());
    // --no-checkout: the mirror's files live in worktrees only.
    assert!(!mirror.join("README.md").exists());
    assert_eq!(
        default_branch(&mirror, &mut audit).await.as_deref(),
        Ok("main")
    );

    let newer = remote.push_commit("src/more.py", "x = 1\n");
    let mut again = Vec::new();
    ensure_mirror(data.path(), "acme", &remote.url(), &mut again)
        .await
        .expect("second mirror");
    assert!(tools(&again).contains(&"git fetch"), "{:?}", tools(&again));
    assert!(!tools(&again).contains(&"git clone"), "{:?}", tools(&again));
    assert_eq!(git(&mirror, &["rev-parse", "origin/main"]), newer);
}

#[tokio::test]
async fn a_half_made_clone_is_redone_not_trusted() {
    let remote = Remote::new();
    let data = tempfile::tempdir().expect("data dir");
    // What a clone killed mid-way leaves: a repository with its origin but no commit, and
    // a staging directory from an attempt that never finished.
    let mirror = mirror_dir(data.path(), "acme");
    std::fs::create_dir_all(&mirror).expect("mirror dir");
    git(&mirror, &["init", "--quiet"]);
    git(&mirror, &["remote", "add", "origin", &remote.url()]);
    write(
        &data.path().join("repos/acme/repo.ecca-clone/.git/HEAD"),
        "junk",
    );
    let mut audit = Vec::new();
    let made = ensure_mirror(data.path(), "acme", &remote.url(), &mut audit)
        .await
        .expect("mirror over a half-made clone");
    assert!(tools(&audit).contains(&"git clone"), "{:?}", tools(&audit));
    assert_eq!(git(&made, &["rev-parse", "origin/main"]), remote.head());
    assert!(!data.path().join("repos/acme/repo.ecca-clone").exists());
}

#[tokio::test]
async fn worktree_is_on_the_task_branch_at_the_base_commit() {
    let remote = Remote::new();
    let mut audit = Vec::new();
    let (data, _mirror, wt) = mirrored_worktree(&remote, &mut audit).await;
    assert_eq!(wt.path, data.path().join("worktrees/T-0001-r1"));
    assert_eq!(wt.name, "T-0001-r1");
    assert_eq!(wt.branch, "agt/T-0001");
    assert_eq!(wt.base_commit, remote.head());
    assert_eq!(wt.base_commit.len(), 40);
    assert_eq!(
        git(&wt.path, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "agt/T-0001"
    );
    assert_eq!(
        std::fs::read_to_string(wt.path.join("src/app.py")).expect("checked out"),
        "def main():\n    return 1\n"
    );
    assert!(tools(&audit).contains(&"git worktree add"));
}

#[tokio::test]
async fn a_stale_worktree_of_the_same_name_is_replaced() {
    let remote = Remote::new();
    let mut audit = Vec::new();
    let (data, mirror, wt) = mirrored_worktree(&remote, &mut audit).await;
    write(&wt.path.join("leftover.txt"), "from a crashed run\n");
    let newer = remote.push_commit("src/more.py", "x = 1\n");
    ensure_mirror(data.path(), "acme", &remote.url(), &mut audit)
        .await
        .expect("fetch");
    let again = create_worktree(
        &mirror,
        &worktrees_dir(data.path()),
        "T-0001-r1",
        "agt/T-0001",
        "main",
        &mut audit,
    )
    .await
    .expect("worktree over a stale one");
    assert_eq!(again.base_commit, newer);
    assert!(!again.path.join("leftover.txt").exists());
    assert!(again.path.join("src/more.py").exists());
}

#[tokio::test]
async fn diff_shows_modified_new_and_deleted_files_but_no_temporaries() {
    let remote = Remote::new();
    let mut audit = Vec::new();
    let (_data, _mirror, wt) = mirrored_worktree(&remote, &mut audit).await;
    make_change(&wt.path);
    let diff = diff_against_base(&wt.path, &wt.base_commit, 1 << 20, &mut audit)
        .await
        .expect("diff");
    assert_eq!(diff.base_commit, wt.base_commit);
    let summary: Vec<(&str, &str, u32, u32)> = diff
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status.as_str(), f.added, f.removed))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("docs/old.md", "deleted", 0, 1),
            ("notes/new.txt", "added", 1, 0),
            ("src/app.py", "modified", 5, 1),
        ]
    );
    assert!(!diff.patch_truncated);
    assert!(diff.patch.contains("+def extra():"), "{}", diff.patch);
    assert!(!diff.patch.contains("ecca-tmp") && !diff.patch.contains("ecca-bak"));
    let staged = git(&wt.path, &["ls-files"]);
    assert!(!staged.contains("ecca-"), "temporaries staged: {staged}");

    // A cap cuts the patch on a line boundary and says so.
    let capped = diff_against_base(&wt.path, &wt.base_commit, 120, &mut audit)
        .await
        .expect("capped diff");
    assert!(capped.patch_truncated);
    assert!(capped.patch.len() <= 120 && !capped.patch.is_empty());
    assert!(capped.patch.ends_with('\n'));
    assert!(diff.patch.starts_with(&capped.patch));
    assert_eq!(capped.files, diff.files);
}

#[tokio::test]
async fn commit_is_idempotent_and_push_lands_the_branch_in_the_remote() {
    let remote = Remote::new();
    let mut audit = Vec::new();
    let (_data, mirror, wt) = mirrored_worktree(&remote, &mut audit).await;

    let nothing = commit_all(
        &wt.path,
        &wt.base_commit,
        "T-0001: change",
        "ecca",
        "e@x",
        &mut audit,
    )
    .await;
    let err = nothing.expect_err("a commit with no change is refused");
    assert!(err.contains("nothing to commit"), "{err}");

    make_change(&wt.path);
    let first = commit_all(
        &wt.path,
        &wt.base_commit,
        "T-0001: change",
        "Agency Bot",
        "bot@agency.example",
        &mut audit,
    )
    .await
    .expect("first commit");
    assert!(first.created);
    assert_ne!(first.sha, wt.base_commit);
    let second = commit_all(
        &wt.path,
        &wt.base_commit,
        "T-0001: change",
        "Agency Bot",
        "bot@agency.example",
        &mut audit,
    )
    .await
    .expect("second commit");
    assert!(!second.created);
    assert_eq!(second.sha, first.sha);
    assert_eq!(
        git(
            &wt.path,
            &["rev-list", "--count", &format!("{}..HEAD", wt.base_commit)]
        ),
        "1"
    );
    assert_eq!(
        git(&wt.path, &["log", "-1", "--format=%an <%ae> / %cn <%ce>"]),
        "Agency Bot <bot@agency.example> / Agency Bot <bot@agency.example>"
    );
    let committed = git(&wt.path, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(
        !committed.contains("ecca-"),
        "temporaries committed: {committed}"
    );

    push_tokenless(&mirror, "agt/T-0001", &mut audit)
        .await
        .expect("push");
    assert_eq!(
        git(
            &remote.bare,
            &["log", "-1", "--format=%H", "refs/heads/agt/T-0001"]
        ),
        first.sha
    );

    let recorded = serde_json::to_string(&audit).expect("audit as json");
    assert!(!recorded.contains("content-marker"), "{recorded}");
    assert!(!recorded.contains("T-0001: change"), "{recorded}");
}

#[tokio::test]
async fn remove_and_sweep_leave_no_worktree_behind() {
    let remote = Remote::new();
    let mut audit = Vec::new();
    let (data, mirror, first) = mirrored_worktree(&remote, &mut audit).await;
    let dir = worktrees_dir(data.path());
    let second = create_worktree(&mirror, &dir, "T-0002-r1", "agt/T-0002", "main", &mut audit)
        .await
        .expect("second worktree");
    let third = create_worktree(&mirror, &dir, "T-0003-r1", "agt/T-0003", "main", &mut audit)
        .await
        .expect("third worktree");
    write(&second.path.join("dirty.txt"), "unsaved work\n");

    remove_worktree(&mirror, &first.path, true, &mut audit)
        .await
        .expect("remove");
    assert!(!first.path.exists());
    assert_eq!(git(&mirror, &["branch", "--list", "agt/T-0001"]), "");
    remove_worktree(&mirror, &first.path, true, &mut audit)
        .await
        .expect("removing again is fine");

    let keep: HashSet<String> = ["T-0003-r1".to_string()].into();
    let swept = sweep_worktrees(data.path(), &keep, &mut audit).await;
    assert_eq!(swept, vec!["T-0002-r1".to_string()]);
    assert!(third.path.exists());
    let swept = sweep_worktrees(data.path(), &HashSet::new(), &mut audit).await;
    assert_eq!(swept, vec!["T-0003-r1".to_string()]);

    let left: Vec<_> = std::fs::read_dir(&dir).expect("worktrees dir").collect();
    assert!(left.is_empty(), "{left:?}");
    let listed = git(&mirror, &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
    // The ended runs' branches stay for delivery.
    assert_ne!(git(&mirror, &["branch", "--list", "agt/T-0002"]), "");
}

#[tokio::test]
async fn worktree_names_that_are_not_one_component_are_refused() {
    let remote = Remote::new();
    let data = tempfile::tempdir().expect("data dir");
    let mut audit = Vec::new();
    let mirror = ensure_mirror(data.path(), "acme", &remote.url(), &mut audit)
        .await
        .expect("mirror");
    let dir = worktrees_dir(data.path());
    for bad in ["..", "../escape", "a/b", "/tmp/x", "", "."] {
        let made = create_worktree(&mirror, &dir, bad, "agt/T-0001", "main", &mut audit).await;
        let err = made.expect_err("a bad name is refused");
        assert!(err.contains("one plain path component"), "{bad:?}: {err}");
    }
    assert!(!data.path().join("escape").exists());
    assert!(!tools(&audit).contains(&"git worktree add"));
    let bad_client = ensure_mirror(data.path(), "../other", &remote.url(), &mut audit).await;
    assert!(bad_client.is_err());
    let bad_branch = create_worktree(&mirror, &dir, "T-1-r1", "-delete", "main", &mut audit).await;
    assert!(bad_branch.is_err());
}

/// Counts the git processes started while the whole flow runs, with a `git` on PATH that
/// logs each top-level call, and compares the count with the audit. Runs the flow in a
/// child process so that PATH is changed for it alone.
#[test]
fn audit_has_one_entry_per_git_invocation() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let real = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .expect("sh runs");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    assert!(!real.is_empty(), "git is not on PATH");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let log = tmp.path().join("calls.log");
    // Only the top-level call is logged: git's own children inherit the marker.
    let script = format!(
        "#!/bin/sh\nif [ -z \"$ECCA_WRAPPED_GIT\" ]; then echo call >> '{}'; fi\n\
         ECCA_WRAPPED_GIT=1 exec '{real}' \"$@\"\n",
        log.display()
    );
    write(&bin.join("git"), &script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The harness names a test by its path below the crate: `repo_git::audited_flow_…`.
    let child_test: Vec<&str> = module_path!()
        .split("::")
        .skip(1)
        .chain(["audited_flow_in_a_child"])
        .collect();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            &child_test.join("::"),
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PATH", path)
        .env("ECCA_TEST_REAL_GIT", &real)
        .env("ECCA_TEST_GIT_LOG", &log)
        .output()
        .expect("child test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "run by audit_has_one_entry_per_git_invocation with a counting git on PATH"]
async fn audited_flow_in_a_child() {
    let Ok(log) = std::env::var("ECCA_TEST_GIT_LOG") else {
        eprintln!("skipped: only audit_has_one_entry_per_git_invocation can run this flow");
        return;
    };
    let log = PathBuf::from(log);
    let remote = Remote::new();
    let calls = || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert_eq!(
        calls(),
        0,
        "the set-up must not go through the counting git"
    );
    let mut audit = Vec::new();
    let (data, mirror, wt) = mirrored_worktree(&remote, &mut audit).await;
    default_branch(&mirror, &mut audit)
        .await
        .expect("default branch");
    make_change(&wt.path);
    diff_against_base(&wt.path, &wt.base_commit, 1 << 20, &mut audit)
        .await
        .expect("diff");
    commit_all(
        &wt.path,
        &wt.base_commit,
        "T-0001: change",
        "ecca",
        "e@x",
        &mut audit,
    )
    .await
    .expect("commit");
    push_tokenless(&mirror, "agt/T-0001", &mut audit)
        .await
        .expect("push");
    remove_worktree(&mirror, &wt.path, false, &mut audit)
        .await
        .expect("remove");
    sweep_worktrees(data.path(), &HashSet::new(), &mut audit).await;
    // A failing call is audited too.
    let _ = create_worktree(
        &mirror,
        &worktrees_dir(data.path()),
        "T-0009-r1",
        "agt/T-0009",
        "no-such-branch",
        &mut audit,
    )
    .await
    .expect_err("no such base branch");
    assert!(audit.iter().any(|e| e.outcome.starts_with("failed: ")));
    assert!(audit.len() > 10, "{:?}", tools(&audit));
    assert_eq!(calls(), audit.len(), "{:#?}", tools(&audit));
    for entry in &audit {
        assert!(entry.tool.starts_with("git "), "{entry:?}");
        assert_eq!(entry.args_digest.len(), 16, "{entry:?}");
    }
}
