//! Sample containers for the Containers view's screenshots, snapshots and benchmarks: the
//! five shared servers of the compose project, a client's client-github and a third-party
//! server, at the fixed clock of the other samples.

use super::app::{App, View};
use super::fixture::NOW;
use super::views::containers::Pane;
use crate::containers::managed::{ContainerRow, Health};
use crate::containers::watch::ContainersSnapshot;
use crate::engine::tools::ToolCallStats;
use std::sync::Arc;

const MIB: u64 = 1024 * 1024;

fn row(title: &str, name: &str, port: u16, cpu: f64, mem_mib: u64, up_min: i64) -> ContainerRow {
    ContainerRow {
        id: format!("{:0>12}", port),
        name: name.into(),
        server: Some(title.into()),
        client: None,
        compose_service: Some(title.into()),
        image: "ecca-mcp:latest".into(),
        state: "running".into(),
        ports: vec![format!("127.0.0.1:{port}→{port}")],
        endpoint: Some(format!("http://127.0.0.1:{port}/mcp")),
        restarts: 0,
        started_at_ms: Some(NOW - up_min * 60_000),
        exit_code: None,
        memory_limit: Some(512 * MIB),
        cpu_percent: Some(cpu),
        memory_bytes: Some(mem_mib * MIB),
        health: Health::Healthy {
            tools: 4,
            latency_ms: 12.0 + cpu,
        },
    }
}

/// `n` containers: the shared servers first, then numbered third-party ones.
pub fn containers(n: usize) -> Vec<ContainerRow> {
    let mut rows = vec![
        row(
            "code-assistant",
            "compose_code-assistant_1",
            8101,
            0.4,
            21,
            185,
        ),
        row("code-context", "compose_code-context_1", 8100, 1.2, 34, 185),
        row(
            "code-execution",
            "compose_code-execution_1",
            8102,
            6.8,
            48,
            185,
        ),
        row("linter", "compose_linter_1", 8104, 0.2, 19, 185),
        row("vector-code", "compose_vector-code_1", 8103, 0.9, 112, 185),
    ];
    let mut github = row(
        "client-github",
        "ecca-client-github-acme",
        8110,
        0.1,
        15,
        42,
    );
    github.compose_service = None;
    github.client = Some("acme".into());
    github.ports = vec!["127.0.0.1:49153→8110".into()];
    github.endpoint = Some("http://127.0.0.1:49153/mcp".into());
    rows.push(github);
    let mut third = row("acme-tools", "ecca-acme-tools", 9000, 0.3, 41, 7);
    third.compose_service = None;
    third.image = "acme-tools:1.4".into();
    third.ports = vec![];
    third.endpoint = Some("http://172.18.0.2:9000/mcp".into());
    third.memory_limit = Some(256 * MIB);
    rows.push(third);
    let mut i = 0;
    while rows.len() < n {
        i += 1;
        let mut extra = row(
            &format!("tools-{i:02}"),
            &format!("ecca-tools-{i:02}"),
            9000 + i as u16,
            0.5,
            30,
            60,
        );
        extra.compose_service = None;
        rows.push(extra);
    }
    rows.truncate(n.max(7).min(rows.len()));
    rows
}

fn tool_stats() -> Vec<ToolCallStats> {
    let stat = |tool: &str, calls: u64, errors: u64, p50: f64, p95: f64| ToolCallStats {
        server: "code-execution".into(),
        url: "http://127.0.0.1:8102/mcp".into(),
        tool: tool.into(),
        calls,
        errors,
        p50_ms: Some(p50),
        p95_ms: Some(p95),
    };
    vec![
        stat("run_python", 214, 3, 412.0, 1_830.0),
        stat("run_node", 57, 0, 388.0, 1_204.0),
        stat("run_typescript", 126, 5, 2_611.0, 4_480.0),
        stat("lint_typescript", 126, 1, 3_790.0, 5_120.0),
        stat("run_in_repo", 18, 2, 9_870.0, 31_400.0),
    ]
}

fn load(app: &mut App, rows: Vec<ContainerRow>) {
    app.view = View::Containers;
    app.containers.watching = true;
    app.containers.snapshot = Arc::new(ContainersSnapshot {
        rows,
        sandboxes: 3,
        error: None,
        loaded: true,
    });
    // code-execution, with runs in its steps in the sample rows.
    app.containers.sel = 2;
    app.containers.logs_of = Some("compose_code-execution_1".into());
    app.containers.tools = tool_stats();
}

/// The Containers view's screenshot states; false for another view.
pub fn stage_containers(app: &mut App, view: &str) -> bool {
    match view {
        "containers" => load(app, containers(7)),
        "containers-unhealthy" => {
            let mut rows = containers(7);
            rows[3].health = Health::Unhealthy {
                reason: "the server linter at http://127.0.0.1:8104/mcp did not answer: connection refused".into(),
            };
            rows[4].state = "exited".into();
            rows[4].exit_code = Some(137);
            rows[4].cpu_percent = None;
            rows[4].memory_bytes = None;
            rows[4].started_at_ms = None;
            rows[4].endpoint = None;
            rows[4].health = Health::None;
            rows[4].restarts = 3;
            load(app, rows);
            app.containers.sel = 3;
        }
        "containers-logs" => {
            load(app, containers(7));
            app.containers.pane = Pane::Logs;
            app.containers.search = "sandbox".into();
            for (i, line) in [
                "code-execution listening on http://0.0.0.0:8102/mcp",
                "sandbox 3f2a9c: run_python started (512 MiB, 1 CPU, network none)",
                "sandbox 3f2a9c: exited 0 after 0.41 s",
                "sandbox 81d0e4: run_typescript started (768 MiB, 1 CPU, network none)",
                "sandbox 81d0e4: exited 1 after 2.61 s: 2 tests failed",
                "swept 0 leftover sandboxes",
            ]
            .iter()
            .enumerate()
            {
                app.containers
                    .logs
                    .push(format!("2026-11-22T09:{:02}:00Z {line}", 10 + i));
            }
        }
        "containers-empty" => load(app, Vec::new()),
        _ => return false,
    }
    true
}
