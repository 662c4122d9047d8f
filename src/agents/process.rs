//! An agent CLI as a supervised child: its own process group, stdin closed, a clean
//! environment (only what the kind asks for, so no other secret of ecca's reaches it), its
//! stdout parsed line by line into [`AgentEvent`]s. It is stopped — SIGTERM to the whole
//! group, SIGKILL after a grace — when the caller asks (cancel, budget), at its timeout, or
//! when it has printed nothing for the stall limit; and the group is killed once it exits,
//! so no tool process it started outlives it.

use super::events::{AgentEvent, StreamParser};
use super::output::{Output, READ_BATCH, READ_IDLE};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// What to start and how long to let it run.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The most a run may take in all.
    pub timeout: Duration,
    /// The most it may go without printing a line.
    pub stall: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Unique to this run; put in the environment as `ECCA_AGENT_RUN`, so every process
    /// the agent starts can be found and stopped with it.
    pub marker: String,
}

/// The environment variable that marks a run's processes.
pub const MARKER_VAR: &str = "ECCA_AGENT_RUN";

/// Why ecca stopped an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    /// The live cost reached the cap; the sentence says what and which cap.
    Budget(String),
    Timeout(Duration),
    Stalled(Duration),
}

impl StopReason {
    /// The run's failure reason.
    pub fn sentence(&self) -> String {
        match self {
            StopReason::Cancelled => "cancelled by the operator".into(),
            StopReason::Budget(why) => format!("budget: {why}"),
            StopReason::Timeout(d) => format!(
                "timeout: the agent ran longer than {} minute(s) and was stopped; raise [agents] timeout_minutes if the task needs longer",
                d.as_secs().div_ceil(60)
            ),
            StopReason::Stalled(d) => format!(
                "stalled: the agent printed nothing for {} s and was stopped (its model stream may hang); [agents] stall_minutes sets the limit",
                d.as_secs()
            ),
        }
    }
}

/// How the child ended.
#[derive(Debug)]
pub struct Exit {
    /// The exit code, or the signal that ended it (`None` when it could not be waited for).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
    /// The end of what it wrote to stderr, for the reason of a failure.
    pub stderr_tail: String,
}

/// A running agent: its events, a way to stop it, and its exit. Its output is read on a
/// timer and parsed in the caller's task as [`Running::next`] is awaited.
pub struct Running {
    pub pid: u32,
    /// Until the output ends.
    output: Option<Output>,
    /// When the output is read next, and how long after that if it is still quiet.
    read_timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    read_every: Duration,
    parser: Box<dyn StreamParser + Send>,
    ready: std::collections::VecDeque<AgentEvent>,
    marker: String,
    timeout: Duration,
    stall: Duration,
    grace: Duration,
    deadline: Instant,
    last_output: Instant,
    /// Armed for the earliest of deadline, stall and kill; moved on only when it fires,
    /// rather than once per line.
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    stopped: Option<StopReason>,
    kill_at: Option<Instant>,
    /// Until the output ends: the child, and the task reading its stderr.
    child: Option<(tokio::process::Child, tokio::task::JoinHandle<String>)>,
    /// Once the output has ended: the task that waits for the child and its group.
    ending: Option<tokio::task::JoinHandle<Exit>>,
    exit: Option<Exit>,
}

const STDERR_TAIL: usize = 4096;

