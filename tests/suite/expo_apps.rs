//! TypeScript and React Native for real: the node tools in the sandbox image type-check,
//! lint and test code through the real code-execution MCP server, a broken file gets the
//! compiler's and eslint's findings, a failing test fails; and a React Native task run
//! with the offline model ends as an Expo project whose components were linted by tsc and
//! eslint and tested by node's test runner in the sandbox. These tests need Docker and the
//! sandbox image built with its node tools (scripts/test.sh builds it).

use crate::common;

use ecca::console::model::load_detail;
use ecca::domain::TaskStatus;
use ecca::mcp::client::McpClients;
use ecca::mcp::servers::{self, code_execution::CodeExecution};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

async fn sandbox() -> (servers::Running, McpClients) {
    common::require_docker_and_sandbox();
    let server = CodeExecution::new(None);
    let running = servers::serve(SocketAddr::from(([127, 0, 0, 1], 0)), move || {
        server.clone()
    })
    .await
    .unwrap();
    let clients = McpClients::new(
        [("x".to_string(), running.url.clone())],
        Duration::from_secs(300),
    );
    (running, clients)
}

async fn call(c: &McpClients, tool: &str, args: Value) -> Value {
    c.call("x", tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
}

const COMPONENT: &str = r#"import { Text, View } from "react-native";

export function splitTip(bill: number, percent: number, people: number): number {
  if (people <= 0) {
    throw new Error("people must be at least 1");
  }
  return Math.round(((bill * (1 + percent / 100)) / people) * 100) / 100;
}

export function TipSplitter({ bill }: { bill: number }) {
  return (
    <View>
      <Text>{splitTip(bill, 15, 2)}</Text>
    </View>
  );
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_type_checks_lints_and_tests_typescript() {
    let (running, c) = sandbox().await;
    let file = "components/TipSplitter.tsx";
    let good = call(
        &c,
        "lint_typescript",
        json!({"code": COMPONENT, "filename": file}),
    )
    .await;
    assert_eq!(good["ran"], true, "{good}");
    assert!(
        good["linter"].as_str().unwrap().contains("tsc 5.6.3"),
        "{good}"
    );
    assert_eq!(good["diagnostics"], json!([]), "{good}");

    // A type error and an unused variable: the compiler and eslint each say so.
    let broken = COMPONENT
        .replace("(bill: number, percent", "(bill: string, percent")
        .replace("  if (people", "  const unused = 1;\n  if (people");
    let bad = call(
        &c,
        "lint_typescript",
        json!({"code": broken, "filename": file}),
    )
    .await;
    let codes: Vec<&str> = bad["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.iter().any(|c| c.starts_with("TS")), "{bad}");
    assert!(
        codes.contains(&"@typescript-eslint/no-unused-vars"),
        "{bad}"
    );
    let type_error = bad["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"].as_str().unwrap().starts_with("TS"))
        .unwrap();
    assert_eq!(type_error["file"], file);
    assert!(type_error["line"].as_u64().unwrap() > 0);

    // node's test runner over the compiled project: two passing tests, then a failing one.
    let tests = r#"import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidElement } from "react";
import { TipSplitter, splitTip } from "./TipSplitter";

test("splits the bill with the tip", () => {
  assert.equal(splitTip(100, 15, 2), 57.5);
});

test("renders an element", () => {
  assert.ok(isValidElement(TipSplitter({ bill: 10 })));
});
"#;
    let run = |tests: String| {
        json!({
            "code": tests,
            "filename": "components/TipSplitter.test.ts",
            "files": [{"path": file, "content": COMPONENT}],
            "test": true,
        })
    };
    let passed = call(&c, "run_typescript", run(tests.to_string())).await;
    assert_eq!(passed["passed"], true, "{passed}");
    let out = passed["stdout"].as_str().unwrap();
    assert!(
        out.contains("# pass 2") && out.contains("# fail 0"),
        "{out}"
    );
    let failing = tests.replace("57.5)", "58)");
    let failed = call(&c, "run_typescript", run(failing)).await;
    assert_eq!(failed["passed"], false, "{failed}");
    assert!(
        failed["stdout"].as_str().unwrap().contains("# fail 1"),
        "{failed}"
    );
    running.stop().await;
}

#[test]
fn a_react_native_task_is_an_expo_project_checked_in_the_sandbox() {
    common::require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let ecca = |args: &[&str]| {
        let out = common::ecca_command(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ecca {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ecca(&[
        "clients",
        "add",
        "rork",
        "--name",
        "Rork",
        "--budget-usd",
        "20",
    ]);
    // The real binary with its own tool servers and the sandbox; the offline model.
    let said = ecca(&[
        "run",
        "--dry-run",
        "--client",
        "rork",
        "--stack",
        "react-native",
        "--task",
        "Tip splitter",
        "--description",
        "- tip splitter screen\n- bill history list",
    ]);
    assert!(said.contains("awaiting_approval"), "{said}");
    let store = ecca::store::Store::open(dir.path()).unwrap();
    let t = store.task("T-0001").unwrap().unwrap();
    assert_eq!(
        t.status,
        TaskStatus::AwaitingApproval,
        "{:?}",
        t.status_reason
    );
    let d = load_detail(&store, "T-0001", 70).unwrap();
    assert!(
        !d.skipped
            .iter()
            .any(|s| s.starts_with("lint") || s.starts_with("test") || s.starts_with("execute")),
        "lint, execution and tests ran: {:?}",
        d.skipped
    );
    let lint = format!("{} {}", d.lint.label, d.lint.lines.join("\n"));
    assert!(
        lint.contains("tsc 5.6.3") && lint.contains("eslint"),
        "{lint}"
    );
    let tests = d.tests.lines.join("\n");
    assert!(
        tests.contains("# pass 2") && tests.contains("# fail 0"),
        "{tests}"
    );
    let diff = d.diff.join("\n");
    for file in [
        "package.json",
        "app.json",
        "App.tsx",
        "components/TipSplitterScreen.tsx",
        "components/BillHistoryList.test.ts",
    ] {
        assert!(diff.contains(file), "{file} in the deliverable:\n{diff}");
    }
    assert!(diff.contains("\"expo\": \"~52.0.11\""), "{diff}");
    assert!(
        t.quality_score.unwrap_or(0.0) >= 9.0,
        "{:?}",
        t.quality_score
    );
}
