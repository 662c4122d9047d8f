//! The file-writing servers stay inside their root: planted links, directories swapped for
//! links while a call runs, the root itself named as a file, half-applied diffs, and links
//! that come with a cloned repository. Real files, real threads, real git.

use ecca::mcp::client::McpClients;
use ecca::mcp::servers::client_github::{
    ClientGithub, CloneArgs, CommitArgs, FileArg, GithubConfig,
};
use ecca::mcp::servers::code_assistant::{ApplyDiffArgs, CodeAssistant, CreateFileArgs};
use ecca::mcp::servers::code_context::{CodeContext, ListFilesArgs, StructureArgs};
use ecca::mcp::servers::confine::Root;
use rmcp::handler::server::wrapper::Parameters;
use serde_json::json;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A project root and, beside it, a directory no write may ever reach.
struct Sandbox {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    root: PathBuf,
    trap: PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().to_path_buf();
    let root = top.join("project");
    let trap = top.join("trap");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&trap).unwrap();
    Sandbox {
        _tmp: tmp,
        top,
        root,
        trap,
    }
}

/// Every name under `dir`, recursively, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn assistant(root: &Path) -> CodeAssistant {
    CodeAssistant::new(Root::new(root).unwrap())
}

async fn create_file(
    server: &CodeAssistant,
    path: &str,
    content: &str,
    overwrite: bool,
) -> Result<(), String> {
    server
        .create_file(Parameters(CreateFileArgs {
            path: path.into(),
            content: content.into(),
            overwrite,
        }))
        .await
        .map(|_| ())
}

async fn apply_diff(server: &CodeAssistant, diff: &str) -> Result<Vec<(String, String)>, String> {
    server
        .apply_diff(Parameters(ApplyDiffArgs { diff: diff.into() }))
        .await
        .map(|applied| {
            applied
                .0
                .files
                .into_iter()
                .map(|f| (f.path, f.action))
                .collect()
        })
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

/// `ecca mcp serve code-assistant` over a root, as its own process: a fresh process, so
/// the temporary and backup names it picks are known (`.NAME.PID-N.ecca-tmp`, its pid and
/// a counter from 0).
struct AssistantProcess {
    child: std::process::Child,
    clients: McpClients,
    _data: tempfile::TempDir,
}

impl AssistantProcess {
    fn start(root: &Path) -> AssistantProcess {
        use std::io::BufRead;
        let data = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecca"))
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "mcp",
                "serve",
                "code-assistant",
                "--listen",
                "127.0.0.1:0",
                "--root",
            ])
            .arg(root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        let clients = McpClients::new([("s".to_string(), url)], Duration::from_secs(60));
        AssistantProcess {
            child,
            clients,
            _data: data,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn call(&self, tool: &str, args: serde_json::Value) -> serde_json::Value {
        self.clients.call("s", tool, args).await.unwrap()
    }
}

impl Drop for AssistantProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plants, beside `name`, a link to the outside under each of the first temporary and
/// backup names the server process `pid` will try. Both draw on one counter: the
/// temporary file takes the first free number (4, after the 4 planted), the backup the
/// numbers after it (5 to 15 planted).
fn plant_names(root: &Path, trap: &Path, name: &str, pid: u32) {
    for (suffix, count) in [("tmp", 4), ("bak", 16)] {
        for n in 0..count {
            symlink(
                trap.join(format!("{name}-{suffix}-{n}")),
                root.join(format!(".{name}.{pid}-{n}.ecca-{suffix}")),
            )
            .unwrap();
        }
    }
}

/// Item 1: the temporary names beside a file are planted as links to the outside, under
/// the very names the server process will pick.
#[tokio::test]
async fn a_planted_temporary_name_never_leads_a_write_outside() {
    let s = sandbox();
    std::fs::write(s.root.join("a.py"), "x = 1\n").unwrap();
    std::fs::write(s.root.join("b.py"), "def greet():\n    pass\n").unwrap();
    std::fs::write(s.trap.join("victim.txt"), "keep").unwrap();
    symlink(s.trap.join("victim.txt"), s.root.join("victim-link")).unwrap();

    // Each call in a fresh process, so each one's first names are the planted ones.
    let server = AssistantProcess::start(&s.root);
    plant_names(&s.root, &s.trap, "a.py", server.pid());
    let diff = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
    server.call("apply_diff", json!({"diff": diff})).await;
    drop(server);
    let server = AssistantProcess::start(&s.root);
    plant_names(&s.root, &s.trap, "new.txt", server.pid());
    server
        .call(
            "create_file",
            json!({"path": "new.txt", "content": "fresh\n"}),
        )
        .await;
    drop(server);
    let server = AssistantProcess::start(&s.root);
    plant_names(&s.root, &s.trap, "b.py", server.pid());
    server
        .call(
            "refactor",
            json!({"old_name": "greet", "new_name": "welcome"}),
        )
        .await;
    drop(server);

    assert_eq!(tree(&s.trap), ["victim.txt"], "nothing was created outside");
    assert_eq!(
        std::fs::read_to_string(s.trap.join("victim.txt")).unwrap(),
        "keep"
    );
    for (name, content) in [
        ("a.py", "x = 2\n"),
        ("new.txt", "fresh\n"),
        ("b.py", "def welcome():\n    pass\n"),
    ] {
        let path = s.root.join(name);
        assert!(!is_link(&path), "{name} is a plain file, not a link");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "{name}");
    }
    let planted = tree(&s.root)
        .into_iter()
        .filter(|n| n.contains(".ecca-"))
        .filter(|n| is_link(&s.root.join(n)))
        .count();
    assert_eq!(
        planted,
        3 * 20,
        "every planted link is still there, untouched"
    );
}

/// Counts how often another thread's work counter moved between two calls of the
/// writer: how many times the two really interleaved. On a loaded machine the threads may
/// take turns a scheduler slice at a time rather than run side by side, so the writer goes
/// on until they have interleaved often enough for a race to be seen, not for a fixed
/// number of calls.
struct Interleaving<'a> {
    other: &'a AtomicU64,
    last: u64,
    count: u32,
}

