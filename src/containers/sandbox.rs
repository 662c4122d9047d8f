//! Untrusted code in a fresh container, and the sweep of containers a killed process left.
//!
//! A sandbox never depends on ecca staying alive to end. Its first process is a small
//! supervisor ([`BOOTSTRAP`], run by the image's python3) that writes the program's files,
//! runs the program as its child, and kills every process in the container at its deadline;
//! the engine removes the container as soon as it exits (`AutoRemove`). ecca still kills
//! at the timeout itself, and when a call is cancelled or its server stops.
//!
//! The files travel on the container's stdin: an environment variable or argument list
//! stops at 128 KiB, a stream does not.

use super::{ContainerError, Engine, LABEL_MANAGED, LABEL_ROLE};
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, HostConfigLogConfig, Mount,
    MountType,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// The label holding the Unix time after which a sandbox is abandoned, whoever started it.
pub const LABEL_DEADLINE: &str = "ecca.deadline";
/// Seconds past the timeout at which the container ends itself. ecca kills at the timeout,
/// so this fires only when ecca could not (killed, hung, cut off from the engine).
const SELF_KILL_GRACE_SECS: u64 = 2;
/// Seconds past the timeout after which a sweep removes a sandbox that is still running:
/// generous, so a slow start on a loaded machine never gets another process's live run swept.
const SWEEP_GRACE_SECS: i64 = 30;
/// What marks the supervisor's report, the last line of the container's stderr.
const REPORT_MARK: &str = "\u{1e}ecca-sandbox ";

/// PID 1 of every sandbox. Signals that PID 1 has no handler for never reach it from inside
/// its own container, and it is not dumpable (so not traceable by the program, which runs
/// as the same user): the program cannot stop the deadline. Its report on stderr says how
/// the program ended, which the engine cannot tell once the container is auto-removed.
const BOOTSTRAP: &str = r#"
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
try:
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass

def oom():
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            for line in open(path):
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        except (OSError, ValueError):
            pass
    return False

def end(code, deadline=False, error=None):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    report = "\x1eecca-sandbox exit=%s oom=%d deadline=%d" % (
        "-" if code is None else code, oom(), deadline)
    if error:
        report += " error=" + error
    os.write(2, (report + "\n").encode())
    os._exit(137 if code is None else min(max(code, 0), 255))

signal.signal(signal.SIGALRM, lambda *_: end(None, deadline=True))
signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]))

def read_exact(n):
    parts = []
    while n:
        part = os.read(0, min(n, 1 << 20))
        if not part:
            end(None, error="the program's files arrived incomplete")
        parts.append(part)
        n -= len(part)
    return b"".join(parts)

header = b""
while not header.endswith(b"\n"):
    byte = os.read(0, 1)
    if not byte:
        end(None, error="the program's files never arrived")
    header += byte
payload = read_exact(int(header))
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
os.chdir("/scratch")

def copy_tree(src, dst):
    # A worktree's .git is a file pointing outside the mount; nothing there is the project's.
    for name in os.listdir(src):
        if name == ".git":
            continue
        s, d = os.path.join(src, name), os.path.join(dst, name)
        mode = os.lstat(s).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            copy_tree(s, d)
            os.chmod(d, (mode & 0o777) | 0o700)
        elif stat.S_ISREG(mode):
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while True:
                    chunk = fi.read(1 << 20)
                    if not chunk:
                        break
                    fo.write(chunk)
            os.chmod(d, (mode & 0o777) | 0o600)

if sys.argv[2] == "copy-src":
    try:
        import stat
        copy_tree("/src", "/scratch")
    except OSError as e:
        end(None, error="could not copy the project from /src into /scratch: %s" % e)
try:
    at = 0
    while at < len(payload):
        line_end = payload.index(b"\n", at)
        path_len, content_len = map(int, payload[at:line_end].split())
        at = line_end + 1
        path = payload[at:at + path_len].decode()
        at += path_len
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as f:
            f.write(payload[at:at + content_len])
        at += content_len
except (OSError, ValueError) as e:
    end(None, error="could not write the program's files into /scratch: %s" % e)

argv = sys.argv[3:]
child = os.fork()
if child == 0:
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        break
code = os.waitstatus_to_exitcode(status)
end(code if code >= 0 else 128 - code)
"#;

