//! Keys as data. One table says, for each context, which key does what and how to call it;
//! the input handler, the footer and the help overlay all read the same table, so what the
//! screen says is what the keys do.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;

const DEFAULT: &str = include_str!("keymap.toml");

/// Where a binding applies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    Global,
    Runs,
    Detail,
    Approvals,
    Form,
    Note,
    Confirm,
    Help,
    Filter,
    /// The critical-review overlay: the full diff of a risky deliverable.
    Review,
    Clients,
    /// The Batch view while a manifest path is written.
    BatchOpen,
    /// The Batch view showing a manifest's forecast, before launch.
    BatchForecast,
    /// The Batch view's scoreboard of a launched batch.
    Batch,
    Containers,
    /// A list to pick one entry of (the server to start).
    Pick,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Runs => "runs",
            Context::Detail => "run detail",
            Context::Approvals => "approvals",
            Context::Form => "new task",
            Context::Note => "note",
            Context::Confirm => "confirm",
            Context::Help => "help",
            Context::Filter => "filter",
            Context::Review => "critical review",
            Context::Clients => "clients",
            Context::BatchOpen => "batch: open a manifest",
            Context::BatchForecast => "batch: forecast",
            Context::Batch => "batch: scoreboard",
            Context::Containers => "containers",
            Context::Pick => "pick",
        }
    }
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    ViewRuns,
    ViewApprovals,
    NewTask,
    Next,
    Prev,
    Open,
    Back,
    Sort,
    Filter,
    CancelTask,
    Resume,
    NextPane,
    PrevPane,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Approve,
    Revise,
    Reject,
    NextField,
    PrevField,
    Submit,
    Cancel,
    Confirm,
    ViewClients,
    ViewBatch,
    /// Set the selected client's monthly cap.
    SetCap,
    /// Raise the selected (or first paused) task's budget.
    RaiseBudget,
    /// Resume every run paused on the selected client.
    ResumePaused,
    /// Complete the path being written.
    Complete,
    /// Launch the forecast batch (after a confirmation).
    Launch,
    /// Retry every failed app of the batch.
    RetryFailed,
    CancelBatch,
    ViewContainers,
    ContainerStart,
    ContainerStop,
    ContainerRestart,
    /// Remove the selected container (after a confirmation).
    ContainerRemove,
    /// Start a registry server or a client's client-github.
    StartServer,
    BuildImages,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Binding {
    pub context: Context,
    pub key: String,
    pub action: Action,
    pub help: String,
}

#[derive(Debug, Deserialize)]
struct File {
    bind: Vec<Binding>,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Binding, KeyCode, KeyModifiers)>,
}

/// Parses `ctrl-s`, `enter`, `G`, `?`, `pagedown` … into a key.
pub fn parse_key(spec: &str) -> Result<(KeyCode, KeyModifiers), String> {
    let (mods, name) = match spec.strip_prefix("ctrl-") {
        Some(rest) => (KeyModifiers::CONTROL, rest),
        None => (KeyModifiers::NONE, spec),
    };
    let code = match name {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "space" => KeyCode::Char(' '),
        s if s.chars().count() == 1 => KeyCode::Char(s.chars().next().unwrap_or(' ')),
        other => {
            return Err(format!(
                "{other:?} is not a key ecca knows (try a letter, enter, esc, tab, up, ctrl-s …)"
            ));
        }
    };
    Ok((code, mods))
}

/// How a key is shown: `^S`, `Enter`, `↑`.
pub fn show_key(spec: &str) -> String {
    match spec {
        "enter" => "Enter".into(),
        "esc" => "Esc".into(),
        "tab" => "Tab".into(),
        "backtab" => "S-Tab".into(),
        "up" => "↑".into(),
        "down" => "↓".into(),
        "pageup" => "PgUp".into(),
        "pagedown" => "PgDn".into(),
        s => match s.strip_prefix("ctrl-") {
            Some(k) => format!("^{}", k.to_uppercase()),
            None => s.to_string(),
        },
    }
}

