//! Sample data with a fixed clock: what `ecca screenshot` draws by default and what the
//! snapshot tests pin. Nothing in it depends on the time or the machine.

use super::app::{App, Header, Overlay, View};
use super::keymap::{Action, Keymap};
use super::model::{Detail, OUTPUT_CAP, RunRow, StepView, TimelineEntry};
use super::ring::LineRing;
use super::theme::Theme;
use super::views::critical_review::{self, OpenDialog};
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::engine::fsm::repo::{RepoCommands, RepoWork};
use crate::repo::{
    CheckOutcome, CheckStatus, Criterion, DiffSummary, FileChange, ResultStatus, RiskReport,
    SecretFinding,
};

/// 2026-11-21 09:00:00 UTC.
pub const NOW: i64 = 1_795_338_000_000;

#[allow(clippy::too_many_arguments)] // a table of sample rows reads best flat
pub(super) fn row(
    id: &str,
    client: &str,
    title: &str,
    status: TaskStatus,
    state: &str,
    step: &str,
    it: i64,
    q: Option<f64>,
    cost: i64,
    started_min_ago: i64,
) -> RunRow {
    let started = NOW - started_min_ago * 60_000;
    RunRow {
        task_id: id.into(),
        run_id: Some(format!("{id}/r1")),
        client_id: client.into(),
        title: title.into(),
        agent: "builtin".into(),
        compare_group: None,
        status,
        state: state.into(),
        step: step.into(),
        iteration: it,
        quality: q,
        tokens: cost / 4,
        cost,
        cost_estimated: false,
        budget: 1_000_000,
        simulated: true,
        created_at: started,
        started_at: Some(started),
        ended_at: status.is_terminal().then_some(started + 95_000),
        waiting_since: (status == TaskStatus::AwaitingApproval).then_some(started + 120_000),
        reason: None,
        result: None,
        streaming: None,
    }
}

pub fn rows() -> Vec<RunRow> {
    // Runs on clients' repositories, started after T-0007 and done within two minutes.
    let repo_row = |id: &str, client: &str, title: &str, cost: i64, secs_ago: (i64, i64)| {
        let started = NOW - secs_ago.0 * 1000;
        RunRow {
            result: Some("SUCCESS".into()),
            created_at: started,
            started_at: Some(started),
            waiting_since: Some(NOW - secs_ago.1 * 1000),
            ..row(
                id,
                client,
                title,
                TaskStatus::AwaitingApproval,
                "awaiting_approval",
                "",
                1,
                Some(8.0),
                cost,
                0,
            )
        }
    };
    vec![
        repo_row(
            "T-0009",
            "globex",
            "Stripe webhook: verify signatures",
            41_730,
            (100, 10),
        ),
        repo_row(
            "T-0008",
            "acme",
            "invoices: add --json to the report CLI",
            22_905,
            (115, 30),
        ),
        row(
            "T-0007",
            "acme",
            "Rork app 3/21: habit tracker screens",
            TaskStatus::Running,
            "coding",
            "lint",
            2,
            None,
            31_220,
            2,
        ),
        row(
            "T-0006",
            "globex",
            "Upwork #4471: CSV invoice importer",
            TaskStatus::AwaitingApproval,
            "awaiting_approval",
            "",
            1,
            Some(8.5),
            12_870,
            14,
        ),
        row(
            "T-0005",
            "acme",
            "Retainer: weekly SEO report script",
            TaskStatus::AwaitingApproval,
            "awaiting_approval",
            "",
            2,
            Some(7.0),
            18_404,
            61,
        ),
        row(
            "T-0004",
            "initech",
            "Fix flaky webhook retry",
            TaskStatus::Delivered,
            "delivered",
            "",
            1,
            Some(9.0),
            9_312,
            180,
        ),
        row(
            "T-0003",
            "acme",
            "Rork app 1/21: onboarding",
            TaskStatus::Failed,
            "failed",
            "",
            3,
            Some(5.0),
            1_000_000,
            240,
        ),
        row(
            "T-0002",
            "globex",
            "Write a Python hello world",
            TaskStatus::Paused,
            "paused",
            "",
            0,
            None,
            4_101,
            300,
        ),
        row(
            "T-0001",
            "default",
            "Try the offline model",
            TaskStatus::Cancelled,
            "cancelled",
            "",
            0,
            None,
            0,
            420,
        ),
    ]
}

