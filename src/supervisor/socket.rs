//! The supervisor on a Unix socket: `ecca serve` listens on `ecca.sock` in the data dir
//! (mode 0600) and speaks the `Command`/`Event` contract as JSON lines, so headless
//! commands from other processes go through the one supervisor that owns the runs.
//!
//! Requests, one JSON object per line, each with an `id` its answer repeats:
//! `{"id":1,"execute":<Command>}` → `{"id":1,"reply":<Reply>}` or `{"id":1,"error":"…"}`;
//! `{"id":2,"wait_settled":"T-0001"}` → `{"id":2,"settled":"awaiting_approval"}` once the
//! task's run rests; `{"id":3,"subscribe":true}` → `{"event":<Event>}` lines, streamed
//! text as `{"deltas":[{"run_id":…,"text":…}]}`, and `{"lagged":N}`, until the connection
//! closes; `{"id":4,"stop":true}` → `{"id":4,
//! "stopping":true}` and the daemon checkpoints its runs and exits.

use super::{Command, Delivery, Event, Reply, Supervisor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest request line read; a longer one closes the connection.
const MAX_LINE: usize = 1024 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ecca.sock")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_settled: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subscribe: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Query>,
}

/// A read-only question about the daemon's in-memory state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    Reserved,
    ToolStats,
    /// The one line on which tool servers back the engine (the console's header).
    Tools,
}

impl Request {
    fn new(id: u64) -> Request {
        Request {
            id,
            execute: None,
            wait_settled: None,
            subscribe: false,
            stop: false,
            query: None,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<std::sync::Arc<Event>>,
    /// Streamed text (`ModelDelta` and `ModelDeltas` events) in a plain shape: most lines
    /// a subscriber reads are these, and a list of structs reads without the buffering an
    /// internally tagged event needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deltas: Option<Vec<super::RunText>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagged: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<std::collections::BTreeMap<String, i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_stats: Option<Vec<crate::engine::tools::ToolCallStats>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
}

/// The supervisor's events, from the bus of this process or from the daemon's socket.
pub enum Events {
    Local(super::Subscription),
    Daemon(mpsc::Receiver<Delivery>),
}

impl Events {
    /// The next delivery; `None` once the supervisor is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        match self {
            Events::Local(sub) => sub.next().await,
            Events::Daemon(rx) => rx.recv().await,
        }
    }

    /// The next delivery if one is waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        match self {
            Events::Local(sub) => sub.try_next(),
            Events::Daemon(rx) => rx.try_recv().ok(),
        }
    }
}

/// Binds the socket (a stale file from a process that died is replaced: the data dir's
/// lock, held by `sup`, says no one else serves it) with mode 0600.
pub fn bind(data_dir: &Path) -> Result<UnixListener, String> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "could not remove the stale socket {}: {e}",
                path.display()
            ));
        }
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("could not listen on {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("could not make {} private: {e}", path.display()))?;
    Ok(listener)
}

/// Serves connections until `stop`; a `stop` request cancels it too.
pub async fn serve(sup: Supervisor, listener: UnixListener, stop: CancellationToken) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(sup.clone(), stream, stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "a socket connection could not be accepted"),
            },
            _ = stop.cancelled() => return,
        }
    }
}

async fn connection(sup: Supervisor, stream: UnixStream, stop: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Answer>(1024);
    let writer = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(answer) = rx.recv().await {
            lines.clear();
            // The bus sends a frame's streamed text of every run at once: what is queued
            // goes out in one write, so a reader wakes once for the lot.
            let mut next = Some(answer);
            while let Some(answer) = next {
                if serde_json::to_writer(&mut lines, &answer).is_ok() {
                    lines.push(b'\n');
                }
                next = if lines.len() < 256 * 1024 {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if write.write_all(&lines).await.is_err() {
                return;
            }
        }
    });
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_LINE => {
                let _ = tx
                    .send(Answer {
                        error: Some(format!(
                            "a request longer than {MAX_LINE} bytes; connection closed"
                        )),
                        ..Answer::default()
                    })
                    .await;
                break;
            }
            Ok(_) => {}
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx
                    .send(Answer {
                        error: Some(format!("not a request: {e}")),
                        ..Answer::default()
                    })
                    .await;
                continue;
            }
        };
        tokio::spawn(handle(sup.clone(), request, tx.clone(), stop.clone()));
    }
    drop(tx);
    let _ = writer.await;
}