impl<'a> Interleaving<'a> {
    const WANTED: u32 = 50;
    const MIN_CALLS: u32 = 400;
    const MAX_CALLS: u32 = 20_000;

    fn new(other: &'a AtomicU64) -> Self {
        Interleaving {
            other,
            last: other.load(Ordering::Relaxed),
            count: 0,
        }
    }

    fn observe(&mut self) {
        let now = self.other.load(Ordering::Relaxed);
        if now != self.last {
            self.count += 1;
            self.last = now;
        }
    }

    /// Whether the writer should make call number `calls` (counted from 0).
    fn more(&self, calls: u32) -> bool {
        calls < Self::MAX_CALLS && (calls < Self::MIN_CALLS || self.count < Self::WANTED)
    }

    fn check(&self) {
        assert!(
            self.count >= 10,
            "the threads interleaved only {} times: the race was not exercised",
            self.count
        );
    }
}

/// Swaps two names in one step (`renameat2` with `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(
        rc,
        0,
        "exchange failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Item 2: a thread swaps a directory for a link to the outside while files are created
/// in it.
#[tokio::test]
async fn a_directory_swapped_for_a_link_mid_write_never_leads_outside() {
    let s = sandbox();
    std::fs::create_dir(s.root.join("sub")).unwrap();
    let server = assistant(&s.root);
    let done = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    symlink(&s.trap, s.root.join("link")).unwrap();
    let swapper = {
        let (root, done, swaps) = (s.root.clone(), done.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // Each exchange is atomic, so `sub` is always there: a real folder one
                // moment, a link to the outside the next.
                exchange(&root.join("sub"), &root.join("link"));
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut written = 0;
    let mut turns = Interleaving::new(&swaps);
    let mut i = 0;
    while turns.more(i) {
        if create_file(&server, &format!("sub/f{i}.txt"), "x", true)
            .await
            .is_ok()
        {
            written += 1;
        }
        i += 1;
        turns.observe();
    }
    done.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    turns.check();
    assert_eq!(
        tree(&s.trap),
        Vec::<String>::new(),
        "nothing landed outside"
    );
    // The real folder is `sub` or `link` now, whichever the last exchange left.
    let inside: Vec<String> = tree(&s.root)
        .into_iter()
        .filter(|n| n.contains('/'))
        .collect();
    assert_eq!(
        inside.len(),
        written,
        "every write that succeeded is inside"
    );
    assert!(
        inside
            .iter()
            .all(|n| n.ends_with(".txt") && !n.contains("ecca")),
        "no temporaries are left: {inside:?}"
    );
}

/// Item 3: the root itself is not a file to create, and refusing it leaves nothing behind.
#[tokio::test]
async fn naming_the_root_as_a_file_is_refused_and_leaves_nothing() {
    let s = sandbox();
    std::fs::write(s.root.join("a.py"), "x = 1\n").unwrap();
    let server = assistant(&s.root);
    for path in ["", ".", "./", " "] {
        let msg = create_file(&server, path, "x", true).await.unwrap_err();
        assert!(
            msg.contains("names the project root itself"),
            "{path:?}: {msg}"
        );
    }
    let diff = "--- /dev/null\n+++ b/.\n@@ -0,0 +1 @@\n+x\n";
    let msg = apply_diff(&server, diff).await.unwrap_err();
    assert!(msg.contains("names the project root itself"), "{msg}");
    assert_eq!(tree(&s.top), ["project", "project/a.py", "trap"]);
}

/// Item 4: a diff changes every file or none, and a file named twice is refused.
#[tokio::test]
async fn a_diff_changes_every_file_or_none() {
    let s = sandbox();
    std::fs::write(s.root.join("a.py"), "x = 1\ny = 2\nz = 3\n").unwrap();
    std::fs::write(s.root.join("plain"), "not a folder\n").unwrap();
    let server = assistant(&s.root);
    let modify_a = "--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n-x = 1\n+x = 10\n y = 2\n z = 3\n";

    // The second file cannot be created (its folder is a file): the first stays as it was.
    let blocked = format!("{modify_a}--- /dev/null\n+++ b/plain/b.py\n@@ -0,0 +1 @@\n+b = 1\n");
    let msg = apply_diff(&server, &blocked).await.unwrap_err();
    assert!(
        msg.contains("plain is not a folder") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("a.py")).unwrap(),
        "x = 1\ny = 2\nz = 3\n"
    );
    assert_eq!(tree(&s.root), ["a.py", "plain"], "no temporaries are left");

    // The same file twice: refused whole, not one hunk silently kept.
    let second = "--- a/a.py\n+++ b/a.py\n@@ -3 +3 @@\n-z = 3\n+z = 30\n";
    let msg = apply_diff(&server, &format!("{modify_a}{second}"))
        .await
        .unwrap_err();
    assert!(
        msg.contains("a.py more than once") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("a.py")).unwrap(),
        "x = 1\ny = 2\nz = 3\n"
    );

    // A new file in a new folder beside a modified file: both happen.
    let both = format!("{modify_a}--- /dev/null\n+++ b/newdir/b.py\n@@ -0,0 +1 @@\n+b = 1\n");
    let files = apply_diff(&server, &both).await.unwrap();
    assert_eq!(
        files,
        [
            ("a.py".to_string(), "modified".to_string()),
            ("newdir/b.py".to_string(), "created".to_string())
        ]
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("a.py")).unwrap(),
        "x = 10\ny = 2\nz = 3\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("newdir/b.py")).unwrap(),
        "b = 1\n"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// Item 5: links that come with the client's repository are not written through, and a
/// failed commit says git's reason.
#[tokio::test]
async fn client_github_commit_refuses_links_from_the_repository_and_says_why_git_failed() {
    let s = sandbox();
    let origin = s.top.join("origin");
    std::fs::create_dir(&origin).unwrap();
    git(&origin, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::write(origin.join("README.md"), "hello\n").unwrap();
    symlink(s.trap.join("planted.txt"), origin.join("notes.txt")).unwrap();
    symlink(&s.trap, origin.join("docs")).unwrap();
    git(&origin, &["add", "--all"]);
    git(&origin, &["commit", "--quiet", "-m", "start"]);

    let server = ClientGithub::new(GithubConfig {
        client_id: "acme".into(),
        token: "secret-token".into(),
        repo_url: origin.to_string_lossy().into_owned(),
        api_base: "http://127.0.0.1:9".into(),
        repo_slug: None,
        workdir: s.top.join("work"),
    });
    server.clone_repo(Parameters(CloneArgs {})).await.unwrap();
    let commit = |path: &str, content: &str| CommitArgs {
        branch: "agt/T-1".into(),
        message: "work".into(),
        files: vec![FileArg {
            path: path.into(),
            content: content.into(),
        }],
    };
    for path in ["notes.txt", "docs/a.md"] {
        let msg = server
            .commit(Parameters(commit(path, "planted\n")))
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(msg.contains("symbolic link"), "{path}: {msg}");
    }
    assert_eq!(
        tree(&s.trap),
        Vec::<String>::new(),
        "nothing written outside"
    );

    // The same content again: git has nothing to commit and says so on stdout.
    let msg = server
        .commit(Parameters(commit("README.md", "hello\n")))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        msg.starts_with("git commit failed: ") && msg.contains("nothing to commit"),
        "{msg}"
    );
    let done = server
        .commit(Parameters(commit("README.md", "hello again\n")))
        .await
        .unwrap();
    assert_eq!(done.0.files, ["README.md"]);
}

/// A small deterministic generator, so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &["a", "b", "c", "a/b", "b/c", "c/a"];

/// One random change of the tree: mkdir, a link to the outside, a rename or a removal.
/// Only the tree's own directories are walked into (checked without following links), so
/// these changes never reach outside themselves; the writer creates no links.
fn mutate(root: &Path, trap: &Path, rng: &mut Rng) {
    let name = rng.pick(NAMES);
    let path = root.join(name);
    let parent_is_real = path
        .parent()
        .and_then(|p| std::fs::symlink_metadata(p).ok())
        .is_some_and(|m| m.is_dir());
    if !parent_is_real {
        return;
    }
    let _ = match rng.next() % 5 {
        0 => std::fs::create_dir(&path),
        1 => symlink(trap, &path),
        2 => symlink(trap.join("file.txt"), &path),
        3 => {
            let other = root.join(rng.pick(&["a", "b", "c"]));
            std::fs::rename(&path, other)
        }
        _ => match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) => Err(e),
        },
    };
}

