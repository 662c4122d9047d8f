//! The New task form: text fields and choice fields. It produces a `NewTask` or a sentence
//! saying what is missing; it never starts anything itself.

use crate::config::ProviderKind;
use crate::console::keymap::Action;
use crate::domain::STACKS;
use crate::supervisor::NewTask;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

pub const AGENTS: &[&str] = &["builtin", "claude-code", "codex", "aider"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Client,
    Title,
    Description,
    Stack,
    Agent,
    /// A second agent kind to run the same spec, for a side-by-side choice.
    Compare,
}

pub const FIELDS: [Field; 6] = [
    Field::Client,
    Field::Title,
    Field::Description,
    Field::Stack,
    Field::Agent,
    Field::Compare,
];

/// The Compare field's first choice: no comparison.
pub const NO_COMPARISON: &str = "no comparison";

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Client => "Client",
            Field::Title => "Title",
            Field::Description => "Description",
            Field::Stack => "Stack",
            Field::Agent => "Agent",
            Field::Compare => "Compare with",
        }
    }

    pub fn is_choice(self) -> bool {
        matches!(
            self,
            Field::Client | Field::Stack | Field::Agent | Field::Compare
        )
    }
}

/// How the form was left.
#[derive(Debug)]
pub enum FormEnd {
    Launch(Box<NewTask>),
    /// The same task by each of these agent kinds, side by side.
    Compare(Box<NewTask>, Vec<String>),
    Cancelled,
}

pub struct Form {
    pub focus: usize,
    pub clients: Vec<String>,
    pub client: usize,
    pub title: TextArea<'static>,
    pub description: TextArea<'static>,
    pub stack: usize,
    pub agent: usize,
    /// 0: no comparison; else the kind `AGENTS[compare - 1]`.
    pub compare: usize,
    pub error: Option<String>,
}

impl Form {
    pub fn new(clients: Vec<String>) -> Form {
        let mut title = TextArea::default();
        title.set_placeholder_text("what to build, in one line");
        let mut description = TextArea::default();
        description.set_placeholder_text("details; lines starting with \"- \" become subtasks");
        Form {
            focus: 1,
            clients,
            client: 0,
            title,
            description,
            stack: 0,
            agent: 0,
            compare: 0,
            error: None,
        }
    }

    pub fn field(&self) -> Field {
        FIELDS[self.focus]
    }

    pub fn next(&mut self, step: isize) {
        self.focus = (self.focus as isize + step).rem_euclid(FIELDS.len() as isize) as usize;
    }

    /// Cycles a choice field.
    pub fn choose(&mut self, step: isize) {
        let cycle = |i: usize, n: usize| (i as isize + step).rem_euclid(n.max(1) as isize) as usize;
        match self.field() {
            Field::Client => self.client = cycle(self.client, self.clients.len()),
            Field::Stack => self.stack = cycle(self.stack, STACKS.len()),
            Field::Agent => self.agent = cycle(self.agent, AGENTS.len()),
            Field::Compare => self.compare = cycle(self.compare, AGENTS.len() + 1),
            _ => {}
        }
    }

    pub fn text_mut(&mut self) -> Option<&mut TextArea<'static>> {
        match self.field() {
            Field::Title => Some(&mut self.title),
            Field::Description => Some(&mut self.description),
            _ => None,
        }
    }

    pub fn value(&self, field: Field) -> String {
        match field {
            Field::Client => self.clients.get(self.client).cloned().unwrap_or_default(),
            Field::Title => self.title.lines().join(" "),
            Field::Description => self.description.lines().join("\n"),
            Field::Stack => STACKS[self.stack].to_string(),
            Field::Agent => AGENTS[self.agent].to_string(),
            Field::Compare => match self.compare {
                0 => NO_COMPARISON.to_string(),
                n => AGENTS[n - 1].to_string(),
            },
        }
    }

    /// The task to start, or what is missing.
    pub fn task(&self, provider: ProviderKind) -> Result<NewTask, String> {
        if self.clients.is_empty() {
            return Err("there is no client yet; add one with `ecca clients add ID --name N --budget-usd X`".into());
        }
        let title = self.value(Field::Title);
        if title.trim().is_empty() {
            return Err("give the task a title".into());
        }
        Ok(NewTask {
            client_id: self.value(Field::Client),
            title,
            description: self.value(Field::Description),
            stack: self.value(Field::Stack),
            source: "manual".into(),
            agent_kind: self.value(Field::Agent),
            budget_micros: None,
            provider: Some(provider),
            base_branch: None,
            acceptance: Vec::new(),
            price_micros: None,
        })
    }

    /// The form's keys: fields, launch (a task or what is missing), cancel.
    pub fn act(&mut self, action: Action, provider: ProviderKind) -> Option<FormEnd> {
        match action {
            Action::NextField => self.next(1),
            Action::PrevField => self.next(-1),
            Action::Cancel => return Some(FormEnd::Cancelled),
            Action::Submit => match (self.task(provider), self.compare) {
                (Ok(task), 0) => return Some(FormEnd::Launch(Box::new(task))),
                (Ok(task), _) => {
                    let other = self.value(Field::Compare);
                    if other == task.agent_kind {
                        self.error = Some(format!(
                            "compare {other} with another agent kind, or choose {NO_COMPARISON}"
                        ));
                    } else {
                        let agents = vec![task.agent_kind.clone(), other];
                        return Some(FormEnd::Compare(Box::new(task), agents));
                    }
                }
                (Err(e), _) => self.error = Some(e),
            },
            _ => {}
        }
        None
    }

    /// A key the table does not bind: a choice moves, or text is written.
    pub fn key(&mut self, key: KeyEvent) {
        if self.field().is_choice() {
            match key.code {
                KeyCode::Left => self.choose(-1),
                KeyCode::Right | KeyCode::Char(' ') => self.choose(1),
                _ => {}
            }
        } else {
            // Enter makes a new line only in the description.
            let multiline = self.field() == Field::Description;
            if let Some(area) = self.text_mut()
                && (key.code != KeyCode::Enter || multiline)
            {
                area.input(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titled(form: &mut Form) {
        form.title.insert_str("Add a shout helper");
    }

    #[test]
    fn a_comparison_launches_both_kinds_and_never_the_same_kind_twice() {
        let mut form = Form::new(vec!["acme".into()]);
        titled(&mut form);
        form.focus = FIELDS.iter().position(|f| *f == Field::Compare).unwrap();
        assert_eq!(form.value(Field::Compare), NO_COMPARISON);
        match form.act(Action::Submit, ProviderKind::Offline) {
            Some(FormEnd::Launch(task)) => assert_eq!(task.agent_kind, "builtin"),
            other => panic!("a plain launch, not {other:?}"),
        }
        // The first choice after none is the built-in loop: the same kind as the agent.
        form.choose(1);
        assert_eq!(form.value(Field::Compare), "builtin");
        assert!(form.act(Action::Submit, ProviderKind::Offline).is_none());
        assert!(
            form.error
                .as_deref()
                .is_some_and(|e| e.contains("another agent kind")),
            "{:?}",
            form.error
        );
        form.choose(1);
        match form.act(Action::Submit, ProviderKind::Offline) {
            Some(FormEnd::Compare(task, agents)) => {
                assert_eq!(task.agent_kind, "builtin");
                assert_eq!(agents, ["builtin", "claude-code"]);
            }
            other => panic!("a comparison, not {other:?}"),
        }
    }
}