impl Keymap {
    /// The built-in table with `overrides` (`"context.action"` → key) applied.
    pub fn load(overrides: &BTreeMap<String, String>) -> Result<Keymap, String> {
        let file: File = toml::from_str(DEFAULT)
            .map_err(|e| format!("the built-in keymap is malformed: {e}"))?;
        let mut bindings = Vec::new();
        for b in file.bind {
            let (code, mods) = parse_key(&b.key)?;
            bindings.push((b, code, mods));
        }
        for (name, key) in overrides {
            let (ctx, action) = name.split_once('.').ok_or_else(|| {
                format!("console.keys: {name:?} must be CONTEXT.ACTION, e.g. approvals.approve")
            })?;
            let (code, mods) = parse_key(key).map_err(|e| format!("console.keys.{name}: {e}"))?;
            let mut found = false;
            for (b, c, m) in bindings.iter_mut() {
                let ctx_name = serde_json::to_value(b.context)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let act_name = serde_json::to_value(b.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                if ctx_name == ctx && act_name == action {
                    b.key = key.clone();
                    (*c, *m) = (code, mods);
                    found = true;
                }
            }
            if !found {
                return Err(format!("console.keys: no binding {name:?} to change"));
            }
        }
        Ok(Keymap { bindings })
    }

    /// The action of a key in the first of `contexts` that binds it.
    pub fn action(&self, contexts: &[Context], key: &KeyEvent) -> Option<Action> {
        // Shifted letters arrive as uppercase with SHIFT; the table writes them as `G`.
        let mods = key.modifiers - KeyModifiers::SHIFT;
        contexts.iter().find_map(|ctx| {
            self.bindings
                .iter()
                .find(|(b, code, m)| b.context == *ctx && *code == key.code && *m == mods)
                .map(|(b, _, _)| b.action)
        })
    }

    /// The first key bound to `action` in `context`, as the footer shows it.
    pub fn key_of(&self, context: Context, action: Action) -> Option<String> {
        self.bindings
            .iter()
            .find(|(b, _, _)| b.context == context && b.action == action)
            .map(|(b, _, _)| show_key(&b.key))
    }

    /// The footer: one `key help` per action of these contexts, first key only.
    pub fn footer(&self, contexts: &[Context]) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for ctx in contexts {
            for (b, _, _) in self.bindings.iter().filter(|(b, _, _)| b.context == *ctx) {
                if !seen.contains(&b.action) {
                    seen.push(b.action);
                    out.push((show_key(&b.key), b.help.clone()));
                }
            }
        }
        out
    }

    /// Every context's bindings, keys of one action joined: for the help overlay.
    pub fn help(&self) -> Vec<(Context, Vec<(String, String)>)> {
        let mut groups: Vec<(Context, Vec<(String, String)>)> = Vec::new();
        for (b, _, _) in &self.bindings {
            let group = match groups.iter_mut().find(|(c, _)| *c == b.context) {
                Some(g) => g,
                None => {
                    groups.push((b.context, Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            match group.1.iter_mut().find(|(_, h)| *h == b.help) {
                Some((keys, _)) => keys.push_str(&format!("/{}", show_key(&b.key))),
                None => group.1.push((show_key(&b.key), b.help.clone())),
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn the_table_drives_keys_footer_and_help() {
        let km = Keymap::load(&BTreeMap::new()).unwrap();
        let ctx = [Context::Approvals, Context::Global];
        assert_eq!(
            km.action(&ctx, &key(KeyCode::Char('y'), KeyModifiers::NONE)),
            Some(Action::Approve)
        );
        assert_eq!(
            km.action(&ctx, &key(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(
                &[Context::Detail],
                &key(KeyCode::Char('G'), KeyModifiers::SHIFT)
            ),
            Some(Action::Bottom)
        );
        assert_eq!(
            km.action(&ctx, &key(KeyCode::Char('z'), KeyModifiers::NONE)),
            None
        );
        let footer = km.footer(&[Context::Approvals]);
        assert!(footer.contains(&("y".into(), "approve".into())));
        let help = km.help();
        let approvals = &help
            .iter()
            .find(|(c, _)| *c == Context::Approvals)
            .unwrap()
            .1;
        assert!(
            approvals.contains(&("↓/j".into(), "down".into())),
            "{approvals:?}"
        );

        let mut o = BTreeMap::new();
        o.insert("approvals.approve".to_string(), "a".to_string());
        let km = Keymap::load(&o).unwrap();
        assert_eq!(
            km.action(&ctx, &key(KeyCode::Char('a'), KeyModifiers::NONE)),
            Some(Action::Approve)
        );
        assert_eq!(
            km.action(&ctx, &key(KeyCode::Char('y'), KeyModifiers::NONE)),
            None
        );
        assert!(
            km.footer(&[Context::Approvals])
                .contains(&("a".into(), "approve".into())),
            "the footer follows"
        );
        o.insert("approvals.fly".to_string(), "f".to_string());
        assert!(Keymap::load(&o).is_err());
    }
}