async fn handle(
    sup: Supervisor,
    request: Request,
    tx: mpsc::Sender<Answer>,
    stop: CancellationToken,
) {
    let id = Some(request.id);
    // The answer to a request, or its error, under the request's id.
    let answer = |result: Result<Answer, super::SupervisorError>| match result {
        Ok(answer) => Answer { id, ..answer },
        Err(e) => Answer {
            id,
            error: Some(e.0),
            ..Answer::default()
        },
    };
    if let Some(command) = request.execute {
        let reply = sup.execute(command).await.map(|reply| Answer {
            reply: Some(reply),
            ..Answer::default()
        });
        let _ = tx.send(answer(reply)).await;
    } else if let Some(task_id) = request.wait_settled {
        let settled = sup.wait_settled(&task_id).await.map(|task| Answer {
            settled: Some(task.status.as_str().to_string()),
            ..Answer::default()
        });
        let _ = tx.send(answer(settled)).await;
    } else if request.subscribe {
        let mut events = sup.subscribe();
        drop(sup);
        while let Some(delivery) = events.next().await {
            let answer = match delivery {
                Delivery::Event(e)
                    if matches!(
                        e.as_ref(),
                        Event::ModelDelta { .. } | Event::ModelDeltas { .. }
                    ) =>
                {
                    Answer {
                        deltas: Some(
                            e.streamed()
                                .map(|(run_id, text)| super::RunText {
                                    run_id: run_id.to_string(),
                                    text: text.clone(),
                                })
                                .collect(),
                        ),
                        ..Answer::default()
                    }
                }
                Delivery::Event(e) => Answer {
                    event: Some(e),
                    ..Answer::default()
                },
                Delivery::Lagged { missed } => Answer {
                    lagged: Some(missed),
                    ..Answer::default()
                },
            };
            if tx.send(answer).await.is_err() {
                return;
            }
        }
    } else if let Some(query) = request.query {
        let answered = match query {
            Query::Reserved => Answer {
                reserved: Some(sup.reserved_by_client()),
                ..Answer::default()
            },
            Query::ToolStats => Answer {
                tool_stats: Some(sup.tool_stats()),
                ..Answer::default()
            },
            Query::Tools => Answer {
                tools: Some(sup.tools_description()),
                ..Answer::default()
            },
        };
        let _ = tx.send(answer(Ok(answered))).await;
    } else if request.stop {
        let _ = tx
            .send(Answer {
                id,
                stopping: Some(true),
                ..Answer::default()
            })
            .await;
        stop.cancel();
    } else {
        let _ = tx
            .send(Answer {
                id,
                error: Some(
                    "a request names one of execute, wait_settled, subscribe, query or stop".into(),
                ),
                ..Answer::default()
            })
            .await;
    }
}

/// A connection to the daemon of a data dir.
pub struct Remote {
    read: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
    next_id: u64,
}

impl Remote {
    /// The daemon of `data_dir`, if one answers (a socket file left by a process that died
    /// refuses the connection: no daemon).
    pub async fn connect(data_dir: &Path) -> Option<Remote> {
        let stream = UnixStream::connect(socket_path(data_dir)).await.ok()?;
        let (read, write) = stream.into_split();
        Some(Remote {
            read: BufReader::new(read).lines(),
            write,
            next_id: 1,
        })
    }

    async fn ask(&mut self, mut request: Request) -> Result<Answer, String> {
        request.id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.write
            .write_all(&line)
            .await
            .map_err(|e| format!("the daemon (ecca serve) closed the connection: {e}"))?;
        loop {
            let line = self
                .read
                .next_line()
                .await
                .map_err(|e| format!("reading from the daemon (ecca serve): {e}"))?
                .ok_or("the daemon (ecca serve) went away before answering")?;
            let answer: Answer = serde_json::from_str(&line).map_err(|e| {
                format!("the daemon (ecca serve) answered something unreadable: {e}")
            })?;
            if answer.id == Some(request.id) {
                return match answer.error {
                    Some(e) => Err(e),
                    None => Ok(answer),
                };
            }
        }
    }

    pub async fn execute(&mut self, command: Command) -> Result<Reply, String> {
        let mut request = Request::new(0);
        request.execute = Some(command);
        self.ask(request)
            .await?
            .reply
            .ok_or_else(|| "the daemon (ecca serve) gave no reply".into())
    }

    /// The task's status once its run rests.
    pub async fn wait_settled(&mut self, task_id: &str) -> Result<String, String> {
        let mut request = Request::new(0);
        request.wait_settled = Some(task_id.to_string());
        self.ask(request)
            .await?
            .settled
            .ok_or_else(|| "the daemon (ecca serve) gave no status".into())
    }

    /// Money held by in-flight calls, per client.
    pub async fn reserved(&mut self) -> Result<std::collections::BTreeMap<String, i64>, String> {
        let mut request = Request::new(0);
        request.query = Some(Query::Reserved);
        Ok(self.ask(request).await?.reserved.unwrap_or_default())
    }

    /// ecca's own counts of the tool calls its runs made.
    pub async fn tool_stats(&mut self) -> Result<Vec<crate::engine::tools::ToolCallStats>, String> {
        let mut request = Request::new(0);
        request.query = Some(Query::ToolStats);
        Ok(self.ask(request).await?.tool_stats.unwrap_or_default())
    }

    /// The daemon's tool servers, in one line.
    pub async fn tools_description(&mut self) -> Result<String, String> {
        let mut request = Request::new(0);
        request.query = Some(Query::Tools);
        self.ask(request)
            .await?
            .tools
            .ok_or_else(|| "the daemon (ecca serve) did not say which tools it has".into())
    }

    pub async fn stop(&mut self) -> Result<(), String> {
        let mut request = Request::new(0);
        request.stop = true;
        self.ask(request).await.map(|_| ())
    }

    /// Turns this connection into the daemon's event stream; the channel closes when the
    /// daemon goes away.
    pub async fn subscribe(mut self) -> Result<mpsc::Receiver<Delivery>, String> {
        let mut request = Request::new(self.next_id);
        request.subscribe = true;
        let mut line = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.write
            .write_all(&line)
            .await
            .map_err(|e| format!("the daemon (ecca serve) closed the connection: {e}"))?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let _keep_open = self.write;
            while let Ok(Some(line)) = self.read.next_line().await {
                let delivery = match serde_json::from_str::<Answer>(&line) {
                    Ok(Answer {
                        event: Some(event), ..
                    }) => Delivery::Event(event),
                    Ok(Answer {
                        deltas: Some(deltas),
                        ..
                    }) => Delivery::Event(std::sync::Arc::new(Event::ModelDeltas { deltas })),
                    Ok(Answer {
                        lagged: Some(missed),
                        ..
                    }) => Delivery::Lagged { missed },
                    _ => continue,
                };
                if tx.send(delivery).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
