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
}

pub const FIELDS: [Field; 5] = [
    Field::Client,
    Field::Title,
    Field::Description,
    Field::Stack,
    Field::Agent,
];

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Client => "Client",
            Field::Title => "Title",
            Field::Description => "Description",
            Field::Stack => "Stack",
            Field::Agent => "Agent",
        }
    }

    pub fn is_choice(self) -> bool {
        matches!(self, Field::Client | Field::Stack | Field::Agent)
    }
}

/// How the form was left.
#[derive(Debug)]
pub enum FormEnd {
    Launch(Box<NewTask>),
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
            Action::Submit => match self.task(provider) {
                Ok(task) => return Some(FormEnd::Launch(Box::new(task))),
                Err(e) => self.error = Some(e),
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
