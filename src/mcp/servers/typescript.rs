//! TypeScript and React Native in the sandbox: the project files a run gets (a tsconfig and
//! an eslint config, unless the code brings its own), the scripts that type-check with
//! `tsc`, lint with eslint (typescript-eslint's recommended rules), compile and run node's
//! test runner, and the readers of what `tsc` and eslint print. Everything here is text;
//! `code_execution` runs it in a fresh container with the node tools of the image.

use crate::containers::node_tools::IN_IMAGE;
use crate::engine::tools::Diagnostic;
use std::collections::BTreeMap;

/// The exit status of a script that found no node tools in the image.
pub const MISSING_TOOLS_EXIT: i64 = 97;
/// Between the compiler's output and eslint's JSON in a lint run's output.
pub const ESLINT_MARK: &str = "@@ecca-eslint@@";
/// Before the fixed file in a `--fix` run's output.
pub const FIXED_MARK: &str = "@@ecca-fixed@@";

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2020",
    "module": "commonjs",
    "moduleResolution": "node",
    "jsx": "react-jsx",
    "strict": true,
    "esModuleInterop": true,
    "skipLibCheck": true,
    "forceConsistentCasingInFileNames": true,
    "rootDir": ".",
    "outDir": ".out",
    "noEmitOnError": true,
    "types": ["node", "react"]
  },
  "include": ["**/*.ts", "**/*.tsx"],
  "exclude": [".out", "node_modules"]
}
"#;

const ESLINT_CONFIG: &str = r#"import tseslint from "typescript-eslint";

export default tseslint.config(...tseslint.configs.recommended, {
  ignores: [".out/**", "node_modules/**"],
});
"#;

/// Adds the project files the code did not bring.
pub fn add_project_files(files: &mut BTreeMap<String, String>) {
    files
        .entry("tsconfig.json".into())
        .or_insert_with(|| TSCONFIG.into());
    files
        .entry("eslint.config.mjs".into())
        .or_insert_with(|| ESLINT_CONFIG.into());
}

/// What a script does after checking the tools are there.
pub enum Job<'a> {
    /// Compile everything, then node's test runner over the compiled tests.
    Test,
    /// Compile everything, then run `file`.
    Run { file: &'a str },
    /// Type-check everything and lint `file` (fixing it when asked).
    Lint { file: &'a str, fix: bool },
}

/// Single quotes for the shell.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The bash script of `job`, run in /scratch with the files written there.
pub fn script(job: &Job<'_>) -> String {
    let tools = format!("{IN_IMAGE}/node_modules");
    let mut s = format!(
        "set -u\nT={tools}\nif [ ! -f \"$T/typescript/bin/tsc\" ]; then\n  echo \"unavailable: the sandbox image has no TypeScript tools; run \\`ecca images build\\` (it installs them from npm)\" >&2\n  exit {MISSING_TOOLS_EXIT}\nfi\n\
         node -e 'require(\"fs\").symlinkSync(process.argv[1], \"node_modules\")' \"$T\"\n"
    );
    let tsc = "node \"$T/typescript/bin/tsc\" -p tsconfig.json --pretty false";
    match job {
        Job::Test => s.push_str(&format!(
            "{tsc} || {{ echo \"the TypeScript compiler found errors; nothing was run\" >&2; exit 1; }}\nnode --test .out/\n"
        )),
        Job::Run { file } => {
            let js = format!(
                ".out/{}.js",
                file.rsplit_once('.').map(|(m, _)| m).unwrap_or(file)
            );
            s.push_str(&format!(
                "{tsc} || {{ echo \"the TypeScript compiler found errors; nothing was run\" >&2; exit 1; }}\nnode {}\n",
                quoted(&js)
            ));
        }
        Job::Lint { file, fix } => {
            let fix_flag = if *fix { " --fix" } else { "" };
            s.push_str(&format!(
                "{tsc} --noEmit\necho {ESLINT_MARK}\nnode \"$T/eslint/bin/eslint.js\"{fix_flag} -f json {f} || true\n",
                f = quoted(file)
            ));
            if *fix {
                s.push_str(&format!("echo\necho {FIXED_MARK}\ncat {}\n", quoted(file)));
            }
            s.push_str("exit 0\n");
        }
    }
    s
}

/// `file(line,col): error TS2322: message` lines of `tsc --pretty false`.
pub fn tsc_diagnostics(out: &str) -> Vec<Diagnostic> {
    out.lines()
        .filter_map(|line| {
            let (place, rest) = line.split_once("): ")?;
            let (file, pos) = place.rsplit_once('(')?;
            let (l, c) = pos.split_once(',')?;
            let (severity, rest) = rest.split_once(' ')?;
            if severity != "error" && severity != "warning" {
                return None;
            }
            let (code, message) = rest.split_once(": ")?;
            Some(Diagnostic {
                file: file.to_string(),
                line: l.parse().ok()?,
                column: c.parse().ok()?,
                code: code.to_string(),
                message: message.to_string(),
                severity: severity.to_string(),
            })
        })
        .collect()
}

/// eslint's `-f json` report.
pub fn eslint_diagnostics(json: &str, file: &str) -> Result<Vec<Diagnostic>, String> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("eslint's report could not be read ({e}): {}", json.trim()))?;
    let mut out = Vec::new();
    for f in v.as_array().into_iter().flatten() {
        for m in f["messages"].as_array().into_iter().flatten() {
            out.push(Diagnostic {
                file: file.to_string(),
                line: m["line"].as_u64().unwrap_or(0) as u32,
                column: m["column"].as_u64().unwrap_or(0) as u32,
                code: m["ruleId"].as_str().unwrap_or("eslint").to_string(),
                message: m["message"].as_str().unwrap_or("").to_string(),
                severity: if m["severity"].as_u64() == Some(2) {
                    "error"
                } else {
                    "warning"
                }
                .into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiler_errors_become_diagnostics() {
        let out = "components/Tip.tsx(12,5): error TS2322: Type 'string' is not assignable to type 'number'.\nnoise\nsrc/a.ts(1,1): warning TS6133: 'x' is declared but never used.\n";
        let d = tsc_diagnostics(out);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].file, "components/Tip.tsx");
        assert_eq!((d[0].line, d[0].column), (12, 5));
        assert_eq!(d[0].code, "TS2322");
        assert_eq!(d[0].severity, "error");
        assert_eq!(d[1].severity, "warning");
    }

    #[test]
    fn eslint_reports_become_diagnostics() {
        let json = r#"[{"filePath":"/scratch/a.ts","messages":[{"ruleId":"@typescript-eslint/no-unused-vars","severity":2,"message":"'x' is assigned a value but never used.","line":3,"column":7}]}]"#;
        let d = eslint_diagnostics(json, "a.ts").unwrap();
        assert_eq!(d[0].code, "@typescript-eslint/no-unused-vars");
        assert_eq!((d[0].line, d[0].column), (3, 7));
        assert!(eslint_diagnostics("Oops", "a.ts").is_err());
    }

    #[test]
    fn file_names_are_quoted_for_the_shell() {
        let s = script(&Job::Lint {
            file: "it's.ts",
            fix: true,
        });
        assert!(s.contains(r"'it'\''s.ts'"));
        assert!(s.contains(FIXED_MARK));
    }
}