/// Starts the agent. The parser's events arrive through [`Running::next`]; the last one is
/// always `Finished`.
pub fn spawn(launch: Launch, parser: Box<dyn StreamParser + Send>) -> Result<Running, String> {
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .current_dir(&launch.cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // A working PATH and locale; everything else the kind names itself.
    for key in ["PATH", "LANG", "TERM"] {
        if let Some(v) = std::env::var_os(key) {
            command.env(key, v);
        }
    }
    command.envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command.env(MARKER_VAR, &launch.marker);
    let mut child = command.spawn().map_err(|e| {
        format!(
            "could not start {}: {e}; check it with `ecca agents check`",
            launch.program.display()
        )
    })?;
    let pid = child
        .id()
        .ok_or_else(|| format!("{} exited as it started", launch.program.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the agent's stdout was not captured")?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or("the agent's stderr was not captured")?;
    let stderr_task = tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        let start = tail.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&tail[start..]).into_owned()
    });
    let stdout = stdout
        .into_owned_fd()
        .map_err(|e| format!("the agent's output could not be read: {e}"))?;
    let output =
        Output::new(stdout).map_err(|e| format!("the agent's output could not be read: {e}"))?;
    let now = Instant::now();
    let deadline = now + launch.timeout;
    Ok(Running {
        pid,
        output: Some(output),
        read_timer: Box::pin(tokio::time::sleep_until(now + READ_BATCH)),
        read_every: READ_BATCH,
        parser,
        ready: std::collections::VecDeque::new(),
        marker: launch.marker,
        timeout: launch.timeout,
        stall: launch.stall,
        grace: launch.grace,
        deadline,
        last_output: now,
        timer: Box::pin(tokio::time::sleep_until(deadline.min(now + launch.stall))),
        stopped: None,
        kill_at: None,
        child: Some((child, stderr_task)),
        ending: None,
        exit: None,
    })
}

impl Running {
    /// The next event; `None` once the agent's output is over and `Finished` was given.
    /// Cancel-safe: the output is read and parsed between awaits, and the wait for the
    /// exit goes on in its own task.
    pub async fn next(&mut self) -> Option<AgentEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.exit.is_some() {
                return None;
            }
            if let Some(ending) = &mut self.ending {
                let exit = ending.await.unwrap_or_else(|e| Exit {
                    code: None,
                    signal: None,
                    stopped: self.stopped.clone(),
                    stderr_tail: format!("the agent's supervisor task failed: {e}"),
                });
                self.ending = None;
                self.exit = Some(exit);
                self.ready.extend(self.parser.finish());
                continue;
            }
            tokio::select! {
                _ = self.read_timer.as_mut() => self.on_read(),
                _ = self.timer.as_mut() => self.on_timer(),
            }
        }
    }

    /// Whether events already parsed are waiting: the caller can gather them (a read's
    /// streamed text, published as one piece) before doing anything slower.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Time to read: parse what waits in the pipe, and read again soon while the agent
    /// writes, less often while it is quiet.
    fn on_read(&mut self) {
        let Some(output) = &mut self.output else {
            return;
        };
        let found = output.read_waiting();
        let now = Instant::now();
        if found.bytes > 0 {
            self.last_output = now;
            self.read_every = READ_BATCH;
        } else {
            self.read_every = (self.read_every * 2).min(READ_IDLE);
        }
        for line in &found.lines {
            self.ready.extend(self.parser.feed_line(line));
        }
        if found.ended {
            self.output = None;
            self.end();
            return;
        }
        let next = if found.more {
            now
        } else {
            now + self.read_every
        };
        self.read_timer.as_mut().reset(next);
    }

    /// The timer fired: kill after the grace, stop at the deadline or after the stall
    /// limit of silence, else arm it for the next of those.
    fn on_timer(&mut self) {
        let now = Instant::now();
        if let Some(kill_at) = self.kill_at {
            if now >= kill_at {
                signal_all(self.pid, &self.marker, libc::SIGKILL);
                self.end();
            } else {
                self.timer.as_mut().reset(kill_at);
            }
            return;
        }
        let stall_at = self.last_output + self.stall;
        if now >= self.deadline || now >= stall_at {
            self.stop(if now >= self.deadline {
                StopReason::Timeout(self.timeout)
            } else {
                StopReason::Stalled(self.stall)
            });
            return;
        }
        self.timer.as_mut().reset(self.deadline.min(stall_at));
    }

    /// Stops the agent (once; later calls do nothing): SIGTERM to all its processes now,
    /// SIGKILL after the grace.
    pub fn stop(&mut self, reason: StopReason) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(reason);
        if self.child.is_none() {
            return; // its output is over: the ending kills what is left
        }
        signal_all(self.pid, &self.marker, libc::SIGTERM);
        let kill_at = Instant::now() + self.grace;
        self.kill_at = Some(kill_at);
        self.timer.as_mut().reset(kill_at);
    }

    /// The output is over: waits, in a task of its own, for the child and its group.
    fn end(&mut self) {
        let Some((mut child, stderr_task)) = self.child.take() else {
            return;
        };
        let (pid, marker, grace, stopped) = (
            self.pid,
            self.marker.clone(),
            self.grace,
            self.stopped.clone(),
        );
        self.ending = Some(tokio::spawn(async move {
            // Output is closed: the child is gone or going. Its group is killed while the
            // child is not yet reaped: its zombie keeps the group id taken, so the signal
            // cannot reach another process that was given the same number since (pids wrap
            // around, and a daemon started with setsid leads a group of its own number).
            let exited = tokio::time::timeout(
                grace,
                tokio::task::spawn_blocking(move || wait_exited_unreaped(pid)),
            )
            .await;
            if exited.is_err() {
                signal_all(pid, &marker, libc::SIGKILL);
                let _ = tokio::task::spawn_blocking(move || wait_exited_unreaped(pid)).await;
            }
            signal_all(pid, &marker, libc::SIGKILL);
            // SIGKILL lands asynchronously; the caller is told the agent is gone only once
            // its group is (bounded: an unreaped zombie must not hold the run).
            let gone_by = Instant::now() + Duration::from_secs(2);
            while any_left(pid, &marker) && Instant::now() < gone_by {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let status = child.wait().await.ok();
            use std::os::unix::process::ExitStatusExt;
            Exit {
                code: status.and_then(|s| s.code()),
                signal: status.and_then(|s| s.signal()),
                stopped,
                stderr_tail: stderr_task.await.unwrap_or_default(),
            }
        }));
    }

    /// Waits for the child and its group to be gone (reading, and dropping, what it still
    /// prints).
    pub async fn exit(mut self) -> Exit {
        while self.next().await.is_some() {}
        let mut exit = self.exit.take().unwrap_or(Exit {
            code: None,
            signal: None,
            stopped: None,
            stderr_tail: String::new(),
        });
        // A stop asked for after the output ended still names why the run ended.
        if exit.stopped.is_none() {
            exit.stopped = self.stopped.take();
        }
        exit
    }
}