pub fn detail() -> Detail {
    let mut output = LineRing::new(OUTPUT_CAP);
    for line in [
        "── plan (claude-sonnet-4-5, simulated) ──",
        "{\"stack\": \"python\", \"approach\": \"one module with a CLI entry point\",",
        " \"subtasks\": [{\"title\": \"weekly SEO report\", \"filename\": \"report.py\"}]}",
        "── write (claude-sonnet-4-5, simulated) ──",
        "```python",
        "def main() -> str:",
        "    rows = fetch_rankings(week=current_week())",
        "    return render(rows)",
        "```",
    ] {
        output.push_line(line.into());
    }
    let code = [
        "\"\"\"Weekly SEO report for Acme.\"\"\"",
        "",
        "def main() -> str:",
        "    rows = fetch_rankings(week=current_week())",
        "    return render(rows)",
    ];
    let mut diff = vec![
        "--- /dev/null".to_string(),
        "+++ b/report.py".into(),
        format!("@@ -0,0 +1,{} @@", code.len()),
    ];
    diff.extend(code.iter().map(|l| format!("+{l}")));
    let timeline = [
        "pending · queued",
        "planning · plan",
        "coding · retrieve",
        "  retrieve: 2 snippet(s)",
        "coding · write",
        "coding · lint",
        "  lint: ruff 0.17.6: 1 problem(s)",
        "testing · execute",
        "  execute: exit 0",
        "testing · test",
        "  test: exit 0",
        "evaluating · evaluate",
        "awaiting_approval · approval",
    ];
    Detail {
        task_id: "T-0005".into(),
        run_id: "T-0005/r1".into(),
        timeline: timeline
            .iter()
            .enumerate()
            .map(|(i, t)| TimelineEntry {
                at: NOW - (60 - i as i64) * 1000,
                text: (*t).into(),
            })
            .collect(),
        output,
        diff,
        lint: StepView {
            label: "ruff 0.17.6: 1 problem(s)".into(),
            lines: vec!["report.py:4:12 warning line too long (92 > 88) [E501]".into()],
        },
        tests: StepView {
            label: "exit 0".into(),
            lines: vec![
                "exit 0  412 ms".into(),
                "! Ran 3 tests in 0.004s".into(),
                "! OK".into(),
            ],
        },
        exec: StepView {
            label: "exit 0".into(),
            lines: vec![
                "exit 0  188 ms".into(),
                "│ week 47: 12 keywords up, 3 down".into(),
            ],
        },
        skipped: vec![],
        issues: vec!["report.py: no retry when the rankings API times out".into()],
        budget: 1_000_000,
        switch_percent: 70,
        client_spent: 1_203_455,
        client_cap: 2_000_000_000,
        client_month_estimated: false,
        repo: None,
        deliverable_url: None,
        reported_difference: None,
    }
}

/// The sample console, on `view`.
pub fn app(theme: Theme, keymap: Keymap, view: View) -> App {
    let header = Header {
        provider: ProviderKind::Offline,
        tools: "MCP tool servers: code-execution, linter, vector-code".into(),
        schedule: None,
    };
    let clients = vec!["acme".into(), "globex".into(), "initech".into()];
    let mut app = App::new(keymap, theme, header, rows(), clients, NOW);
    app.view = view;
    if matches!(view, View::Detail | View::Approvals) {
        app.detail.loaded = Some(detail());
        app.approvals.sel = 0;
    }
    app
}

/// The diff summary of a unified `patch` as git writes it: files, their status and counts.
pub(super) fn summary(base_commit: &str, patch: &str) -> DiffSummary {
    let mut files: Vec<FileChange> = Vec::new();
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            let path = rest.split(" b/").next().unwrap_or(rest).to_string();
            files.push(FileChange {
                path,
                status: "modified".into(),
                added: 0,
                removed: 0,
                binary: false,
            });
        } else if let Some(f) = files.last_mut() {
            if line.starts_with("new file mode") {
                f.status = "added".into();
            } else if line.starts_with('+') && !line.starts_with("+++") {
                f.added += 1;
            } else if line.starts_with('-') && !line.starts_with("---") {
                f.removed += 1;
            }
        }
    }
    DiffSummary {
        base_commit: base_commit.into(),
        files,
        patch: patch.into(),
        patch_truncated: false,
    }
}

fn check(kind: &str, command: &str, status: CheckStatus, reason: &str, ms: u64) -> CheckOutcome {
    CheckOutcome {
        kind: kind.into(),
        command: command.into(),
        status,
        reason: reason.into(),
        output: String::new(),
        duration_ms: ms,
    }
}

fn criterion(text: &str, check: Option<&str>, evidence: &str, met: bool) -> Criterion {
    Criterion {
        text: text.into(),
        check: check.map(str::to_string),
        evidence: evidence.into(),
        met,
    }
}

