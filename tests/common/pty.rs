//! The real ecca binary in a pseudo-terminal, its output read through a terminal emulator
//! (vt100), so a test sees the screen an operator sees and types the keys an operator types.
//!
//! Every wait is for something on the screen or in the process, with a deadline of at least
//! a minute: the machine may be busy with other builds, and a met condition returns at once.

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest deadline any wait gets.
const MIN_WAIT_SECS: u64 = 60;

/// What the console shows, and its keyboard.
pub struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
}

/// A running console: the process and its screen.
pub struct Console {
    pub child: Box<dyn Child + Send + Sync>,
    pub screen: Screen,
}

/// Starts `ecca --in-process ARGS` (the console with its own supervisor: nothing is left
/// running after the test) in a pseudo-terminal of `cols`×`rows`, with `env` set and no
/// model key, model endpoint, config path or data dir taken from the test's own environment.
pub fn start_console(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Console {
    let mut with = vec!["--in-process"];
    with.extend_from_slice(args);
    start_binary(&with, env, cols, rows)
}

/// Starts `ecca ARGS` in a pseudo-terminal as [`start_console`] does, as an operator would:
/// the console attaches to `ecca serve`, starting one when none runs.
pub fn start_binary(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Console {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal opens");
    let mut cmd = CommandBuilder::new(super::ecca_bin());
    cmd.args(args);
    for var in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "ECCA_CONFIG",
        "ECCA_HOME",
        "ECCA_GITHUB_API",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = pty
        .slave
        .spawn_command(cmd)
        .expect("ecca starts in the pseudo-terminal");
    drop(pty.slave);
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("a terminal size above zero");
    let parser = Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(cols), 0)));
    let mut reader = pty
        .master
        .try_clone_reader()
        .expect("the terminal's output can be read");
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
    Console {
        child,
        screen: Screen {
            parser,
            writer: pty
                .master
                .take_writer()
                .expect("the terminal's input can be written"),
        },
    }
}

impl Screen {
    /// The screen's text, one line per row.
    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Types `bytes`. The console reads its input in order, so the next key needs no pause;
    /// each step waits for what the keys should show instead.
    pub fn keys(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .expect("keys reach the console");
        self.writer.flush().expect("keys reach the console");
    }

    pub fn alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }

    /// Waits for `what` anywhere on the screen; returns the screen that showed it.
    pub fn wait_for(&self, what: &str, secs: u64) -> String {
        self.wait_until(
            &format!("{what:?}"),
            secs,
            |_| None,
            |text| text.contains(what),
        )
    }

    /// Waits for one line of the screen holding every one of `parts` (a table row: the
    /// task and its state) and returns that line; fails at once, with the screen, when a
    /// line holding `parts[0]` holds one of `never` instead.
    pub fn wait_for_line(&self, parts: &[&str], never: &[&str], secs: u64) -> String {
        let key = parts.first().copied().unwrap_or_default();
        let matching = |text: &str| {
            text.lines()
                .find(|line| parts.iter().all(|p| line.contains(p)))
                .map(str::to_string)
        };
        let text = self.wait_until(
            &format!("a line with {parts:?}"),
            secs,
            |text| {
                text.lines()
                    .find(|line| line.contains(key) && never.iter().any(|bad| line.contains(bad)))
                    .map(|line| format!("the line {:?}", line.trim()))
            },
            |text| matching(text).is_some(),
        );
        matching(&text).unwrap_or_default()
    }

    /// Polls the screen until `met` holds for its text; panics with the screen after `secs`
    /// (at least a minute), or as soon as `failed` says why it never will.
    pub fn wait_until(
        &self,
        what: &str,
        secs: u64,
        failed: impl Fn(&str) -> Option<String>,
        met: impl Fn(&str) -> bool,
    ) -> String {
        let secs = secs.max(MIN_WAIT_SECS);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text();
            if met(&text) {
                return text;
            }
            if let Some(why) = failed(&text) {
                panic!("waiting for {what}, it will not come: {why}; the screen shows:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "waited {secs} s for {what}; the screen shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the emulator has read the bytes that leave the alternate screen: the
    /// process may have exited before the reader thread got to its last output.
    pub fn wait_restored(&self) {
        let deadline = Instant::now() + Duration::from_secs(MIN_WAIT_SECS);
        while self.alternate_screen() {
            assert!(
                Instant::now() < deadline,
                "the terminal was not restored:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Console {
    /// Waits for the process to exit (at least a minute) and returns whether it succeeded.
    pub fn wait_exit(&mut self, secs: u64) -> portable_pty::ExitStatus {
        let secs = secs.max(MIN_WAIT_SECS);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("the console's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ecca did not exit within {secs} s; the screen shows:\n{}",
                self.screen.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    /// A failed test leaves no console running behind it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}