/// What to run in the sandbox, and its limits.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub image: String,
    /// The program's command line; `argv[0]` is an absolute path inside the image.
    pub argv: Vec<String>,
    /// Files written into /scratch (the working directory) before the program starts.
    pub files: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub timeout: Duration,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// Bytes of stdout plus stderr kept; past this the program is stopped.
    pub output_cap: usize,
    /// A host directory mounted read-only at `/src` and copied (without `.git`) into
    /// /scratch before the program starts, so whatever the program writes (caches,
    /// `__pycache__`) stays in the container and the directory is never changed. The Docker
    /// engine must see this path at the same place (true for a local engine).
    pub source: Option<PathBuf>,
    /// Size of the writable /scratch, in MiB (it counts against the memory limit).
    pub scratch_mib: u32,
}

impl SandboxSpec {
    /// The default limits: 256 MiB, half a CPU, 64 processes, 30 s, 1 MiB of output.
    pub fn new(image: &str, argv: Vec<String>) -> Self {
        SandboxSpec {
            image: image.to_string(),
            argv,
            files: BTreeMap::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(30),
            memory_bytes: 256 * 1024 * 1024,
            nano_cpus: 500_000_000,
            pids_limit: 64,
            output_cap: 1024 * 1024,
            source: None,
            scratch_mib: 64,
        }
    }
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOutcome {
    /// The container's short id (gone, or going, when the outcome is returned).
    pub container_id: String,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub duration: Duration,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub output_truncated: bool,
    /// The caller's `stop` token fired and the program was killed before it ended.
    pub stopped: bool,
}

/// The supervisor's report, when it made one: `exit=N|- oom=0|1 deadline=0|1 [error=…]`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    exit: Option<i64>,
    oom: bool,
    deadline: bool,
    error: Option<String>,
}

impl Report {
    fn parse(line: &str) -> Option<Report> {
        let (fields, error) = match line.split_once(" error=") {
            Some((f, e)) => (f, Some(e.to_string())),
            None => (line, None),
        };
        let mut report = Report {
            error,
            ..Report::default()
        };
        for field in fields.split_whitespace() {
            match field.split_once('=')? {
                ("exit", "-") => report.exit = None,
                ("exit", n) => report.exit = Some(n.parse().ok()?),
                ("oom", v) => report.oom = v == "1",
                ("deadline", v) => report.deadline = v == "1",
                _ => return None,
            }
        }
        Some(report)
    }
}

