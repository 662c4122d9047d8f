//! The headless commands against a store that fails, cannot be opened, or is being made
//! for the first time, and a run that is told to stop.

use crate::common;

use ecca::domain::TaskStatus;
use ecca::supervisor::{Supervisor, SupervisorOptions};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Output, Stdio};

fn ecca(dir: &Path, args: &[&str]) -> Output {
    common::ecca_command(dir).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data dir whose simulated calls take `latency_ms`, with no tools (no Docker needed).
fn data_dir(latency_ms: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[offline]\nlatency_ms = {latency_ms}\n[tools]\nmode = \"none\"\n"),
    )
    .unwrap();
    dir
}

fn recorded_calls(db: &Path) -> Option<i64> {
    common::read_store(db, "cost_log", "SELECT COUNT(*) FROM cost_log", |r| {
        r.get(0)
    })
}

fn task_status(db: &Path) -> Option<(String, Option<String>)> {
    common::read_store(
        db,
        "code_tasks",
        "SELECT status, status_reason FROM code_tasks WHERE id = 'T-0001'",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Mid-run, the process may write no more to any file (as on a full disk: every write
/// fails with EFBIG, which SQLite reports as "disk I/O error").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_run_fails_the_command_and_the_next_start_finds_it_interrupted() {
    let dir = data_dir(1000);
    let d = dir.path();
    let db = d.join("ecca.db");
    let mut cmd = common::ecca_command(d);
    cmd.args(["run", "--task", "Write a Python hello world", "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Without this the kernel's SIGXFSZ would kill the process at the first refused write.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    common::wait_until("the first recorded call", 120, || {
        assert!(child.try_wait().unwrap().is_none(), "ecca ended too soon");
        recorded_calls(&db).is_some_and(|n| n >= 1)
    });
    let no_more_bytes = libc::rlimit {
        rlim_cur: 1,
        rlim_max: libc::RLIM_INFINITY,
    };
    let set = unsafe {
        libc::prlimit(
            child.id() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &no_more_bytes,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed run fails: {err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: task T-0001 stopped because the store failed: ")
            && last.contains("disk I/O error")
            && last.contains("free space")
            && last.contains("`ecca resume T-0001`"),
        "says what failed and what to do: {err}"
    );

    // The next start finds the task interrupted and resumable.
    let config = ecca::config::Config::load(&d.join("config.toml")).unwrap();
    let sup = Supervisor::start(SupervisorOptions::new(d.to_path_buf(), config))
        .await
        .unwrap();
    let task = sup.store().task("T-0001").unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Interrupted);
    assert!(
        task.status_reason
            .as_deref()
            .is_some_and(|r| r.contains("ecca resume T-0001")),
        "{:?}",
        task.status_reason
    );
}

#[test]
fn a_store_that_cannot_be_opened_names_the_file_why_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("ecca.db");
    std::fs::create_dir(&db).unwrap();
    let out = ecca(d, &["tasks"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: could not open the store {}: it is a directory, not a file; move it aside, or choose another data dir with --data-dir",
            db.display()
        )
    );

    std::fs::remove_dir(&db).unwrap();
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let out = ecca(d, &["tasks"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: could not open the store {}: ",
            db.display()
        )) && err.contains("file is not a database")
            && err.contains("move it aside and restore a backup"),
        "{err}"
    );
}

#[test]
fn a_data_dir_ecca_creates_is_private() {
    let parent = tempfile::tempdir().unwrap();
    let d = parent.path().join("new").join("ecca-data");
    let out = ecca(&d, &["tasks"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d), 0o700, "the data dir");
    assert_eq!(mode(&d.join("logs")), 0o700, "the logs");
    assert_eq!(mode(&d.join("ecca.db")), 0o600, "the store");
    for side in ["ecca.db-wal", "ecca.db-shm"] {
        let p = d.join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
}

#[test]
fn approving_needs_no_model_key() {
    let dir = data_dir(0);
    let d = dir.path();
    let out = ecca(
        d,
        &["run", "--task", "Write a Python hello world", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The same deliverable as if an Anthropic model had written it; no key is set now.
    Connection::open(d.join("ecca.db"))
        .unwrap()
        .execute("UPDATE code_tasks SET model_mode = 'anthropic'", [])
        .unwrap();
    let out = ecca(d, &["approve", "T-0001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("T-0001 delivered"),
        "{}",
        text(&out.stdout)
    );
    // Revising calls the model again, so it still needs the key.
    let out = ecca(d, &["run", "--task", "Second one", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    Connection::open(d.join("ecca.db"))
        .unwrap()
        .execute("UPDATE code_tasks SET model_mode = 'anthropic'", [])
        .unwrap();
    let out = ecca(d, &["revise", "T-0002", "--note", "print it twice"]);
    assert!(
        text(&out.stderr).contains("ANTHROPIC_API_KEY is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sigterm_checkpoints_a_headless_run_and_says_how_to_resume() {
    let dir = data_dir(1000);
    let d = dir.path();
    let db = d.join("ecca.db");
    let mut child = common::ecca_command(d)
        .args(["run", "--task", "Write a Python hello world", "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until("the first recorded call", 120, || {
        assert!(child.try_wait().unwrap().is_none(), "ecca ended too soon");
        recorded_calls(&db).is_some_and(|n| n >= 1)
    });
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.signal(),
        None,
        "it handled SIGTERM instead of dying of it: {err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        text(&out.stdout).contains("T-0001 interrupted: `ecca resume T-0001`"),
        "{}",
        text(&out.stdout)
    );
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: stopped by SIGTERM; T-0001 interrupted at its last checkpoint; `ecca resume T-0001` continues it"
    );
    let (status, reason) = task_status(&db).unwrap();
    assert_eq!(status, "interrupted");
    assert!(
        reason.is_some_and(|r| r.contains("ecca resume T-0001")),
        "the reason says how to go on"
    );
    let calls = recorded_calls(&db).unwrap();

    // Resuming finishes it, and no call is counted twice.
    let out = ecca(d, &["resume", "T-0001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("T-0001 awaiting_approval"));
    assert!(recorded_calls(&db).unwrap() >= calls);
}
