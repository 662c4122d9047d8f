//! An agent's stdout, read on a timer rather than woken by the pipe: the pipe is
//! non-blocking and not registered with any poller, and the run's task reads whatever
//! waits in it every [`READ_BATCH`] while the agent writes (backing off to [`READ_IDLE`]
//! while it is silent). Woken by the pipe, an agent streaming 100 lines a second woke ecca
//! for every line (an edge-triggered pipe reports each write), and that, not parsing, was
//! most of what supervising it cost.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long output may wait in the pipe while the agent is writing: the lines written
/// within it reach the run in one wake-up. Under two console frames.
pub const READ_BATCH: Duration = Duration::from_millis(30);
/// The longest wait between reads once the agent has gone quiet (the wait doubles from
/// [`READ_BATCH`] with each empty read): short beside a model call, so a budget stop
/// still lands before the agent's next call.
pub const READ_IDLE: Duration = Duration::from_millis(120);
/// One read takes up to a pipe's whole capacity.
const PIPE_READ: usize = 64 * 1024;
/// At most this many reads per turn, so an agent writing without pause cannot hold the
/// run's task: the rest is read at the next turn, which comes at once.
const READS_PER_TURN: usize = 16;

/// What one turn of reading found.
#[derive(Debug, Default, PartialEq)]
pub struct Waiting {
    /// The complete lines, in order (and the last, unterminated line once output ended).
    pub lines: Vec<String>,
    /// Bytes read, complete lines or not: any output counts against the stall watchdog.
    pub bytes: usize,
    /// The pipe was not emptied: read again at once.
    pub more: bool,
    /// The output is over (end of file, or the pipe failed).
    pub ended: bool,
}

pub struct Output {
    pipe: std::fs::File,
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    buf: Vec<u8>,
}

impl Output {
    /// Takes the read end of the agent's stdout, making it non-blocking (only this end:
    /// the agent's end of the pipe is a description of its own).
    pub fn new(pipe: OwnedFd) -> std::io::Result<Output> {
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Output {
            pipe: std::fs::File::from(pipe),
            partial: Vec::new(),
            buf: vec![0u8; PIPE_READ],
        })
    }

    /// Reads what is waiting in the pipe without blocking.
    pub fn read_waiting(&mut self) -> Waiting {
        let mut found = Waiting::default();
        let mut reads = 0;
        loop {
            if reads == READS_PER_TURN {
                found.more = true;
                break;
            }
            match self.pipe.read(&mut self.buf) {
                Ok(0) => {
                    found.ended = true;
                    break;
                }
                Ok(n) => {
                    reads += 1;
                    found.bytes += n;
                    self.partial.extend_from_slice(&self.buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    found.ended = true;
                    break;
                }
            }
        }
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            found.lines = self.partial[..end]
                .split(|b| *b == b'\n')
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            self.partial.drain(..=end);
        }
        if found.ended && !self.partial.is_empty() {
            found
                .lines
                .push(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Lines split across writes, a burst larger than a pipe holds, a last line without
    /// its newline and text that is not UTF-8: each line arrives whole, in order, once.
    #[test]
    fn whole_lines_in_order_and_nothing_blocks() {
        let (read, mut write) = std::io::pipe().unwrap();
        let mut output = Output::new(OwnedFd::from(read)).unwrap();
        assert_eq!(output.read_waiting(), Waiting::default(), "nothing waits");
        write.write_all(b"first\nsec").unwrap();
        let first = output.read_waiting();
        assert_eq!(first.lines, ["first"]);
        assert_eq!((first.bytes, first.ended), (9, false));
        write.write_all(b"ond\n").unwrap();
        assert_eq!(output.read_waiting().lines, ["second"]);

        let burst: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let writer = std::thread::spawn(move || {
            write.write_all(burst.as_bytes()).unwrap();
            write.write_all(b"bad \xff byte\nlast").unwrap();
        });
        let mut got = Vec::new();
        loop {
            let found = output.read_waiting();
            got.extend(found.lines);
            if found.ended {
                break;
            }
            std::thread::yield_now();
        }
        writer.join().unwrap();
        let mut want: Vec<String> = (0..50_000).map(|i| format!("line {i}")).collect();
        want.push("bad \u{fffd} byte".into());
        want.push("last".into());
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
    }
}