/// Blocks until the child `pid` has exited, leaving it unreaped (a zombie holding its pid
/// and group id) for `Child::wait` to reap afterwards.
fn wait_exited_unreaped(pid: u32) {
    let id: libc::id_t = pid;
    loop {
        // SAFETY: waitid(2) writes only into `info`, a zeroed siginfo_t owned here.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Sends `signal` to every process of the group led by `pid`.
fn signal_group(pid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether any process of the run is still there (zombies waiting to be reaped do not
/// count: they hold nothing).
fn any_left(pid: u32, marker: &str) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the group exists; it sends nothing.
    let group = unsafe { libc::kill(-pgid, 0) == 0 };
    (group && group_has_live_member(pgid)) || !marked_processes(marker).is_empty()
}

/// Whether a live (not zombie) process is in group `pgid`.
fn group_has_live_member(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|stat| {
                // After the command name's closing parenthesis: state, ppid, pgrp, ...
                let rest = stat.rsplit_once(") ")?.1;
                let mut fields = rest.split(' ');
                let state = fields.next()?;
                let group: libc::pid_t = fields.nth(1)?.parse().ok()?;
                Some(group == pgid && state != "Z")
            })
            .unwrap_or(false)
    })
}

/// The live processes whose environment carries the run's marker: the agent and every
/// process it started, even those that left its process group (Claude Code runs its shell
/// commands in their own) or were orphaned when it exited.
fn marked_processes(marker: &str) -> Vec<libc::pid_t> {
    let needle = format!("{MARKER_VAR}={marker}\0");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            if pid == own {
                return None;
            }
            let environ = std::fs::read(e.path().join("environ")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            let marked = environ
                .windows(needle.len())
                .any(|w| w == needle.as_bytes());
            (marked && !zombie)
                .then(|| libc::pid_t::try_from(pid).ok())
                .flatten()
        })
        .collect()
}

