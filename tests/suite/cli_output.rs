//! What the headless commands print: no control sequence from outside reaches the
//! terminal, a reader that leaves early ends the command quietly, and every refusal names
//! a way on that the named command accepts.

use crate::common;

use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

fn ecca(dir: &Path, args: &[&str]) -> Output {
    common::ecca_command(dir).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data dir whose runs use the offline model with no tools: quick, and no Docker.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[tools]\nmode = \"none\"\n").unwrap();
    dir
}

/// Runs one dry-run task to the approval gate.
fn seed_task(dir: &Path, title: &str) -> Output {
    let out = ecca(dir, &["run", "--task", title, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// Bytes a terminal would act on: ESC, BEL, other C0 controls but newline and tab, DEL,
/// and C1 controls (U+0080–U+009F, encoded C2 80–C2 9F).
fn control_bytes(b: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        let c0 = (c < 0x20 && c != b'\n' && c != b'\t') || c == 0x7f;
        let c1 = c == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if c0 || c1 {
            found.push(format!("{c:#04x} at {i}"));
        }
    }
    found
}

#[test]
fn control_sequences_in_a_title_never_reach_the_terminal() {
    let dir = data_dir();
    let d = dir.path();
    let title =
        "Hello\u{1b}]0;pwned\u{07} world\u{1b}[2J\u{9b}31m\u{9d}0;c1\u{9c}\r\u{8}\u{7} done";
    let run = seed_task(d, title);
    assert_eq!(
        control_bytes(&run.stdout),
        Vec::<String>::new(),
        "run stdout"
    );
    assert_eq!(
        control_bytes(&run.stderr),
        Vec::<String>::new(),
        "run stderr"
    );
    assert!(
        text(&run.stderr).contains("Hello world done"),
        "the title's text is still shown: {}",
        text(&run.stderr)
    );

    let tasks = ecca(d, &["tasks"]);
    assert!(tasks.status.success(), "{}", text(&tasks.stderr));
    assert_eq!(control_bytes(&tasks.stdout), Vec::<String>::new(), "tasks");
    assert!(text(&tasks.stdout).contains("Hello world done"));

    // JSON keeps the title whole, every control character escaped.
    let json = ecca(d, &["tasks", "--json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    assert_eq!(control_bytes(&json.stdout), Vec::<String>::new(), "json");
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc[0]["title"], title);
}

#[test]
fn a_reader_that_leaves_early_ends_the_listing_quietly() {
    let dir = data_dir();
    let d = dir.path();
    seed_task(d, "Write a Python hello world");
    // Far more rows than a pipe holds (64 KiB), so `ecca tasks` is still writing when the
    // reader leaves after the first line.
    {
        let conn = Connection::open(d.join("ecca.db")).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute_batch("CREATE TEMP TABLE seed AS SELECT * FROM code_tasks")
            .unwrap();
        for i in 2..=2000 {
            tx.execute("UPDATE seed SET id = ?1", [format!("T-{i:04}")])
                .unwrap();
            tx.execute_batch("INSERT INTO code_tasks SELECT * FROM seed")
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut child = common::ecca_command(d)
        .args(["tasks", "--limit", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("TASK"), "{first}");
    drop(reader); // as `head -1` does
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(err, "", "nothing on stderr: no panic, no backtrace");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a reader leaving is not a failure: {:?}",
        out.status
    );
}

#[test]
fn the_simulated_footnote_shows_only_when_a_cost_is_simulated() {
    let dir = data_dir();
    let d = dir.path();
    seed_task(d, "Write a Python hello world");
    let note = "* simulated cost";
    let out = ecca(d, &["tasks"]);
    assert!(text(&out.stdout).contains(note), "{}", text(&out.stdout));

    // The same task as if it had run on a real provider.
    Connection::open(d.join("ecca.db"))
        .unwrap()
        .execute("UPDATE code_tasks SET model_mode = 'anthropic'", [])
        .unwrap();
    let out = ecca(d, &["tasks"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("T-0001"), "{listing}");
    assert!(!listing.contains(note), "nothing is simulated: {listing}");
}

#[test]
fn a_budget_stop_says_which_budget_and_what_to_do() {
    let dir = data_dir();
    let d = dir.path();
    let out = ecca(
        d,
        &[
            "run",
            "--task",
            "Write a Python hello world",
            "--dry-run",
            "--budget-usd",
            "0.000001",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: task T-0001 failed: it reached its budget of $"),
        "{err}"
    );
    assert!(last.contains("--budget-usd"), "says what to do: {last}");
}

#[test]
fn a_task_awaiting_approval_is_pointed_at_the_decisions() {
    let dir = data_dir();
    let d = dir.path();
    seed_task(d, "Write a Python hello world");
    for command in ["resume", "retry"] {
        let out = ecca(d, &[command, "T-0001"]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("task T-0001 is awaiting_approval")
                && err.contains("`ecca approve T-0001`"),
            "{command}: {err}"
        );
        assert!(
            !err.contains("ecca retry") && !err.contains("ecca resume"),
            "{command} points at a command that refuses this task: {err}"
        );
    }
    // The advice holds: approving works.
    let out = ecca(d, &["approve", "T-0001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("T-0001 delivered"),
        "{}",
        text(&out.stdout)
    );
}
