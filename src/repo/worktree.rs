//! A client's repository on disk: one mirror per client (`DATA_DIR/repos/<client>/repo`, a
//! normal clone without a checkout) and one git worktree per run
//! (`DATA_DIR/worktrees/<T-0042-r1>`) on branch `agt/<task_id>`, cut from the base branch
//! as the mirror last fetched it. The diff a run shows and the commit it delivers are both
//! taken against the base commit recorded when the worktree was made.
//!
//! Every git process goes through [`crate::repo::git`], so each one leaves an audit entry.
//! Operations that change a mirror's refs or worktree list hold that mirror's lock, so two
//! runs of one client never race a fetch against a `worktree add`.

use super::git::{Git, check_branch_name, is_full_sha, resolve_commit, run_git};
use crate::repo::{AuditEntry, DiffSummary, FileChange};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// A run's worktree, as made by [`create_worktree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    /// The directory name under `worktrees/` (`T-0042-r1`).
    pub name: String,
    pub branch: String,
    /// The full sha the branch was cut from; diffs and commits are taken against it.
    pub base_commit: String,
}

/// The delivery commit, as made (or found already made) by [`commit_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    /// False when HEAD already held the change (approving again after a failed push).
    pub created: bool,
}

/// Pathspecs that keep ecca's own temporaries (a write in flight, a backup) out of every
/// `git add`: they are never part of a deliverable.
const STAGE_ALL: &[&str] = &[
    "add",
    "--all",
    "--",
    ".",
    ":(exclude)*.ecca-tmp",
    ":(exclude)*.ecca-bak",
];

/// Where a clone is made before it becomes the mirror: a clone killed half-way is left
/// here, never at the mirror's path, and is thrown away by the next attempt.
const CLONE_STAGING: &str = "repo.ecca-clone";

/// The mirror of a client's repository.
pub fn mirror_dir(data_dir: &Path, client_id: &str) -> PathBuf {
    data_dir.join("repos").join(client_id).join("repo")
}

/// Where runs' worktrees live.
pub fn worktrees_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("worktrees")
}