/// The program's files as the supervisor reads them: per file a line `PATH_LEN CONTENT_LEN`
/// and then the path's and the content's bytes (nothing to parse but numbers, so the
/// supervisor needs no JSON module, which costs a run milliseconds to import).
fn encode_files(files: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(files.iter().map(|(p, c)| p.len() + c.len() + 24).sum());
    for (path, content) in files {
        out.extend_from_slice(format!("{} {}\n", path.len(), content.len()).as_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(content.as_bytes());
    }
    out
}

/// The bind mount of a project directory at `/src`, read-only.
fn read_only_source(dir: &Path) -> Result<Mount, ContainerError> {
    let source = dir.canonicalize().map_err(|e| {
        ContainerError(format!(
            "the directory {} to mount in the sandbox cannot be resolved: {e}; check that it exists",
            dir.display()
        ))
    })?;
    if !source.is_dir() {
        return Err(ContainerError(format!(
            "{} is not a directory, so it cannot be mounted in the sandbox",
            source.display()
        )));
    }
    Ok(Mount {
        target: Some("/src".into()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    })
}

/// Kills and removes a container if the run is abandoned half-way (its future dropped):
/// the container would end at its own deadline anyway, this only makes it sooner.
struct KillOnDrop {
    engine: Engine,
    id: Option<String>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let (Some(id), Ok(runtime)) = (self.id.take(), tokio::runtime::Handle::try_current()) {
            let engine = self.engine.clone();
            runtime.spawn(async move { engine.remove_now(&id).await });
        }
    }
}

/// Splits the supervisor's report off the end of stderr.
fn take_report(stderr: &mut Vec<u8>) -> Option<Report> {
    let mark = REPORT_MARK.as_bytes();
    let at = stderr.windows(mark.len()).rposition(|w| w == mark)?;
    let line = String::from_utf8_lossy(&stderr[at + mark.len()..]).into_owned();
    let report = Report::parse(line.trim())?;
    stderr.truncate(at);
    Some(report)
}

impl Engine {
    /// Runs `spec` in a fresh container: no network, read-only root with a writable
    /// `/scratch`, no capabilities, as `nobody`, within the memory, CPU, process, time and
    /// output limits. When `stop` fires the program is killed and the outcome says
    /// `stopped`. The engine removes the container when it exits.
    pub async fn run_sandboxed(
        &self,
        spec: &SandboxSpec,
        stop: &CancellationToken,
    ) -> Result<SandboxOutcome, ContainerError> {
        if !self.image_exists(&spec.image).await {
            return Err(ContainerError(format!(
                "the sandbox image {} is not in the Docker engine; build it with `ecca images build`",
                spec.image
            )));
        }
        let files = encode_files(&spec.files);
        let mounts = match &spec.source {
            Some(dir) => vec![read_only_source(dir)?],
            None => Vec::new(),
        };
        let mut cmd = vec![
            "/usr/bin/python3".to_string(),
            "-I".into(),
            "-S".into(),
            "-c".into(),
            BOOTSTRAP.into(),
            (spec.timeout.as_secs() + SELF_KILL_GRACE_SECS).to_string(),
            if spec.source.is_some() {
                "copy-src".into()
            } else {
                "-".into()
            },
        ];
        cmd.extend(spec.argv.iter().cloned());
        let abandoned_at =
            chrono::Utc::now().timestamp() + spec.timeout.as_secs() as i64 + SWEEP_GRACE_SECS;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(cmd),
            env: Some(spec.env.clone()),
            user: Some("65534:65534".into()),
            working_dir: Some("/scratch".into()),
            network_disabled: Some(true),
            attach_stdin: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            labels: Some(HashMap::from([
                (LABEL_MANAGED.to_string(), "true".to_string()),
                (LABEL_ROLE.to_string(), "sandbox".to_string()),
                (LABEL_DEADLINE.to_string(), abandoned_at.to_string()),
            ])),
            host_config: Some(HostConfig {
                auto_remove: Some(true),
                network_mode: Some("none".into()),
                memory: Some(spec.memory_bytes),
                memory_swap: Some(spec.memory_bytes),
                nano_cpus: Some(spec.nano_cpus),
                pids_limit: Some(spec.pids_limit),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([
                    (
                        "/scratch".to_string(),
                        format!("rw,exec,size={}m,mode=1777", spec.scratch_mib),
                    ),
                    ("/tmp".to_string(), "rw,size=16m,mode=1777".to_string()),
                ])),
                mounts: Some(mounts),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // Output is read live through attach; nothing is kept on the engine's disk.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions::default()), body)
            .await
            .map_err(|e| ContainerError(format!("could not create a sandbox container: {e}")))?;
        let mut guard = KillOnDrop {
            engine: self.clone(),
            id: Some(created.id.clone()),
        };
        let result = self.run_created(&created.id, spec, &files, stop).await;
        match &result {
            // Gone or going: the engine removes it on exit.
            Ok(outcome) if !outcome.timed_out && !outcome.output_truncated && !outcome.stopped => {
                guard.id = None
            }
            // Killed by ecca or failed: make sure it is gone before saying so.
            _ => {
                guard.id = None;
                self.remove_now(&created.id).await;
            }
        }
        result
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &SandboxSpec,
        files: &[u8],
        stop: &CancellationToken,
    ) -> Result<SandboxOutcome, ContainerError> {
        let attach = AttachContainerOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut attached = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(|e| ContainerError(format!("could not attach to the sandbox: {e}")))?;
        let started = Instant::now();
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| ContainerError(format!("could not start the sandbox: {e}")))?;
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        let send = async {
            attached
                .input
                .write_all(format!("{}\n", files.len()).as_bytes())
                .await?;
            attached.input.write_all(files).await?;
            attached.input.flush().await
        };
        tokio::select! {
            sent = send => sent.map_err(|e| ContainerError(format!(
                "could not send the program's files into the sandbox: {e}"
            )))?,
            _ = &mut deadline => return Err(ContainerError(format!(
                "the sandbox did not take the program's files within {} s; the Docker engine may be overloaded",
                spec.timeout.as_secs()
            ))),
            _ = stop.cancelled() => return Ok(SandboxOutcome::stopped(id, started)),
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let (mut truncated, mut timed_out, mut stopped) = (false, false, false);
        loop {
            tokio::select! {
                chunk = attached.output.next() => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => stdout.extend_from_slice(&message),
                    Some(Ok(LogOutput::StdErr { message })) => stderr.extend_from_slice(&message),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(ContainerError(format!(
                        "lost the sandbox's output stream: {e}; the run's result is unknown"
                    ))),
                    None => break,
                },
                _ = &mut deadline => {
                    timed_out = true;
                    break;
                }
                _ = stop.cancelled() => {
                    stopped = true;
                    break;
                }
            }
            // The report adds a line to stderr; it is not the program's output.
            if stdout.len() + stderr.len() > spec.output_cap + 256 {
                truncated = true;
                break;
            }
        }
        let killed = timed_out || truncated || stopped;
        if killed {
            // The engine only reports a kill done once the program's output is flushed, so
            // keep reading (and dropping) the output while the kill goes through.
            let engine = self.clone();
            let target = id.to_string();
            let kill = tokio::spawn(async move { engine.kill(&target).await });
            let drain = async { while attached.output.next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            let _ = kill.await;
        }
        let duration = started.elapsed();
        let report = if killed {
            None
        } else {
            take_report(&mut stderr)
        };
        if let Some(error) = report.as_ref().and_then(|r| r.error.clone()) {
            return Err(ContainerError(format!(
                "the sandbox could not run the program: {error}"
            )));
        }
        let timed_out = timed_out || report.as_ref().is_some_and(|r| r.deadline);
        if report.is_none() && !killed {
            stderr.extend_from_slice(
                b"\n[the sandbox ended without saying how: it was killed from outside]\n",
            );
        }
        let cap = spec.output_cap;
        Ok(SandboxOutcome {
            container_id: id.chars().take(12).collect(),
            stdout: capped(stdout, cap, truncated),
            stderr: capped(stderr, cap, truncated),
            exit_code: if timed_out {
                None
            } else {
                report.as_ref().and_then(|r| r.exit)
            },
            duration,
            timed_out,
            oom_killed: report.as_ref().is_some_and(|r| r.oom),
            output_truncated: truncated,
            stopped,
        })
    }

    /// Kills and removes a sandbox, and waits until the engine has removed it.
    async fn remove_now(&self, id: &str) {
        let removed = WaitContainerOptions {
            condition: "removed".into(),
        };
        // Asked for before the removal, so the answer comes when it is done.
        let mut wait = self.docker.wait_container(id, Some(removed));
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let waiting = async {
            let _ = wait.next().await;
        };
        let removing = async {
            if let Err(e) = self.docker.remove_container(id, Some(options)).await {
                tracing::debug!("removal of sandbox {id}: {e}");
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(waiting, removing)
        })
        .await;
    }

    /// Removes sandbox containers that no live process is using: those that exited (a
    /// process killed before it could remove them) and those still running past their
    /// deadline label. A sandbox another live process runs is within its deadline and is
    /// left alone. Returns how many went.
    pub async fn sweep_sandboxes(&self) -> usize {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_ROLE}=sandbox")])]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = match self.docker.list_containers(Some(options)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("could not list sandbox containers: {e}");
                return 0;
            }
        };
        let now = chrono::Utc::now().timestamp();
        let mut removed = 0;
        for c in list {
            let Some(id) = c.id else { continue };
            let ended = matches!(
                c.state,
                Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD)
            );
            // Sandboxes from before the deadline label: the longest timeout allowed.
            let deadline = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_DEADLINE))
                .and_then(|d| d.parse::<i64>().ok())
                .or_else(|| c.created.map(|t| t + 300 + SWEEP_GRACE_SECS));
            let overdue = deadline.is_some_and(|d| now > d);
            if ended || overdue {
                let options = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                match self.docker.remove_container(&id, Some(options)).await {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::debug!("sweep could not remove sandbox {id}: {e}"),
                }
            }
        }
        removed
    }
}

