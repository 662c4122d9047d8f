//! Acceptance criteria: the `- [ ] …` lines of a task's description plus any given
//! separately (`--accept TEXT`). The harness, not the model, decides whether each holds.

/// The task's criteria, in order, without duplicates or empty lines.
pub fn collect(description: &str, extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_description = description.lines().filter_map(|line| {
        let t = line.trim_start();
        let rest = t
            .strip_prefix("- [ ]")
            .or_else(|| t.strip_prefix("* [ ]"))?;
        Some(rest.trim().to_string())
    });
    for c in from_description.chain(extra.iter().map(|e| e.trim().to_string())) {
        if !c.is_empty() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::collect;

    #[test]
    fn checklist_lines_and_extra_criteria_in_order() {
        let description = "Add a --json flag.\n- [ ] `greet --json` prints JSON\n  - [ ] exit code 0\n- plain bullet\n- [x] already done\n";
        let got = collect(
            description,
            &["exit code 0".into(), " documented in README ".into()],
        );
        assert_eq!(
            got,
            vec![
                "`greet --json` prints JSON".to_string(),
                "exit code 0".to_string(),
                "documented in README".to_string()
            ]
        );
    }
}
