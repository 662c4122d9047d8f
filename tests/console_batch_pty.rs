//! A batch launched from the console, as an operator does it: the real binary in a
//! pseudo-terminal, the Batch view's path field completed with Tab, the forecast read, the
//! launch confirmed, the scoreboard followed until every app waits for approval; then the
//! Clients view shows the month the batch spent, and `ecca batch status` agrees.

mod common;

use common::ecca_command;
use common::pty::start_console;
use serde_json::Value;

const APPS: [&str; 4] = [
    "tip-splitter",
    "unit-converter",
    "word-counter",
    "dice-roller",
];

#[test]
fn a_batch_is_forecast_launched_and_followed_in_the_console() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let out = ecca_command(dir)
        .args([
            "clients",
            "add",
            "acme",
            "--name",
            "Acme",
            "--budget-usd",
            "50",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apps: String = APPS
        .iter()
        .map(|n| {
            format!(
                "[[apps]]\nname = \"{n}\"\ndescription = \"A small {n} helper with one function.\"\nstack = \"python\"\n\n"
            )
        })
        .collect();
    let manifest = dir.join("four-helpers.toml");
    std::fs::write(
        &manifest,
        format!("[batch]\nname = \"Four helpers\"\nclient = \"acme\"\nconcurrency = 2\n\n{apps}"),
    )
    .unwrap();

    let dir_str = dir.to_str().unwrap();
    let mut console = start_console(&["--data-dir", dir_str], &[], 160, 48);
    let screen = &mut console.screen;
    screen.wait_for("No runs yet. Press n to launch a task.", 60);
    screen.keys(b"4");
    screen.wait_for("Batch · open a manifest", 60);
    screen.keys(format!("{dir_str}/four").as_bytes());
    screen.keys(b"\t");
    screen.wait_for("four-helpers.toml", 60);
    screen.keys(b"\r");
    let forecast = screen.wait_for("no history: estimate from the price table only", 60);
    for app in APPS {
        assert!(forecast.contains(app), "{app} in the forecast:\n{forecast}");
    }
    screen.keys(b"L");
    screen.wait_for("Launch the batch?", 60);
    screen.keys(b"y");
    screen.wait_for("Batch B-0001 · Four helpers", 60);
    let board = screen.wait_until(
        "every app at the approval gate",
        300,
        |text| {
            text.lines()
                .find(|l| l.contains("apps:") && !l.contains("0 failed"))
                .map(|l| format!("an app failed: {}", l.trim()))
        },
        |text| text.contains("4 apps:") && text.contains("4 awaiting approval"),
    );
    assert!(board.contains("vs forecast"), "{board}");
    for app in APPS {
        assert!(board.contains(app), "{app} on the scoreboard:\n{board}");
    }

    // The month the batch spent, on the Clients view.
    screen.keys(b"3");
    let clients = screen.wait_for("acme · Acme", 60);
    assert!(
        clients.contains("Helper") || clients.contains("helper"),
        "{clients}"
    );
    screen.keys(b"q");
    let status = console.wait_exit(60);
    assert!(status.success(), "the console exits cleanly");

    let out = ecca_command(dir)
        .args(["batch", "status", "B-0001", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["apps"].as_array().map(Vec::len), Some(4), "{doc}");
    assert!(doc["forecast"].is_object(), "the forecast is stored: {doc}");
}