const JSON_PATCH: &str = r##"diff --git a/README.md b/README.md
index 3b18e51..9d2c4a7 100644
--- a/README.md
+++ b/README.md
@@ -14,2 +14,6 @@ invoices report --month 2026-10
 
 Prints one line per invoice: number, client, total, status.
+
+`invoices report --json` prints one JSON object per line instead, for scripts:
+
+    invoices report --month 2026-10 --json | jq .total
diff --git a/src/invoices/cli.py b/src/invoices/cli.py
index 5e0a1f2..c41b7d9 100644
--- a/src/invoices/cli.py
+++ b/src/invoices/cli.py
@@ -1,4 +1,5 @@
 import argparse
+import json
 import sys
 
 from invoices.report import rows_for_month, format_row
@@ -12,8 +13,12 @@ def main(argv=None):
     report = sub.add_parser("report", help="list a month's invoices")
     report.add_argument("--month", required=True, help="YYYY-MM")
+    report.add_argument("--json", action="store_true", help="one JSON object per line")
     args = parser.parse_args(argv)
 
     rows = rows_for_month(args.month)
     for row in rows:
-        print(format_row(row))
+        if args.json:
+            print(json.dumps(row.as_dict(), sort_keys=True))
+        else:
+            print(format_row(row))
     return 0
diff --git a/src/invoices/report.py b/src/invoices/report.py
index 77a0c3e..0b5e9f1 100644
--- a/src/invoices/report.py
+++ b/src/invoices/report.py
@@ -20,5 +20,14 @@ class Row:
     total_cents: int
     status: str
 
+    def as_dict(self) -> dict:
+        return {
+            "number": self.number,
+            "client": self.client,
+            "total": self.total_cents / 100,
+            "status": self.status,
+        }
+
+
 def format_row(row: Row) -> str:
-    return f"{row.number}  {row.client}  {row.total_cents}  {row.status}"
+    return f"{row.number}  {row.client}  {row.total_cents / 100:.2f}  {row.status}"
diff --git a/tests/test_cli_json.py b/tests/test_cli_json.py
new file mode 100644
index 0000000..e7a2b44
--- /dev/null
+++ b/tests/test_cli_json.py
@@ -0,0 +1,18 @@
+import io
+import json
+import unittest
+from contextlib import redirect_stdout
+
+from invoices.cli import main
+
+
+class JsonOutput(unittest.TestCase):
+    def test_one_object_per_line(self):
+        out = io.StringIO()
+        with redirect_stdout(out):
+            self.assertEqual(main(["report", "--month", "2026-10", "--json"]), 0)
+        lines = out.getvalue().splitlines()
+        self.assertEqual(len(lines), 3)
+        first = json.loads(lines[0])
+        self.assertEqual(sorted(first), ["client", "number", "status", "total"])
+        self.assertIsInstance(first["total"], float)
"##;

const WEBHOOK_PATCH: &str = r##"diff --git a/config/settings.py b/config/settings.py
index 1a2b3c4..5d6e7f8 100644
--- a/config/settings.py
+++ b/config/settings.py
@@ -8,2 +8,4 @@ DATABASE_URL = os.environ["DATABASE_URL"]
 SLACK_CHANNEL = "#sales"
 RETRY_LIMIT = 3
+# Signing secret of the Stripe endpoint (Dashboard → Webhooks).
+STRIPE_WEBHOOK_SECRET = "whsec_0d1e2f3a4b5c6d7e8f9a0b1c2d3e9f2c"
diff --git a/src/auth/tokens.py b/src/auth/tokens.py
index 9c8b7a6..3e4f5a6 100644
--- a/src/auth/tokens.py
+++ b/src/auth/tokens.py
@@ -1,7 +1,15 @@
 import hashlib
 import hmac
