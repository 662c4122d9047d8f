//! The rolling context the writer sees: the last 20 actions word for word, older ones
//! folded into a one-line summary so prompts stay small however long a run goes.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How many recent actions are kept verbatim.
pub const WINDOW: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RollingContext {
    recent: VecDeque<Action>,
    /// Counts of summarised (older) actions by kind.
    older: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Action {
    kind: String,
    text: String,
}

impl RollingContext {
    pub fn record(&mut self, kind: &str, text: impl Into<String>) {
        self.recent.push_back(Action {
            kind: kind.to_string(),
            text: text.into(),
        });
        while self.recent.len() > WINDOW {
            if let Some(old) = self.recent.pop_front() {
                *self.older.entry(old.kind).or_default() += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.recent.len() + self.older.values().sum::<u32>() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The context as prompt text: a summary line for older actions, then the recent ones.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.older.is_empty() {
            let parts: Vec<String> = self.older.iter().map(|(k, n)| format!("{n} {k}")).collect();
            out.push_str(&format!("earlier (summarised): {}\n", parts.join(", ")));
        }
        for a in &self.recent {
            out.push_str("- ");
            out.push_str(&a.text);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_twenty_and_summarises_the_rest() {
        let mut c = RollingContext::default();
        for i in 0..25 {
            c.record(
                if i % 2 == 0 { "write" } else { "lint" },
                format!("action {i}"),
            );
        }
        assert_eq!(c.len(), 25);
        let text = c.render();
        assert!(
            text.starts_with("earlier (summarised): 2 lint, 3 write\n"),
            "{text}"
        );
        assert!(!text.contains("- action 4\n"));
        assert!(text.contains("- action 5\n") && text.ends_with("- action 24\n"));
    }
}
