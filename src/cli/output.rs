//! Everything the headless commands print goes through here, for two reasons.
//!
//! - Titles, notes, tool summaries and client names come from outside (an operator's paste,
//!   a client's brief, a model's reply, a program's output). Printed raw, an escape
//!   sequence in one of them can retitle the terminal, move the cursor or rewrite what the
//!   operator reads. [`terminal_safe`] removes control sequences and control characters.
//! - `ecca tasks | head -1` closes stdout early. Rust's `println!` panics on that; a Unix
//!   tool stops writing and exits quietly. A closed stdout is remembered, later lines are
//!   dropped, and the command still finishes its work (a run still checkpoints and stops
//!   its tools); the process then exits 0, as ripgrep and git do when their reader leaves.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stdout's reader has gone. Process-wide because stdout itself is.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line (made terminal-safe) to stdout.
pub fn say(line: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(terminal_safe(line).as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Prints a JSON document to stdout. serde_json escapes C0 controls inside strings but
/// writes C1 controls and DEL raw; those are escaped here, so the data is kept whole and
/// the terminal sees no control character.
pub fn say_json(doc: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc)
        .map_err(|e| format!("could not write the result as JSON: {e}"))?;
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if is_c1_or_del(c) {
            escaped.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    say(&escaped);
    Ok(())
}

/// Prints a line (made terminal-safe) to stderr; a closed stderr is ignored.
pub fn tell(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(terminal_safe(line).as_bytes())
        .and_then(|_| err.write_all(b"\n"));
}

fn is_c1_or_del(c: char) -> bool {
    c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `text` without escape sequences (CSI, OSC, DCS, …, in their 7-bit and 8-bit forms) and
/// without control characters other than newline and tab. Text with none is not copied.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let clean = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(clean) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
                    // nF sequence: intermediates, then one final character.
                    while chars
                        .next_if(|c| ('\u{20}'..='\u{2f}').contains(c))
                        .is_some()
                    {}
                    chars.next();
                }
                // Two-character sequence (ESC 7, ESC c, …): both dropped.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if clean(c) => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// `text` made terminal-safe and put on one line, for a table cell.
pub fn one_line(text: &str) -> String {
    terminal_safe(text).replace(['\n', '\t'], " ")
}

/// Skips a CSI sequence's parameters and intermediates and its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        if !('\u{20}'..='\u{3f}').contains(&c) {
            // Not part of a CSI: the sequence was cut short; drop what came so far.
            return;
        }
    }
}

/// Skips an OSC, DCS, SOS, PM or APC string up to its terminator (BEL, ESC \ or ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{07}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_and_controls_are_removed_and_text_kept() {
        let title = "a\u{1b}]0;pwned\u{07}b\u{1b}[31mc\u{1b}[0m\u{9b}2Jd\u{9d}x\u{9c}e\r\u{8}\u{1b}7f\u{0}g";
        assert_eq!(terminal_safe(title), "abcdefg");
        assert_eq!(terminal_safe("ok\tline\nnext"), "ok\tline\nnext");
        assert!(matches!(terminal_safe("plain"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("x\u{1b}]2;t\u{1b}\\y"), "xy");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
