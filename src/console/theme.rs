//! Colours as data: semantic roles read from `themes/*.toml`, chosen in the config, with a
//! user file allowed to override only some roles. With `NO_COLOR` set every colour is
//! dropped and only emphasis (bold, reverse) remains.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;

const DARK: &str = include_str!("../../themes/dark.toml");
const LIGHT: &str = include_str!("../../themes/light.toml");

/// The roles widgets ask for; widgets never name a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Text,
    Muted,
    Border,
    Title,
    Accent,
    Selection,
    Ok,
    Warn,
    Error,
    Simulated,
    DiffAdd,
    DiffDel,
    DiffHunk,
    Gauge,
    GaugeWarn,
    GaugeOver,
    Background,
}

impl Role {
    const ALL: [(Role, &'static str); 17] = [
        (Role::Text, "text"),
        (Role::Muted, "muted"),
        (Role::Border, "border"),
        (Role::Title, "title"),
        (Role::Accent, "accent"),
        (Role::Selection, "selection"),
        (Role::Ok, "ok"),
        (Role::Warn, "warn"),
        (Role::Error, "error"),
        (Role::Simulated, "simulated"),
        (Role::DiffAdd, "diff_add"),
        (Role::DiffDel, "diff_del"),
        (Role::DiffHunk, "diff_hunk"),
        (Role::Gauge, "gauge"),
        (Role::GaugeWarn, "gauge_warn"),
        (Role::GaugeOver, "gauge_over"),
        (Role::Background, "background"),
    ];
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    colors: BTreeMap<&'static str, Color>,
    /// NO_COLOR: no colours at all.
    plain: bool,
}

fn parse_color(s: &str) -> Option<Color> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

impl Theme {
    /// A built-in theme by name (`dark`, `light`), with `overrides` (a theme file's text)
    /// applied on top. `plain` drops all colour.
    pub fn load(name: &str, overrides: Option<&str>, plain: bool) -> Result<Theme, String> {
        let base = match name {
            "dark" => DARK,
            "light" => LIGHT,
            other => {
                return Err(format!(
                    "there is no theme named {other:?}; use dark or light (and override roles in a theme file)"
                ));
            }
        };
        let mut theme = Theme {
            name: name.to_string(),
            colors: BTreeMap::new(),
            plain,
        };
        theme.apply(base)?;
        if let Some(text) = overrides {
            theme.apply(text)?;
        }
        Ok(theme)
    }

    fn apply(&mut self, text: &str) -> Result<(), String> {
        let file: ThemeFile = toml::from_str(text)
            .map_err(|e| format!("the theme file is malformed: {}", e.to_string().trim()))?;
        if let Some(n) = file.name {
            self.name = n;
        }
        for (key, value) in file.roles {
            let role = Role::ALL
                .iter()
                .find(|(_, n)| *n == key)
                .map(|(_, n)| *n)
                .ok_or_else(|| {
                    let names: Vec<&str> = Role::ALL.iter().map(|(_, n)| *n).collect();
                    format!(
                        "the theme names an unknown role {key:?}; roles are {}",
                        names.join(", ")
                    )
                })?;
            let color = parse_color(&value)
                .ok_or_else(|| format!("role {key}: {value:?} is not a colour like \"#a1b2c3\""))?;
            self.colors.insert(role, color);
        }
        Ok(())
    }

    pub fn color(&self, role: Role) -> Option<Color> {
        if self.plain {
            return None;
        }
        let name = Role::ALL
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| *n)?;
        self.colors.get(name).copied()
    }

    /// Foreground in a role.
    pub fn fg(&self, role: Role) -> Style {
        match self.color(role) {
            Some(c) => Style::default().fg(c),
            None => Style::default(),
        }
    }

    /// The selected row: the selection colour, or reverse video without colour.
    pub fn selected(&self) -> Style {
        match self.color(Role::Selection) {
            Some(c) => Style::default().bg(c).add_modifier(Modifier::BOLD),
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Role::Title).add_modifier(Modifier::BOLD)
    }

    /// Every role and its colour, for the screenshot writer's background.
    pub fn background(&self) -> Option<Color> {
        self.color(Role::Background)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_overrides_and_no_color() {
        let t = Theme::load("dark", Some("[roles]\naccent = \"#010203\"\n"), false).unwrap();
        assert_eq!(t.color(Role::Accent), Some(Color::Rgb(1, 2, 3)));
        assert_eq!(
            t.color(Role::Ok),
            Some(Color::Rgb(0x7c, 0xc8, 0x7f)),
            "the rest stays"
        );
        assert!(
            Theme::load("dark", Some("[roles]\nshiny = \"#000000\"\n"), false)
                .unwrap_err()
                .contains("unknown role")
        );
        let plain = Theme::load("light", None, true).unwrap();
        assert_eq!(plain.fg(Role::Error), Style::default());
        assert_eq!(
            plain.selected(),
            Style::default().add_modifier(Modifier::REVERSED)
        );
        for name in ["dark", "light"] {
            let t = Theme::load(name, None, false).unwrap();
            for (role, _) in Role::ALL {
                assert!(t.color(role).is_some(), "{name} sets every role");
            }
        }
    }
}