/// Sends `signal` to the agent's process group and to every process carrying its marker.
fn signal_all(pid: u32, marker: &str, signal: i32) {
    signal_group(pid, signal);
    for other in marked_processes(marker) {
        // SAFETY: kill(2) on a pid read from /proc a moment ago; it touches no memory.
        unsafe {
            libc::kill(other, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::events::AgentOutcome;

    /// Every line is text; the end is a success.
    struct Lines;
    impl StreamParser for Lines {
        fn feed_line(&mut self, line: &str) -> Vec<AgentEvent> {
            vec![AgentEvent::Text(line.to_string())]
        }
        fn finish(&mut self) -> Vec<AgentEvent> {
            vec![AgentEvent::Finished(AgentOutcome {
                ok: true,
                reason: "end".into(),
                reported_cost: None,
                per_model: vec![],
                permission_denials: 0,
            })]
        }
    }

    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn sh(script: &str, stall: Duration) -> Launch {
        Launch {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("ONLY_THIS".into(), "yes".into())],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(120),
            stall,
            grace: Duration::from_secs(2),
            marker: format!(
                "test-{}-{}",
                std::process::id(),
                RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ),
        }
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn output_is_parsed_and_the_environment_is_only_what_was_given() {
        let mut run = spawn(
            sh(
                "echo one; echo \"$ONLY_THIS\"; echo \"${HOME:-nohome}\"",
                Duration::from_secs(60),
            ),
            Box::new(Lines),
        )
        .unwrap();
        let mut texts = Vec::new();
        while let Some(e) = run.next().await {
            if let AgentEvent::Text(t) = e {
                texts.push(t);
            }
        }
        assert_eq!(texts, ["one", "yes", "nohome"]);
        let exit = run.exit().await;
        assert_eq!(exit.code, Some(0));
        assert_eq!(exit.stopped, None);
    }

    #[tokio::test]
    async fn a_stop_ends_the_whole_group_and_a_silent_agent_is_stopped_as_stalled() {
        // A shell that ignores SIGTERM and starts a grandchild in a session of its own (as
        // Claude Code does for its shell commands): the group's SIGKILL after the grace ends
        // the shell, the run's marker finds the grandchild.
        let mut run = spawn(
            sh(
                "trap '' TERM; setsid sleep 300 & echo $!; wait",
                Duration::from_secs(60),
            ),
            Box::new(Lines),
        )
        .unwrap();
        let grandchild: u32 = match run.next().await {
            Some(AgentEvent::Text(pid)) => pid.trim().parse().unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(alive(grandchild));
        run.stop(StopReason::Budget("at the cap".into()));
        while run.next().await.is_some() {}
        let exit = run.exit().await;
        assert_eq!(exit.stopped, Some(StopReason::Budget("at the cap".into())));
        // SIGKILL is delivered asynchronously: wait for it to land, within reason.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while alive(grandchild) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(grandchild), "the tool process went with the agent");

        let mut run = spawn(
            sh("echo hi; sleep 300", Duration::from_secs(1)),
            Box::new(Lines),
        )
        .unwrap();
        while run.next().await.is_some() {}
        let exit = run.exit().await;
        assert_eq!(
            exit.stopped,
            Some(StopReason::Stalled(Duration::from_secs(1)))
        );
        assert!(exit.stopped.unwrap().sentence().starts_with("stalled:"));
    }
}
