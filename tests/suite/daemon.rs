//! The real binary as a daemon: `ecca serve` owns the runs; `ecca run` and `ecca approve`
//! from other processes go through its socket; a client killed mid-run leaves the run
//! going; SIGTERM mid-run checkpoints it and the next `ecca serve` resumes it
//! with no cost row lost or counted twice; a socket left by a killed daemon is ignored.
//! Consoles attach to it (starting one when none runs): runs outlive a killed console, two
//! consoles show the same runs, and a console reattaches to a daemon that came back.

use crate::common;

use std::io::BufRead;
use std::process::{Child, Stdio};

fn ecca(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::ecca_command(dir).args(args).output().unwrap()
}

fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = ecca(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ecca {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `ecca serve`, once it says it is ready; its stdout goes on being read into the buffer.
fn serve(dir: &std::path::Path) -> (Child, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut child = common::ecca_command(dir)
        .args(["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let buf = said.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.contains("stops it") {
                let _ = ready_tx.send(());
            }
            buf.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("serve never became ready: {}", said.lock().unwrap()));
    (child, said)
}

fn status(dir: &std::path::Path, task: &str) -> Option<String> {
    let tasks: serde_json::Value =
        serde_json::from_slice(&ecca(dir, &["tasks", "--json"]).stdout).ok()?;
    tasks
        .as_array()?
        .iter()
        .find(|t| t["id"] == task)
        .and_then(|t| t["status"].as_str().map(String::from))
}

/// `ecca run` of a small task for acme, in the background.
fn start_run(dir: &std::path::Path) -> Child {
    common::ecca_command(dir)
        .args([
            "run",
            "--task",
            "Write a Python hello world",
            "--client",
            "acme",
            "--dry-run",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Every cost row as (id, purpose); none before the store exists.
fn purposes(db: &std::path::Path) -> Vec<(i64, String)> {
    use rusqlite::{Connection, OpenFlags};
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return vec![];
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let Ok(mut stmt) = conn.prepare("SELECT id, purpose FROM cost_log ORDER BY id") else {
        return vec![];
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

#[test]
fn runs_live_in_the_daemon_and_headless_commands_go_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _cleanup = StopDaemons(d.to_path_buf());
    std::fs::write(d.join("config.toml"), "[offline]\nlatency_ms = 1500\n").unwrap();
    ok(
        d,
        &[
            "clients",
            "add",
            "acme",
            "--name",
            "Acme",
            "--budget-usd",
            "100",
        ],
    );
    let (mut daemon, said) = serve(d);
    let socket = d.join("ecca.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is private");

    // A run started from another process, then that process killed: the run goes on.
    let mut client = start_run(d);
    common::wait_until("T-0001 working in the daemon", 120, || {
        status(d, "T-0001").is_some_and(|s| s == "running")
    });
    client.kill().unwrap();
    client.wait().unwrap();
    common::wait_until("T-0001 at the gate though its client is gone", 180, || {
        status(d, "T-0001").is_some_and(|s| s == "awaiting_approval")
    });

    // A console asked to run its own supervisor will not fight the daemon for the data
    // dir: it says what to do.
    let out = ecca(d, &["--in-process"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ecca serve --stop"),
        "{err}"
    );

    // Approve from a third process, through the daemon.
    let out = ecca(d, &["approve", "T-0001"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("through ecca serve"), "{stderr}");
    assert!(stdout.contains("T-0001 delivered"), "{stdout}");

    // Stop the daemon mid-run (SIGTERM): the run is checkpointed; the next daemon resumes
    // it and no cost row is lost or counted twice.
    let db = d.join("ecca.db");
    let mut second_client = start_run(d);
    let first_rows = purposes(&db).len();
    common::wait_until("two calls of T-0002 recorded", 120, || {
        purposes(&db).len() >= first_rows + 2
    });
    // SIGTERM, as a service manager stops it.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success(), "{}", said.lock().unwrap());
    assert!(
        said.lock().unwrap().contains("T-0002 interrupted"),
        "{}",
        said.lock().unwrap()
    );
    assert!(!socket.exists(), "the socket goes with the daemon");
    // Its client was waiting on the daemon: it ends saying so, not with a result.
    assert!(!second_client.wait().unwrap().success());
    let before = purposes(&db);
    assert_eq!(status(d, "T-0002").as_deref(), Some("interrupted"));

    let (mut daemon, said) = serve(d);
    assert!(
        said.lock().unwrap().contains("T-0002 resumed"),
        "{}",
        said.lock().unwrap()
    );
    common::wait_until("T-0002 at the gate after the restart", 180, || {
        status(d, "T-0002").is_some_and(|s| s == "awaiting_approval")
    });
    let after = purposes(&db);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "rows before the stop are kept"
    );
    // Each call of T-0002 once, in the loop's order: a plan, then per iteration a write,
    // its tests and an evaluation (how many iterations the evaluator asks for does not
    // matter; a lost or a doubled row breaks the pattern).
    let second: Vec<&str> = after[first_rows..]
        .iter()
        .map(|(_, p)| p.as_str())
        .collect();
    let iterations = second.len().saturating_sub(1) / 3;
    let expected: Vec<&str> = std::iter::once("plan")
        .chain(["write", "tests", "evaluate"].repeat(iterations.max(1)))
        .collect();
    assert_eq!(second, expected, "each call of T-0002 once, in order");
    let calls = common::read_store(
        &db,
        "code_tasks",
        "SELECT model_calls FROM code_tasks WHERE id = 'T-0002'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(
        calls,
        Some(second.len() as i64),
        "the task counts the rows it has"
    );

    // A daemon killed outright leaves its socket file: it is ignored, and commands run in
    // their own process again.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGKILL) };
    daemon.wait().unwrap();
    assert!(socket.exists());
    let out = ecca(d, &["reject", "T-0002", "--note", "not needed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("through ecca serve"), "{stderr}");
    assert_eq!(status(d, "T-0002").as_deref(), Some("rejected"));
}

/// The pids of `ecca serve` processes of data dir `d` (read from /proc).
pub(crate) fn serve_pids(d: &std::path::Path) -> Vec<i32> {
    let dir = d.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).to_string())
                .collect();
            args.iter().any(|a| a == "serve") && args.iter().any(|a| a == &dir)
        })
        .collect()
}

/// Stops every `ecca serve` of the data dir when the test ends, however it ends.
pub(crate) struct StopDaemons(pub(crate) std::path::PathBuf);

impl Drop for StopDaemons {
    fn drop(&mut self) {
        for pid in serve_pids(&self.0) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn consoles_attach_to_ecca_serve_and_its_runs_outlive_them() {
    use common::pty::start_binary;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _cleanup = StopDaemons(d.to_path_buf());
    std::fs::write(
        d.join("config.toml"),
        "[offline]\nlatency_ms = 3000\n[tools]\nmode = \"none\"\n",
    )
    .unwrap();
    let d_str = d.to_str().unwrap();

    // The first console finds no daemon and starts one, in a session of its own.
    let mut first = start_binary(&["--data-dir", d_str], &[], 140, 40);
    first
        .screen
        .wait_for("No runs yet. Press n to launch a task.", 120);
    assert_eq!(serve_pids(d).len(), 1, "one ecca serve started");
    for n in 1..=4 {
        first.screen.keys(b"n");
        first.screen.wait_for("New task", 60);
        first
            .screen
            .keys(format!("Attached run {n}: a Python hello world").as_bytes());
        first.screen.keys(&[0x13]); // Ctrl-S
        first
            .screen
            .wait_for(&format!("started: Attached run {n}"), 60);
    }

    // A second console attaches to the same daemon and shows the same four runs.
    let mut second = start_binary(&["--data-dir", d_str], &[], 140, 40);
    for n in 1..=4 {
        second
            .screen
            .wait_for(&format!("Attached run {n}: a Python"), 60);
    }
    assert_eq!(serve_pids(d).len(), 1, "the second console started none");
    // The header names the daemon's tool servers, as an in-process console does.
    second.screen.wait_for("· no tool", 60);

    // Killing the first console stops none of the runs: all four reach the gate. (Each
    // takes at least 12 s of simulated calls: some are still working at the kill.)
    let working: Vec<Option<String>> = (1..=4).map(|n| status(d, &format!("T-000{n}"))).collect();
    first.child.kill().unwrap();
    first.wait_exit(60);
    assert!(
        working.iter().any(|s| s.as_deref() == Some("running")),
        "runs were working when the console went: {working:?}"
    );
    common::wait_until(
        "four runs at the gate after the console was killed",
        240,
        || {
            (1..=4)
                .all(|n| status(d, &format!("T-000{n}")).is_some_and(|s| s == "awaiting_approval"))
        },
    );
    second.screen.wait_for("Approvals (4)", 60);

    // A third console attaches; an approval from another process, while both are
    // attached, shows in both.
    let mut third = start_binary(&["--data-dir", d_str], &[], 140, 40);
    third.screen.wait_for("Approvals (4)", 60);
    let out = ecca(d, &["approve", "T-0001"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("through ecca serve"), "{stderr}");
    second.screen.wait_for("Approvals (3)", 60);
    third.screen.wait_for("Approvals (3)", 60);
    third.screen.keys(b"q");
    third.wait_exit(60);

    // The daemon stops: the console says so and stays; when a daemon is back, it
    // reattaches and goes on showing what happens.
    ok(d, &["serve", "--stop"]);
    second.screen.wait_for("lost ecca serve", 60);
    let (mut daemon, _said) = serve(d);
    second.screen.wait_for("attached to ecca serve again", 60);
    let out = ecca(d, &["reject", "T-0002", "--note", "not needed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    second.screen.wait_for("Approvals (2)", 60);

    // Quitting the console leaves the daemon and its runs alone.
    second.screen.keys(b"q");
    second.wait_exit(60);
    assert_eq!(status(d, "T-0003").as_deref(), Some("awaiting_approval"));
    ok(d, &["serve", "--stop"]);
    assert!(daemon.wait().unwrap().success());
    common::wait_until("no ecca serve left", 60, || serve_pids(d).is_empty());
}

#[test]
fn batches_run_and_cancel_through_ecca_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _cleanup = StopDaemons(d.to_path_buf());
    std::fs::write(
        d.join("config.toml"),
        "[offline]\nlatency_ms = 300\n[tools]\nmode = \"none\"\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "clients",
            "add",
            "rork",
            "--name",
            "Rork",
            "--budget-usd",
            "100",
        ],
    );
    let manifest = |name: &str, apps: usize| {
        let mut m = format!("[batch]\nname = \"{name}\"\nclient = \"rork\"\nconcurrency = 1\n");
        for i in 0..apps {
            m.push_str(&format!(
                "[[apps]]\nname = \"app-{i}\"\ndescription = \"A counter app number {i} with a reset button\"\n"
            ));
        }
        let path = d.join(format!("{name}.toml"));
        std::fs::write(&path, m).unwrap();
        path
    };
    let (mut daemon, said) = serve(d);

    // A batch launched from a command runs in the daemon, which reports its end.
    let small = manifest("small", 2);
    let out = ecca(d, &["batch", "run", small.to_str().unwrap(), "--dry-run"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("through ecca serve"), "{stderr}");
    assert!(stdout.contains("2 awaiting approval"), "{stdout}");

    // A batch cancelled from a third process while its own command follows it.
    let long = manifest("long", 4);
    let mut follower = common::ecca_command(d)
        .args(["batch", "run", long.to_str().unwrap(), "--dry-run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("B-0002 working", 120, || {
        status(d, "T-0003").is_some_and(|s| s == "running")
    });
    let out = ecca(d, &["batch", "cancel", "B-0002"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("through ecca serve"), "{stderr}");
    for task in ["T-0003", "T-0004", "T-0005", "T-0006"] {
        assert_eq!(status(d, task).as_deref(), Some("cancelled"), "{task}");
    }
    // The command that followed it ends with the batch.
    common::wait_until("the following command ends with its batch", 60, || {
        follower.try_wait().unwrap().is_some()
    });
    ok(d, &["serve", "--stop"]);
    assert!(daemon.wait().unwrap().success(), "{}", said.lock().unwrap());
}