/// Clones the client's repository once (without a checkout: worktrees hold the files) and
/// fetches it on every later call, so a new run starts from the remote's latest commits.
/// Tokenless: reaches local and public remotes only; a URL carrying a credential is refused.
pub async fn ensure_mirror(
    data_dir: &Path,
    client_id: &str,
    url: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<PathBuf, String> {
    one_component(client_id, "client id")?;
    refuse_credentials(url)?;
    let dir = mirror_dir(data_dir, client_id);
    let lock = mirror_lock(&dir);
    let _held = lock.lock().await;
    if dir.exists() {
        if let Some(current) = complete_clone_origin(&dir, audit).await {
            if current != url {
                run_git(Some(&dir), &["remote", "set-url", "origin", url], audit).await?;
            }
            run_git(
                Some(&dir),
                &["fetch", "--prune", "--quiet", "origin"],
                audit,
            )
            .await?;
            return Ok(dir);
        }
        // A clone killed before it finished (or a directory that is no clone at all): it
        // is redone rather than trusted.
        remove_tree(&dir).await?;
    }
    let parent = dir.parent().unwrap_or(data_dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| {
        format!(
            "could not create {}: {e}; check the data directory's permissions",
            parent.display()
        )
    })?;
    let staging = parent.join(CLONE_STAGING);
    if staging.exists() {
        remove_tree(&staging).await?;
    }
    let target = staging.to_string_lossy().into_owned();
    run_git(
        None,
        &["clone", "--no-checkout", "--quiet", "--", url, &target],
        audit,
    )
    .await?;
    std::fs::rename(&staging, &dir).map_err(|e| {
        format!(
            "could not move the new clone from {} to {}: {e}; check the data directory",
            staging.display(),
            dir.display()
        )
    })?;
    Ok(dir)
}

/// The remote's default branch as the mirror knows it (`origin/HEAD`), else `main` or
/// `master` when the remote has one.
pub async fn default_branch(mirror: &Path, audit: &mut Vec<AuditEntry>) -> Result<String, String> {
    if let Ok(out) = run_git(
        Some(mirror),
        &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
        audit,
    )
    .await
        && let Some(branch) = out.trim().strip_prefix("refs/remotes/origin/")
        && !branch.is_empty()
    {
        return Ok(branch.to_string());
    }
    for candidate in ["main", "master"] {
        let rev = format!("refs/remotes/origin/{candidate}");
        if resolve_commit(mirror, &rev, audit).await.is_some() {
            return Ok(candidate.to_string());
        }
    }
    Err(format!(
        "cannot tell the default branch of {}: origin/HEAD is not set and there is no \
         origin/main or origin/master; name the base branch in the task",
        mirror.display()
    ))
}

/// Makes the run's worktree `worktrees_dir/name` on `branch`, reset (`-B`) to
/// `origin/<base_branch>`. A stale worktree of that name (a crash) is removed first.
pub async fn create_worktree(
    mirror: &Path,
    worktrees_dir: &Path,
    name: &str,
    branch: &str,
    base_branch: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<Worktree, String> {
    one_component(name, "worktree name")?;
    if base_branch.is_empty() || base_branch.starts_with('-') {
        return Err(format!(
            "{base_branch:?} is not a valid base branch; name a branch of the remote such as main"
        ));
    }
    check_branch_name(mirror, branch, audit).await?;
    let lock = mirror_lock(mirror);
    let _held = lock.lock().await;
    std::fs::create_dir_all(worktrees_dir).map_err(|e| {
        format!(
            "could not create {}: {e}; check the data directory's permissions",
            worktrees_dir.display()
        )
    })?;
    let path = worktrees_dir.join(name);
    let remote_ref = format!("refs/remotes/origin/{base_branch}");
    let base_commit = resolve_commit(mirror, &remote_ref, audit)
        .await
        .ok_or_else(|| {
            format!(
                "the remote of {} has no branch {base_branch:?}; fetch the mirror or name \
                 another base branch",
                mirror.display()
            )
        })?;
    clear_stale(mirror, &path, branch, audit).await?;
    let target = path.to_string_lossy().into_owned();
    // The sha, not the remote branch, is checked out: a fetch between the lookup above and
    // this line cannot move the base under the recorded base commit. Parallel checkout (one
    // worker per core) writes a 10,000-file tree about four times faster than git's default
    // single worker (docs/performance.md, "Repositories").
    run_git(
        Some(mirror),
        &[
            "-c",
            "checkout.workers=0",
            "worktree",
            "add",
            "--quiet",
            "-B",
            branch,
            &target,
            &base_commit,
        ],
        audit,
    )
    .await?;
    Ok(Worktree {
        path,
        name: name.to_string(),
        branch: branch.to_string(),
        base_commit,
    })
}

/// Removes a run's worktree (and, when asked, the local branch it was on). A worktree that
/// is already gone is fine; the branch is only known while the worktree is registered.
pub async fn remove_worktree(
    mirror: &Path,
    path: &Path,
    delete_branch: bool,
    audit: &mut Vec<AuditEntry>,
) -> Result<(), String> {
    let lock = mirror_lock(mirror);
    let _held = lock.lock().await;
    let listed = list_worktrees(mirror, audit).await?;
    let wanted = real_path(path);
    let entry = listed.iter().find(|w| w.path == wanted);
    let branch = entry.and_then(|w| w.branch.clone());
    if entry.is_some() && path.exists() {
        let target = path.to_string_lossy().into_owned();
        // Twice --force: also a worktree that is locked or holds changes.
        let removed = run_git(
            Some(mirror),
            &["worktree", "remove", "--force", "--force", &target],
            audit,
        )
        .await;
        if let Err(e) = removed {
            tracing::warn!("{e}; removing the directory instead");
        }
    }
    if path.exists() {
        remove_tree(path).await?;
    }
    run_git(Some(mirror), &["worktree", "prune"], audit).await?;
    if delete_branch && let Some(branch) = branch {
        let short = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
        run_git(
            Some(mirror),
            &["branch", "--quiet", "-D", "--", short],
            audit,
        )
        .await?;
    }
    Ok(())
}

/// Removes every worktree directory not named in `keep` (the runs still going) and prunes
/// every mirror's worktree list; returns the names removed. Branches stay: an ended run's
/// branch may be delivered. Call it when no run is being started, or include the runs
/// being started in `keep`.
pub async fn sweep_worktrees(
    data_dir: &Path,
    keep: &HashSet<String>,
    audit: &mut Vec<AuditEntry>,
) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(entries) = std::fs::read_dir(worktrees_dir(data_dir)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir || keep.contains(&name) {
                continue;
            }
            match remove_tree(&entry.path()).await {
                Ok(()) => removed.push(name),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
    if let Ok(clients) = std::fs::read_dir(data_dir.join("repos")) {
        for client in clients.flatten() {
            let mirror = client.path().join("repo");
            if !mirror.join(".git").is_dir() {
                continue;
            }
            let lock = mirror_lock(&mirror);
            let _held = lock.lock().await;
            if let Err(e) = run_git(Some(&mirror), &["worktree", "prune"], audit).await {
                tracing::warn!("{e}");
            }
        }
    }
    removed.sort();
    removed
}

/// The run's change against its base commit: everything in the worktree, new files
/// included, except ecca's temporaries. Stages first: the worktree's index is the run's own.
pub async fn diff_against_base(
    worktree_path: &Path,
    base_commit: &str,
    max_patch_bytes: usize,
    audit: &mut Vec<AuditEntry>,
) -> Result<DiffSummary, String> {
    require_sha(base_commit)?;
    let wt = Some(worktree_path);
    run_git(wt, STAGE_ALL, audit).await?;
    let against = [
        "diff",
        "--cached",
        "--no-ext-diff",
        "--no-textconv",
        "--find-renames",
    ];
    let statuses = Git::new(wt)
        .args(&against)
        .args(&["--name-status", "-z", base_commit, "--"])
        .run(audit)
        .await?
        .stdout;
    let numstat = Git::new(wt)
        .args(&against)
        .args(&["--numstat", "-z", base_commit, "--"])
        .run(audit)
        .await?
        .stdout;
    let patch = Git::new(wt)
        .args(&against)
        .args(&["--no-color", base_commit, "--"])
        .stdout_cap(max_patch_bytes)
        .run(audit)
        .await?;
    let counts = parse_numstat(&numstat);
    let files = parse_name_status(&statuses)
        .into_iter()
        .map(|(status, path)| {
            let (added, removed, binary) = counts.get(&path).copied().unwrap_or((0, 0, false));
            FileChange {
                path,
                status: status.to_string(),
                added,
                removed,
                binary,
            }
        })
        .collect();
    Ok(DiffSummary {
        base_commit: base_commit.to_string(),
        files,
        patch: patch.stdout,
        patch_truncated: patch.truncated,
    })
}

/// Commits everything in the worktree (ecca's temporaries excluded) with the given author
/// and committer. Idempotent: when HEAD is already past the base and nothing is left to
/// stage, HEAD is returned with `created: false`.
pub async fn commit_all(
    worktree_path: &Path,
    base_commit: &str,
    message: &str,
    author_name: &str,
    author_email: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<Commit, String> {
    require_sha(base_commit)?;
    if message.trim().is_empty() {
        return Err("a commit needs a message; none was given".to_string());
    }
    let wt = Some(worktree_path);
    run_git(wt, STAGE_ALL, audit).await?;
    let staged = run_git(
        wt,
        &["diff", "--cached", "--name-only", "-z", "HEAD", "--"],
        audit,
    )
    .await?;
    if staged.is_empty() {
        let head = resolve_commit(worktree_path, "HEAD", audit)
            .await
            .ok_or_else(|| {
                format!(
                    "{} has no HEAD commit; make the worktree again",
                    worktree_path.display()
                )
            })?;
        if head != base_commit && is_ancestor(worktree_path, base_commit, &head, audit).await {
            return Ok(Commit {
                sha: head,
                created: false,
            });
        }
        return Err(format!(
            "nothing to commit in {}: the worktree holds no change against the base commit \
             {}; the run must change something before it is delivered",
            worktree_path.display(),
            &base_commit[..12]
        ));
    }
    Git::new(wt)
        .args(&["commit", "--quiet", "--no-verify", "-m", message])
        .env("GIT_AUTHOR_NAME", author_name)
        .env("GIT_AUTHOR_EMAIL", author_email)
        .env("GIT_COMMITTER_NAME", author_name)
        .env("GIT_COMMITTER_EMAIL", author_email)
        .run(audit)
        .await?;
    let sha = resolve_commit(worktree_path, "HEAD", audit)
        .await
        .ok_or_else(|| {
            format!(
                "committed in {} but HEAD does not resolve; look at the worktree",
                worktree_path.display()
            )
        })?;
    Ok(Commit { sha, created: true })
}

/// Pushes `branch` from the mirror to its remote, for clients with no token (local or
/// public remotes). A client with a token pushes through the client-github server instead.
pub async fn push_tokenless(
    mirror: &Path,
    branch: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<(), String> {
    check_branch_name(mirror, branch, audit).await?;
    let lock = mirror_lock(mirror);
    let _held = lock.lock().await;
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    run_git(
        Some(mirror),
        &["push", "--quiet", "origin", &refspec],
        audit,
    )
    .await?;
    Ok(())
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    path: PathBuf,
    branch: Option<String>,
    /// Its directory is gone; `git worktree prune` drops it.
    prunable: bool,
}

async fn list_worktrees(mirror: &Path, audit: &mut Vec<AuditEntry>) -> Result<Vec<Listed>, String> {
    let out = run_git(
        Some(mirror),
        &["worktree", "list", "--porcelain", "-z"],
        audit,
    )
    .await?;
    Ok(parse_worktree_list(&out))
}

fn parse_worktree_list(out: &str) -> Vec<Listed> {
    let mut listed = Vec::new();
    let mut current: Option<Listed> = None;
    for field in out.split('\0') {
        if let Some(path) = field.strip_prefix("worktree ") {
            listed.extend(current.take());
            current = Some(Listed {
                path: PathBuf::from(path),
                branch: None,
                prunable: false,
            });
        } else if let Some(cur) = current.as_mut() {
            if let Some(branch) = field.strip_prefix("branch ") {
                cur.branch = Some(branch.to_string());
            } else if field == "prunable" || field.starts_with("prunable ") {
                cur.prunable = true;
            }
        }
    }
    listed.extend(current);
    listed
}

/// Clears what a crashed run left at `path`, and refuses when `branch` is checked out in
/// another live worktree (resetting it there would pull the files from under that run).
async fn clear_stale(
    mirror: &Path,
    path: &Path,
    branch: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<(), String> {
    let listed = list_worktrees(mirror, audit).await?;
    let wanted = real_path(path);
    let full_branch = format!("refs/heads/{branch}");
    let mut prune = listed.iter().any(|w| w.prunable);
    if let Some(other) = listed.iter().find(|w| {
        w.path != wanted && !w.prunable && w.branch.as_deref() == Some(full_branch.as_str())
    }) {
        return Err(format!(
            "branch {branch} is checked out in another worktree at {}; remove that worktree \
             first (worktrees of ended runs are swept)",
            other.path.display()
        ));
    }
    if listed.iter().any(|w| w.path == wanted && !w.prunable) {
        let target = path.to_string_lossy().into_owned();
        let removed = run_git(
            Some(mirror),
            &["worktree", "remove", "--force", "--force", &target],
            audit,
        )
        .await;
        if let Err(e) = removed {
            tracing::warn!("{e}; removing the directory instead");
            prune = true;
        }
    }
    if path.exists() {
        remove_tree(path).await?;
        prune = true;
    }
    if prune {
        run_git(Some(mirror), &["worktree", "prune"], audit).await?;
    }
    Ok(())
}

/// Whether `ancestor` is reachable from `head`, asked so that a "no" is not an error.
async fn is_ancestor(dir: &Path, ancestor: &str, head: &str, audit: &mut Vec<AuditEntry>) -> bool {
    run_git(Some(dir), &["merge-base", ancestor, head], audit)
        .await
        .map(|base| base.trim() == ancestor)
        .unwrap_or(false)
}

/// The origin URL of a clone that finished: a repository whose HEAD is a commit and which
/// knows its origin. `None` for anything less (a clone killed half-way).
async fn complete_clone_origin(dir: &Path, audit: &mut Vec<AuditEntry>) -> Option<String> {
    if !dir.join(".git").is_dir() || resolve_commit(dir, "HEAD", audit).await.is_none() {
        return None;
    }
    run_git(Some(dir), &["remote", "get-url", "origin"], audit)
        .await
        .ok()
        .map(|u| u.trim().to_string())
}

/// `(status, path)` per file from `git diff --name-status -z`; a rename is named by its
/// new path.
fn parse_name_status(out: &str) -> Vec<(&'static str, String)> {
    let mut files = Vec::new();
    let mut fields = out.split('\0').filter(|f| !f.is_empty());
    while let Some(code) = fields.next() {
        let (status, paths) = match code.as_bytes().first() {
            Some(b'A') => ("added", 1),
            Some(b'D') => ("deleted", 1),
            Some(b'R') => ("renamed", 2),
            // A copy leaves the source as it was: the new path is a new file.
            Some(b'C') => ("added", 2),
            _ => ("modified", 1),
        };
        let mut path = None;
        for _ in 0..paths {
            path = fields.next();
        }
        if let Some(p) = path {
            files.push((status, p.to_string()));
        }
    }
    files
}

/// `path → (added, removed, binary)` from `git diff --numstat -z`.
fn parse_numstat(out: &str) -> HashMap<String, (u32, u32, bool)> {
    let mut counts = HashMap::new();
    let mut fields = out.split('\0');
    while let Some(record) = fields.next() {
        let mut parts = record.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // A rename leaves the path empty and names the old and new paths in the next two
        // fields.
        let path = if path.is_empty() {
            let _old = fields.next();
            fields.next().unwrap_or_default()
        } else {
            path
        };
        let binary = added == "-" && removed == "-";
        counts.insert(
            path.to_string(),
            (
                added.parse().unwrap_or(0),
                removed.parse().unwrap_or(0),
                binary,
            ),
        );
    }
    counts
}

fn require_sha(base_commit: &str) -> Result<(), String> {
    if is_full_sha(base_commit) {
        Ok(())
    } else {
        Err(format!(
            "{base_commit:?} is not a full commit sha; pass the base commit recorded when the \
             worktree was made"
        ))
    }
}

/// Refuses anything but one plain path component: the name becomes a directory under a
/// root, and `..`, `/` or an empty name would put it elsewhere.
fn one_component(name: &str, what: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid {what}: it must be one plain path component such as T-0001-r1"
        ))
    }
}

/// Refuses a remote URL with a user and password in it: tokens are stored encrypted and
/// reach git only through the client-github server, never as an argument.
fn refuse_credentials(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let authority = rest.split('/').next().unwrap_or("");
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return Ok(());
    };
    // `ssh://git@host` names a user only; on http(s) any user part is taken as a token.
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if userinfo.contains(':') || web {
        return Err(format!(
            "the repository URL for {host} carries a credential; remove it from the URL and \
             store it as the client's GitHub token"
        ));
    }
    Ok(())
}

/// The path as git records it (real path of the parent directory, then the name), so that
/// paths from `git worktree list` can be compared with the ones ecca builds.
fn real_path(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

async fn remove_tree(path: &Path) -> Result<(), String> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&owned)).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(Err(e)) => Err(format!(
            "could not remove {}: {e}; remove it by hand",
            path.display()
        )),
        Err(e) => Err(format!("removing {} stopped: {e}", path.display())),
    }
}

