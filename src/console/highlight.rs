//! Syntax highlighting of the diff, off the UI loop. The view says which diff lines are on
//! screen; the loop asks a worker thread for the ones not yet cached; the worker drops all
//! but the newest request (latest wins: after a fast scroll only the final position is
//! worked), highlights each file from its start to the last visible line (highlighting
//! state runs across lines), and sends the coloured lines back for the cache.

use ratatui::style::Color;
use std::sync::mpsc;

/// One file of the diff: where its code starts in the diff, and its code lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub path: String,
    /// Index in the diff of the first code line.
    pub first: usize,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Which diff this is about; replies for another are dropped.
    pub key: u64,
    pub sections: Vec<Section>,
    pub dark: bool,
}

/// Coloured pieces of one line.
pub type Spans = Vec<(Color, String)>;

#[derive(Debug, Clone)]
pub struct Reply {
    pub key: u64,
    /// (diff index, coloured code without the `+`).
    pub lines: Vec<(usize, Spans)>,
}

pub struct Highlighter {
    tx: mpsc::Sender<Request>,
}

impl Highlighter {
    /// Starts the worker; `reply` is called on its thread with each result.
    pub fn spawn(reply: impl Fn(Reply) + Send + 'static) -> Highlighter {
        let (tx, rx) = mpsc::channel::<Request>();
        let spawned = std::thread::Builder::new()
            .name("ecca-highlight".into())
            .spawn(move || {
                // Loading the grammars takes a moment: done here, never on the UI loop.
                let syntaxes = syntect::parsing::SyntaxSet::load_defaults_nonewlines();
                let themes = syntect::highlighting::ThemeSet::load_defaults();
                while let Ok(mut request) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        request = newer;
                    }
                    reply(work(&syntaxes, &themes, &request));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no syntax highlighting: the worker did not start: {e}");
        }
        Highlighter { tx }
    }

    pub fn ask(&self, request: Request) {
        let _ = self.tx.send(request);
    }
}

fn work(
    syntaxes: &syntect::parsing::SyntaxSet,
    themes: &syntect::highlighting::ThemeSet,
    request: &Request,
) -> Reply {
    let theme_name = if request.dark {
        "base16-ocean.dark"
    } else {
        "InspiredGitHub"
    };
    let mut out = Vec::new();
    let Some(theme) = themes.themes.get(theme_name) else {
        return Reply {
            key: request.key,
            lines: out,
        };
    };
    for s in &request.sections {
        let ext = s.path.rsplit('.').next().unwrap_or("");
        let syntax = syntaxes
            .find_syntax_by_extension(ext)
            .unwrap_or_else(|| syntaxes.find_syntax_plain_text());
        let mut h = syntect::easy::HighlightLines::new(syntax, theme);
        for (i, line) in s.lines.iter().enumerate() {
            let Ok(pieces) = h.highlight_line(line, syntaxes) else {
                break;
            };
            let spans = pieces
                .into_iter()
                .map(|(style, text)| {
                    (
                        Color::Rgb(style.foreground.r, style.foreground.g, style.foreground.b),
                        text.to_string(),
                    )
                })
                .collect();
            out.push((s.first + i, spans));
        }
    }
    Reply {
        key: request.key,
        lines: out,
    }
}

/// The sections of a diff that cover lines `start..end`, each from its own start.
pub fn sections(diff: &[String], start: usize, end: usize) -> Vec<Section> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < diff.len() {
        if let Some(path) = diff[i].strip_prefix("+++ b/") {
            let first = i + 2; // after the @@ line
            let mut last = first;
            while last < diff.len()
                && diff[last].starts_with('+')
                && !diff[last].starts_with("+++ ")
            {
                last += 1;
            }
            if first < end && last > start {
                let upto = last.min(end);
                let lines = diff[first..upto.max(first)]
                    .iter()
                    .map(|l| l[1..].to_string())
                    .collect();
                out.push(Section {
                    path: path.to_string(),
                    first,
                    lines,
                });
            }
            i = last;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_start_at_their_file_and_stop_at_the_view() {
        let diff: Vec<String> = [
            "--- /dev/null",
            "+++ b/a.py",
            "@@ -0,0 +1,2 @@",
            "+x = 1",
            "+y = 2",
            "--- /dev/null",
            "+++ b/b.js",
            "@@ -0,0 +1,1 @@",
            "+let z;",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = sections(&diff, 4, 9);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].path.as_str(), s[0].first, s[0].lines.clone()),
            ("a.py", 3, vec!["x = 1".to_string(), "y = 2".to_string()])
        );
        assert_eq!((s[1].path.as_str(), s[1].first), ("b.js", 8));
        assert!(sections(&diff, 0, 2).is_empty());
    }

    #[test]
    fn the_worker_colours_code_and_keeps_only_the_newest_request() {
        let (tx, rx) = mpsc::channel();
        let h = Highlighter::spawn(move |r| {
            let _ = tx.send(r);
        });
        let diff: Vec<String> = [
            "--- /dev/null",
            "+++ b/a.py",
            "@@ -0,0 +1,1 @@",
            "+def main():",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for key in 1..=50 {
            h.ask(Request {
                key,
                sections: sections(&diff, 0, 4),
                dark: true,
            });
        }
        let first = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
        let mut last = first.key;
        while let Ok(r) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
            last = r.key;
        }
        assert_eq!(last, 50, "the newest request is always worked");
        let (idx, spans) = &first.lines[0];
        assert_eq!(*idx, 3);
        assert_eq!(
            spans.iter().map(|(_, t)| t.as_str()).collect::<String>(),
            "def main():"
        );
        assert!(
            spans.len() > 1,
            "keywords and names get their own colours: {spans:?}"
        );
    }
}
