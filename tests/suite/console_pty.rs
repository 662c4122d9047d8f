//! The real binary in a pseudo-terminal, read through a terminal emulator: launch a task
//! from the New task form, see it reach the approval queue, revise it with a note, see it
//! come back, approve it, and find the decisions and the delivery in the store.

use crate::common;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use rusqlite::{Connection, OpenFlags};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits for `what` on the screen. Every wait gets at least a minute: the machine may
    /// be busy with other builds, and a wait that is met returns at once anyway.
    fn wait_for(&self, what: &str, secs: u64) -> String {
        let secs = secs.max(60);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text();
            if text.contains(what) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "waited {secs} s for {what:?}; the screen shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `bytes`. The console reads its input in order, so the next key needs no pause;
    /// each step waits for what the keys should show instead.
    fn keys(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    fn alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }
}

/// Starts ecca in a pseudo-terminal of `cols`×`rows` on `dir`, with the screen read
/// through a terminal emulator.
fn start(
    dir: &std::path::Path,
    cols: u16,
    rows: u16,
) -> (Box<dyn portable_pty::Child + Send + Sync>, Screen) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(common::ecca_bin());
    cmd.args(["--in-process", "--data-dir", dir.to_str().unwrap()]);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("ANTHROPIC_API_KEY");
    cmd.env_remove("OPENAI_API_KEY");
    let child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let parser = Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(cols), 0)));
    let mut reader = pty.master.try_clone_reader().unwrap();
    let feed = parser.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            feed.lock().unwrap().process(&buf[..n]);
        }
    });
    (
        child,
        Screen {
            parser,
            writer: pty.master.take_writer().unwrap(),
        },
    )
}

#[test]
fn launch_revise_and_approve_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[offline]\nlatency_ms = 200\n[tools]\nmode = \"none\"\n",
    )
    .unwrap();
    let (mut child, mut screen) = start(dir.path(), 140, 40);

    let first = screen.wait_for("No runs yet. Press n to launch a task.", 20);
    assert!(first.contains("OFFLINE MODEL: simulated output and cost (no API key configured)"));

    // Launch from the form: n, type the title, Ctrl-S.
    screen.keys(b"n");
    screen.wait_for("New task", 5);
    screen.keys(b"Write a Python hello world");
    screen.keys(&[0x13]); // Ctrl-S
    screen.wait_for("started: Write a Python hello world", 5);
    screen.wait_for("Approvals (1)", 30);

    // To the approval queue, revise with a note.
    screen.keys(b"2");
    screen.wait_for("T-0001 · Write a Python hello world", 5);
    screen.keys(b"r");
    screen.wait_for("Revise T-0001: a note for the agent", 5);
    screen.keys(b"print it twice");
    screen.keys(&[0x13]);
    screen.wait_for("T-0001 sent back for revision", 5);
    // It comes back, after a second iteration.
    let back = Instant::now() + Duration::from_secs(90);
    loop {
        let text = screen.text();
        if text.contains("Approvals (1)") && text.contains("iterations 2") {
            break;
        }
        assert!(
            Instant::now() < back,
            "the revision never came back:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Approve it: one key on the oldest waiting deliverable.
    screen.keys(b"y");
    // The notice says "approved; delivering", then the delivery's outcome replaces it; a
    // quick delivery may replace it before a frame shows the first.
    screen.wait_for("T-0001 delivered: ", 20);
    screen.keys(b"1");
    screen.wait_for("delivered", 20);
    screen.keys(b"q");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "ecca did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_restored(&screen);

    let conn =
        Connection::open_with_flags(dir.path().join("ecca.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let decisions: Vec<(String, String)> = conn
        .prepare("SELECT decision, note FROM approvals WHERE task_id = 'T-0001' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        decisions,
        [
            ("revise".to_string(), "print it twice".to_string()),
            ("approve".to_string(), String::new())
        ]
    );
    let (status, url, iterations): (String, String, i64) = conn
        .query_row(
            "SELECT status, deliverable_url, iterations FROM code_tasks WHERE id = 'T-0001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), iterations), ("delivered", 2));
    assert!(
        std::path::Path::new(&url).exists(),
        "the bundle is there: {url}"
    );
}

#[test]
fn sigterm_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[tools]\nmode = \"none\"\n").unwrap();
    let (mut child, screen) = start(dir.path(), 80, 24);
    let shown = screen.wait_for("No runs yet", 20);
    assert!(shown.contains("1 Runs"), "it fits 80x24: {shown}");
    assert!(screen.alternate_screen());
    let pid = child.process_id().unwrap() as i32;
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "ecca ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
    wait_restored(&screen);
}

/// Waits until the emulator has read the bytes that leave the alternate screen: the
/// process may have exited before the reader thread got to its last output.
fn wait_restored(screen: &Screen) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while screen.alternate_screen() {
        assert!(
            Instant::now() < deadline,
            "the terminal was not restored:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