/// One async lock per mirror, for the operations that change its refs or worktree list.
fn mirror_lock(mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut locks = match LOCKS.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    locks.entry(mirror.to_path_buf()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_one_plain_component() {
        assert!(one_component("T-0001-r1", "name").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "-rf", "a\\b"] {
            assert!(one_component(bad, "name").is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        assert!(refuse_credentials("https://github.com/acme/shop.git").is_ok());
        assert!(refuse_credentials("ssh://git@github.com/acme/shop.git").is_ok());
        assert!(refuse_credentials("/srv/git/shop.git").is_ok());
        let err = refuse_credentials("https://x-access-token:ghp_secret@github.com/a/b")
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("github.com") && !err.contains("ghp_secret"),
            "{err}"
        );
        assert!(refuse_credentials("https://ghp_secret@github.com/a/b").is_err());
    }

    #[test]
    fn name_status_and_numstat_parse_renames_and_binaries() {
        let status = "M\0src/a.py\0R087\0old.txt\0new.txt\0A\0logo.png\0D\0gone.md\0";
        let parsed = parse_name_status(status);
        assert_eq!(
            parsed,
            vec![
                ("modified", "src/a.py".to_string()),
                ("renamed", "new.txt".to_string()),
                ("added", "logo.png".to_string()),
                ("deleted", "gone.md".to_string()),
            ]
        );
        let numstat = "3\t1\tsrc/a.py\u{0}1\t1\t\u{0}old.txt\u{0}new.txt\u{0}-\t-\tlogo.png\u{0}";
        let counts = parse_numstat(numstat);
        assert_eq!(counts.get("src/a.py"), Some(&(3, 1, false)));
        assert_eq!(counts.get("new.txt"), Some(&(1, 1, false)));
        assert_eq!(counts.get("logo.png"), Some(&(0, 0, true)));
    }

    #[test]
    fn worktree_list_is_parsed_per_entry() {
        let out = "worktree /m\0HEAD abc\0branch refs/heads/main\0\0worktree /w/T-1-r1\0HEAD \
                   abc\0branch refs/heads/agt/T-1\0prunable gitdir file points to non-existent \
                   location\0\0";
        let listed = parse_worktree_list(out);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].path, PathBuf::from("/w/T-1-r1"));
        assert_eq!(listed[1].branch.as_deref(), Some("refs/heads/agt/T-1"));
        assert!(listed[1].prunable && !listed[0].prunable);
    }
}
