//! A line buffer with a byte cap: streamed output keeps its newest lines and forgets the
//! oldest, so a run that prints forever cannot grow the console's memory.

use std::collections::VecDeque;

/// What a kept line costs beyond its text: the `String` itself, the allocator's header and
/// its slot in the deque. Counting it makes the cap bound real memory, not just text.
const LINE_OVERHEAD: usize = 48;

#[derive(Debug, Clone)]
pub struct LineRing {
    lines: VecDeque<String>,
    bytes: usize,
    cap: usize,
    /// Lines forgotten so far, for "… N earlier lines dropped".
    pub dropped: u64,
    /// An unfinished last line (text without its newline yet).
    partial: String,
}

impl LineRing {
    pub fn new(cap_bytes: usize) -> Self {
        LineRing {
            lines: VecDeque::new(),
            bytes: 0,
            cap: cap_bytes.max(1024),
            dropped: 0,
            partial: String::new(),
        }
    }

    /// Appends streamed text; complete lines are stored, the rest waits for its newline.
    pub fn push_text(&mut self, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find('\n') {
            self.partial.push_str(&rest[..i]);
            let line = std::mem::take(&mut self.partial);
            self.push_line(line);
            rest = &rest[i + 1..];
        }
        self.partial.push_str(rest);
        if self.partial.len() > self.cap / 4 {
            let line = std::mem::take(&mut self.partial);
            self.push_line(line);
        }
    }

    pub fn push_line(&mut self, line: String) {
        self.bytes += line.capacity() + LINE_OVERHEAD;
        self.lines.push_back(line);
        while self.bytes > self.cap {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.capacity() + LINE_OVERHEAD;
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// Lines including the unfinished one.
    pub fn len(&self) -> usize {
        self.lines.len() + usize::from(!self.partial.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes + self.partial.len()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Line `i` (0 = oldest kept).
    pub fn get(&self, i: usize) -> Option<&str> {
        if i < self.lines.len() {
            self.lines.get(i).map(String::as_str)
        } else if i == self.lines.len() && !self.partial.is_empty() {
            Some(&self.partial)
        } else {
            None
        }
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.partial.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_lines_under_the_cap() {
        let mut r = LineRing::new(1024);
        r.push_text("abc");
        assert_eq!((r.len(), r.get(0)), (1, Some("abc")));
        r.push_text("def\nghi\n");
        assert_eq!((r.get(0), r.get(1)), (Some("abcdef"), Some("ghi")));
        for i in 0..10_000 {
            r.push_line(format!("line {i:05}"));
        }
        assert!(r.bytes() <= 1024);
        assert_eq!(r.get(r.len() - 1), Some("line 09999"));
        assert!(r.dropped > 9_000);
    }
}
