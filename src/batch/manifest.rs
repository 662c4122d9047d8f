//! The batch manifest: a TOML file naming the client, the batch's settings and its apps.
//!
//! ```toml
//! [batch]
//! name = "Rork November"
//! client = "rork"
//! concurrency = 4          # apps working at once, inside the global limit
//! budget_usd = "25"        # optional cap for the whole batch
//!
//! [[apps]]
//! name = "habit-tracker"
//! description = "…"
//! stack = "react-native"   # the default
//! acceptance = ["…"]       # optional
//! budget_usd = "1.50"      # optional; the config's task budget otherwise
//! price_usd = "120"        # optional; what the client pays for it
//! ```
//!
//! Amounts are written as text or numbers and converted to micro-dollars exactly.

use crate::money::{Micros, parse_usd};
use serde::Deserialize;
use std::collections::BTreeSet;

/// A parsed, checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub client: String,
    pub concurrency: u32,
    pub budget_micros: Option<Micros>,
    pub apps: Vec<AppSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    pub name: String,
    pub description: String,
    pub stack: String,
    pub acceptance: Vec<String>,
    pub budget_micros: Option<Micros>,
    pub price_micros: Option<Micros>,
}

/// Most apps one batch may hold.
pub const MAX_APPS: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    batch: RawBatch,
    #[serde(default)]
    apps: Vec<RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    name: String,
    client: String,
    #[serde(default = "default_concurrency")]
    concurrency: u32,
    #[serde(default)]
    budget_usd: Option<Amount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    description: String,
    #[serde(default = "default_stack")]
    stack: String,
    #[serde(default)]
    acceptance: Vec<String>,
    #[serde(default)]
    budget_usd: Option<Amount>,
    #[serde(default)]
    price_usd: Option<Amount>,
}

/// A dollar amount written as `"12.50"` or `12.5`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Amount {
    fn micros(&self, what: &str) -> Result<Micros, String> {
        let text = match self {
            Amount::Text(t) => t.clone(),
            Amount::Integer(i) => i.to_string(),
            // Written as a number: its shortest decimal text is what the operator wrote.
            Amount::Float(f) => f.to_string(),
        };
        parse_usd(&text).map_err(|e| format!("{what}: {e}"))
    }
}

fn default_concurrency() -> u32 {
    4
}

fn default_stack() -> String {
    "react-native".into()
}

/// Parses and checks a manifest; `source` names it in errors (a path).
pub fn parse(text: &str, source: &str) -> Result<Manifest, String> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!(" at line {line}")
            })
            .unwrap_or_default();
        format!(
            "{source} is not a valid batch manifest{at}: {}; see examples/rork-batch.toml",
            e.message()
        )
    })?;
    let name = raw.batch.name.trim().to_string();
    let client = raw.batch.client.trim().to_string();
    if name.is_empty() || client.is_empty() {
        return Err(format!(
            "{source}: [batch] needs a name and a client; see examples/rork-batch.toml"
        ));
    }
    if raw.batch.concurrency == 0 || raw.batch.concurrency > 64 {
        return Err(format!(
            "{source}: [batch] concurrency {} is out of range; give 1 to 64",
            raw.batch.concurrency
        ));
    }
    if raw.apps.is_empty() {
        return Err(format!(
            "{source} lists no apps; add [[apps]] tables with a name and a description"
        ));
    }
    if raw.apps.len() > MAX_APPS {
        return Err(format!(
            "{source} lists {} apps; one batch holds at most {MAX_APPS}, split it",
            raw.apps.len()
        ));
    }
    let budget_micros = raw
        .batch
        .budget_usd
        .as_ref()
        .map(|a| a.micros(&format!("{source}: [batch] budget_usd")))
        .transpose()?;
    let mut seen = BTreeSet::new();
    let mut apps = Vec::new();
    for (i, a) in raw.apps.into_iter().enumerate() {
        let label = format!("{source}: app {} ({:?})", i + 1, a.name);
        let app_name = a.name.trim().to_string();
        if app_name.is_empty() || a.description.trim().is_empty() {
            return Err(format!("{label} needs a name and a description"));
        }
        if !seen.insert(app_name.clone()) {
            return Err(format!(
                "{label}: the name is used twice; every app needs its own name"
            ));
        }
        if !crate::domain::STACKS.contains(&a.stack.as_str()) {
            return Err(format!(
                "{label}: stack {:?} is not one ecca knows; use one of {}",
                a.stack,
                crate::domain::STACKS.join(", ")
            ));
        }
        apps.push(AppSpec {
            name: app_name,
            description: a.description.trim().to_string(),
            stack: a.stack,
            acceptance: a
                .acceptance
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            budget_micros: a
                .budget_usd
                .as_ref()
                .map(|b| b.micros(&format!("{label} budget_usd")))
                .transpose()?,
            price_micros: a
                .price_usd
                .as_ref()
                .map(|b| b.micros(&format!("{label} price_usd")))
                .transpose()?,
        });
    }
    Ok(Manifest {
        name,
        client,
        concurrency: raw.batch.concurrency,
        budget_micros,
        apps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[batch]
name = "Rork"
client = "rork"
concurrency = 3
budget_usd = "12.50"

[[apps]]
name = "tip-splitter"
description = "Split a bill"
acceptance = ["totals add up"]
budget_usd = 0.75
price_usd = 120
"#;

    #[test]
    fn a_manifest_parses_with_exact_amounts_and_defaults() {
        let m = parse(GOOD, "b.toml").unwrap();
        assert_eq!(m.concurrency, 3);
        assert_eq!(m.budget_micros, Some(12_500_000));
        assert_eq!(m.apps[0].stack, "react-native");
        assert_eq!(m.apps[0].budget_micros, Some(750_000));
        assert_eq!(m.apps[0].price_micros, Some(120_000_000));
        assert_eq!(m.apps[0].acceptance, vec!["totals add up"]);
    }

    #[test]
    fn bad_manifests_say_what_and_where() {
        let e = parse("[batch]\nname = \"x\"\n", "b.toml").unwrap_err();
        assert!(e.contains("b.toml") && e.contains("client"), "{e}");
        let dup = format!("{GOOD}\n[[apps]]\nname = \"tip-splitter\"\ndescription = \"again\"\n");
        assert!(parse(&dup, "b.toml").unwrap_err().contains("used twice"));
        let stack = GOOD.replace("acceptance", "stack = \"cobol\"\nacceptance");
        assert!(parse(&stack, "b.toml").unwrap_err().contains("cobol"));
        let amount = GOOD.replace("0.75", "\"lots\"");
        let e = parse(&amount, "b.toml").unwrap_err();
        assert!(e.contains("budget_usd") && e.contains("12.50"), "{e}");
        let typo = GOOD.replace("concurrency", "concurency");
        let e = parse(&typo, "b.toml").unwrap_err();
        assert!(e.contains("line 4"), "{e}");
        let none = "[batch]\nname = \"x\"\nclient = \"c\"\n";
        assert!(parse(none, "b.toml").unwrap_err().contains("no apps"));
    }
}