/// The confinement property: while another thread randomly makes folders, plants links to
/// the outside and renames things in the root, nothing the writer does lands outside.
#[tokio::test]
async fn random_tree_changes_never_let_a_write_out() {
    for seed in [0x9E37_79B9_7F4A_7C15_u64, 0xD1B5_4A32_D192_ED03] {
        let s = sandbox();
        let server = assistant(&s.root);
        let done = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU64::new(0));
        let mutator = {
            let (root, trap) = (s.root.clone(), s.trap.clone());
            let (done, changes) = (done.clone(), changes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ 0xA5A5);
                while !done.load(Ordering::Relaxed) {
                    mutate(&root, &trap, &mut rng);
                    changes.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let mut rng = Rng(seed);
        let mut turns = Interleaving::new(&changes);
        let mut i = 0;
        while turns.more(i) {
            i += 1;
            turns.observe();
            let dir = rng.pick(NAMES);
            let file = format!("{dir}/f{i}.txt");
            let _ = if rng.next().is_multiple_of(2) {
                create_file(&server, &file, "x\n", rng.next().is_multiple_of(2)).await
            } else {
                let other = format!("{}/g{i}.txt", rng.pick(NAMES));
                let diff = format!(
                    "--- /dev/null\n+++ b/{file}\n@@ -0,0 +1 @@\n+x\n--- /dev/null\n+++ b/{other}\n@@ -0,0 +1 @@\n+y\n"
                );
                apply_diff(&server, &diff).await.map(|_| ())
            };
        }
        done.store(true, Ordering::Relaxed);
        mutator.join().unwrap();
        turns.check();
        assert_eq!(
            tree(&s.trap),
            Vec::<String>::new(),
            "seed {seed:#x}: nothing landed outside"
        );
        let top: Vec<String> = tree(&s.top)
            .into_iter()
            .filter(|n| !n.starts_with("project/"))
            .collect();
        assert_eq!(
            top,
            ["project", "trap"],
            "seed {seed:#x}: nothing beside the root"
        );
    }
}

mod leftovers;
mod reads;
mod writes;