impl SandboxOutcome {
    fn stopped(id: &str, started: Instant) -> SandboxOutcome {
        SandboxOutcome {
            container_id: id.chars().take(12).collect(),
            stdout: String::new(),
            stderr: String::new(),
            exit_code: None,
            duration: started.elapsed(),
            timed_out: false,
            oom_killed: false,
            output_truncated: false,
            stopped: true,
        }
    }
}

fn capped(mut bytes: Vec<u8>, cap: usize, truncated: bool) -> String {
    let over = bytes.len() > cap;
    bytes.truncate(cap);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if over || (truncated && !text.is_empty()) {
        text.push_str(&format!(
            "\n[output cut by ecca at {} KiB: the program wrote more and was stopped]\n",
            cap / 1024
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_split_off_the_programs_stderr() {
        let mut err = b"Traceback\nboom\n\x1eecca-sandbox exit=1 oom=1 deadline=0\n".to_vec();
        let report = take_report(&mut err).unwrap_or_default();
        assert_eq!(
            (report.exit, report.oom, report.deadline),
            (Some(1), true, false)
        );
        assert_eq!(err, b"Traceback\nboom\n");
        let mut err = b"\x1eecca-sandbox exit=- oom=0 deadline=0 error=no files: x=1\n".to_vec();
        let report = take_report(&mut err).unwrap_or_default();
        assert_eq!(report.exit, None);
        assert_eq!(report.error.as_deref(), Some("no files: x=1"));
        let mut none = b"plain".to_vec();
        assert!(take_report(&mut none).is_none());
        assert_eq!(none, b"plain");
    }
}
