//! An agent CLI as a supervised child: its own process group, stdin closed, a clean
//! environment (only what the kind asks for, so no other secret of ecca's reaches it), its
//! stdout parsed line by line into [`AgentEvent`]s. It is stopped — SIGTERM to the whole
//! group, SIGKILL after a grace — when the caller asks (cancel, budget), at its timeout, or
//! when it has printed nothing for the stall limit; and the group is killed once it exits,
//! so no tool process it started outlives it.

use super::events::{AgentEvent, StreamParser};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
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

/// A running agent: its events, a way to stop it, and its exit.
pub struct Running {
    pub pid: u32,
    events: mpsc::Receiver<AgentEvent>,
    stop: Option<oneshot::Sender<StopReason>>,
    done: tokio::task::JoinHandle<Exit>,
}

const STDERR_TAIL: usize = 4096;

/// Starts the agent. The parser's events arrive through [`Running::next`]; the last one is
/// always `Finished`.
pub fn spawn(launch: Launch, mut parser: Box<dyn StreamParser + Send>) -> Result<Running, String> {
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
    let marker = launch.marker.clone();
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
    let (tx, rx) = mpsc::channel(256);
    let (stop_tx, mut stop_rx) = oneshot::channel::<StopReason>();
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
    let done = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + launch.timeout;
        let mut last_output = Instant::now();
        let mut stopped: Option<StopReason> = None;
        let mut kill_at: Option<Instant> = None;
        loop {
            let stall_at = last_output + launch.stall;
            // Once stopping, only the grace matters.
            let wake_at = kill_at.unwrap_or_else(|| deadline.min(stall_at));
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        last_output = Instant::now();
                        for e in parser.feed_line(&line) {
                            let _ = tx.send(e).await;
                        }
                    }
                    Ok(None) | Err(_) => break,
                },
                reason = &mut stop_rx, if stopped.is_none() => {
                    if let Ok(reason) = reason {
                        stopped = Some(reason);
                        signal_all(pid, &marker, libc::SIGTERM);
                        kill_at = Some(Instant::now() + launch.grace);
                    }
                },
                _ = tokio::time::sleep_until(wake_at) => {
                    if kill_at.is_some() {
                        signal_all(pid, &marker, libc::SIGKILL);
                        break;
                    }
                    let now = Instant::now();
                    stopped = Some(if now >= deadline {
                        StopReason::Timeout(launch.timeout)
                    } else {
                        StopReason::Stalled(launch.stall)
                    });
                    signal_all(pid, &marker, libc::SIGTERM);
                    kill_at = Some(now + launch.grace);
                }
            }
        }
        // Output is closed: the child is gone or going. Its group is killed while the child
        // is not yet reaped: its zombie keeps the group id taken, so the signal cannot reach
        // another process that was given the same number since (pids wrap around, and a
        // daemon started with setsid leads a group of its own number).
        let exited = tokio::time::timeout(
            launch.grace,
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
        for e in parser.finish() {
            let _ = tx.send(e).await;
        }
        use std::os::unix::process::ExitStatusExt;
        Exit {
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stopped,
            stderr_tail: stderr_task.await.unwrap_or_default(),
        }
    });
    Ok(Running {
        pid,
        events: rx,
        stop: Some(stop_tx),
        done,
    })
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

impl Running {
    /// The next event; `None` once the agent's output is over and `Finished` was given.
    pub async fn next(&mut self) -> Option<AgentEvent> {
        self.events.recv().await
    }

    /// Stops the agent (once; later calls do nothing).
    pub fn stop(&mut self, reason: StopReason) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(reason);
        }
    }

    /// Waits for the child and its group to be gone.
    pub async fn exit(self) -> Exit {
        drop(self.events);
        self.done.await.unwrap_or_else(|e| Exit {
            code: None,
            signal: None,
            stopped: None,
            stderr_tail: format!("the agent's supervisor task failed: {e}"),
        })
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