+import time
 
 
-def verify(payload: bytes, signature: str, secret: str) -> bool:
-    expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
-    return expected == signature
+def verify(payload: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
+    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
+    timestamp, signature = parts.get("t"), parts.get("v1")
+    if not timestamp or not signature:
+        return False
+    if abs(time.time() - int(timestamp)) > tolerance:
+        return False
+    signed = f"{timestamp}.".encode() + payload
+    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
+    return hmac.compare_digest(expected, signature)
diff --git a/src/payments/webhook.py b/src/payments/webhook.py
index 4f3e2d1..8a9b0c1 100644
--- a/src/payments/webhook.py
+++ b/src/payments/webhook.py
@@ -1,13 +1,18 @@
 import json
 
-from config.settings import SLACK_CHANNEL
+from auth.tokens import verify
+from config.settings import SLACK_CHANNEL, STRIPE_WEBHOOK_SECRET
 from payments.slack import post
 
 
 def handle(request):
-    event = json.loads(request.body)
+    header = request.headers.get("Stripe-Signature", "")
+    if not verify(request.body, header, STRIPE_WEBHOOK_SECRET):
+        return 400, "bad signature"
+    event = json.loads(request.body)
     if event["type"] != "invoice.paid":
         return 200, "ignored"
     invoice = event["data"]["object"]
-    post(SLACK_CHANNEL, f"paid: {invoice['number']}")
+    total = invoice["amount_paid"] / 100
+    post(SLACK_CHANNEL, f"paid: {invoice['number']} ({total:.2f} {invoice['currency']})")
     return 200, "ok"
diff --git a/tests/test_webhook_signature.py b/tests/test_webhook_signature.py
new file mode 100644
index 0000000..b1c2d3e
--- /dev/null
+++ b/tests/test_webhook_signature.py
@@ -0,0 +1,22 @@
+import hashlib
+import hmac
+import time
+import unittest
+
+from auth.tokens import verify
+
+SECRET = "test-secret"
+
+
+def header_for(payload: bytes, at: int) -> str:
+    mac = hmac.new(SECRET.encode(), f"{at}.".encode() + payload, hashlib.sha256)
+    return f"t={at},v1={mac.hexdigest()}"
+
+
+class Signature(unittest.TestCase):
+    def test_a_signed_payload_passes(self):
+        now = int(time.time())
+        self.assertTrue(verify(b"{}", header_for(b"{}", now), SECRET))
+
+    def test_an_old_signature_fails(self):
+        self.assertFalse(verify(b"{}", header_for(b"{}", 0), SECRET))
"##;

/// A run on acme's repository awaiting approval: a new flag with its test, moderate risk.
pub fn repo_work() -> RepoWork {
    let test = "python3 -m unittest discover -q";
    RepoWork {
        worktree: "T-0008-r1".into(),
        branch: "agt/T-0008".into(),
        base_branch: "main".into(),
        base_commit: "4e1c9a7d20b35f6e8a1c0d2b7f9e3a5c6d8b0e12".into(),
        commands: RepoCommands {
            setup: Some("pip install -e .".into()),
            lint: Some("ruff check .".into()),
            test: Some(test.into()),
            source: "pyproject.toml".into(),
        },
        smoke: Some(check("test", test, CheckStatus::Passed, "", 1_840)),
        checks: vec![
            check("lint", "ruff check .", CheckStatus::Passed, "", 310),
            check("test", test, CheckStatus::Passed, "", 2_115),
        ],
        criteria: vec![
            criterion(
                "`invoices report --json` prints one JSON object per invoice",
                Some("python3 -m unittest tests.test_cli_json"),
                "passed: python3 -m unittest tests.test_cli_json",
                true,
            ),
            criterion(
                "The text output keeps its columns",
                Some("python3 -m unittest tests.test_cli"),
                "passed: python3 -m unittest tests.test_cli",
                true,
            ),
            criterion(
                "The README documents the flag",
                Some("grep -q -- '--json' README.md"),
                "passed: grep -q -- '--json' README.md",
                true,
            ),
        ],
        files: Vec::new(),
        diff: Some(summary(
            "4e1c9a7d20b35f6e8a1c0d2b7f9e3a5c6d8b0e12",
            JSON_PATCH,
        )),
        risk: Some(RiskReport {
            score: 45,
            reasons: vec![
                "changes a public CLI entry point: src/invoices/cli.py (+20)".into(),
                "changes shared output code: src/invoices/report.py (+15)".into(),
                "4 files, 40 lines changed (+10)".into(),
            ],
            secrets: Vec::new(),
        }),
        result: Some(ResultStatus::Success),
        ..RepoWork::default()
    }
}

/// A run on globex's repository touching auth and payments, with a secret in the diff.
pub fn risky_repo_work() -> RepoWork {
    let test = "python3 -m unittest discover -q";
    RepoWork {
        worktree: "T-0009-r1".into(),
        branch: "agt/T-0009".into(),
        base_branch: "main".into(),
        base_commit: "b7d2e9f04c1a3e5d7f9b2c4e6a8d0f1b3c5e7a90".into(),
        commands: RepoCommands {
            setup: Some("pip install -r requirements.txt".into()),
            lint: None,
            test: Some(test.into()),
            source: "requirements.txt, tests/".into(),
        },
        smoke: Some(check("test", test, CheckStatus::Passed, "", 2_406)),
        checks: vec![
            check(
                "setup",
                "pip install -r requirements.txt",
                CheckStatus::Skipped,
                "the sandbox has no network, and requirements.txt pins packages not in the image",
                0,
            ),
            check("test", test, CheckStatus::Passed, "", 2_731),
        ],
        criteria: vec![
            criterion(
                "Requests without a valid Stripe signature get 400",
                Some("python3 -m unittest tests.test_webhook_signature"),
                "passed: python3 -m unittest tests.test_webhook_signature",
                true,
            ),
            criterion(
                "Paid invoices still reach #sales",
                Some("python3 -m unittest tests.test_webhook"),
                "passed: python3 -m unittest tests.test_webhook",
                true,
            ),
        ],
        files: Vec::new(),
        diff: Some(summary(
            "b7d2e9f04c1a3e5d7f9b2c4e6a8d0f1b3c5e7a90",
            WEBHOOK_PATCH,
        )),
        risk: Some(RiskReport {
            score: 82,
            reasons: vec![
                "touches auth: src/auth/tokens.py (+25)".into(),
                "touches payments: src/payments/webhook.py (+25)".into(),
                "changes configuration: config/settings.py (+12)".into(),
                "a secret in the added lines (+20)".into(),
            ],
            secrets: vec![SecretFinding {
                path: "config/settings.py".into(),
                line: 11,
                kind: "stripe webhook secret".into(),
                masked: "****9f2c".into(),
            }],
        }),
        result: Some(ResultStatus::Success),
        ..RepoWork::default()
    }
}

/// The Run detail of a repository run (`T-0008` or `T-0009`), its diff from its patch.
pub fn repo_detail(task_id: &str) -> Detail {
    let repo = if task_id == "T-0009" {
        risky_repo_work()
    } else {
        repo_work()
    };
    let timeline = [
        "pending · queued",
        "preparing · worktree",
        "  worktree: agt/{T} from main",
        "  smoke: test passed",
        "planning · plan",
        "coding · write",
        "  apply_diff: applied",
        "testing · checks",
        "  checks: lint, test",
        "evaluating · criteria",
        "evaluating · risk",
        "awaiting_approval · approval",
    ];
    let mut output = LineRing::new(OUTPUT_CAP);
    output.push_line("── plan (claude-sonnet-4-5, simulated) ──".into());
    output.push_line("{\"files\": [\"src/invoices/cli.py\", \"tests/test_cli_json.py\"]}".into());
    let mut d = detail();
    d.task_id = task_id.into();
    d.run_id = format!("{task_id}/r1");
    d.timeline = timeline
        .iter()
        .enumerate()
        .map(|(i, t)| TimelineEntry {
            at: NOW - (90 - i as i64 * 5) * 1000,
            text: t.replace("{T}", task_id),
        })
        .collect();
    d.output = output;
    d.diff = repo
        .diff
        .as_ref()
        .map(|x| x.patch.lines().map(str::to_string).collect())
        .unwrap_or_default();
    d.lint = StepView::default();
    d.tests = StepView::default();
    d.exec = StepView::default();
    d.issues = Vec::new();
    d.repo = Some(repo);
    d
}

/// Puts `app` on a repository view `ecca screenshot` names; false for any other name.
pub fn stage_repo(app: &mut App, view: &str) -> bool {
    let task_id = match view {
        "approvals-repo" | "detail-repo" => "T-0008",
        "critical-review" | "secret-override" => "T-0009",
        _ => return false,
    };
    app.detail.loaded = Some(repo_detail(task_id));
    app.approvals.sel = app
        .waiting()
        .iter()
        .position(|r| r.task_id == task_id)
        .unwrap_or(0);
    if view == "detail-repo" {
        app.view = View::Detail;
        app.detail.pane = 0;
        app.detail.scroll = 0;
        return true;
    }
    app.view = View::Approvals;
    let dialog = match view {
        "critical-review" => OpenDialog::Review {
            task_id: task_id.into(),
        },
        "secret-override" => OpenDialog::SecretOverride {
            task_id: task_id.into(),
            critical_reviewed: true,
        },
        _ => return true,
    };
    let mut overlay = critical_review::open(dialog, app.detail.loaded.as_ref());
    if let Overlay::Review(review) = &mut overlay {
        // Paged once: the middle of the diff, its end not reached yet.
        review.act(Action::PageDown);
    }
    app.overlay = Some(overlay);
    true
}
