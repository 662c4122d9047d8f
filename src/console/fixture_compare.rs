//! Sample data of a comparison for `ecca screenshot approvals-compare`: acme's task T-0008
//! by the built-in loop beside T-0010, the same spec by Claude Code, whose own cost figure
//! is a micro-dollar under ecca's prices.

use super::app::{App, View};
use super::fixture::{NOW, repo_detail, repo_work, summary};
use crate::repo::ResultStatus;

/// Claude Code's side: the flag in the CLI and a test, nothing in the README.
const CLAUDE_PATCH: &str = r##"diff --git a/src/invoices/cli.py b/src/invoices/cli.py
index 61a0b2c..b7d41e9 100644
--- a/src/invoices/cli.py
+++ b/src/invoices/cli.py
@@ -1,4 +1,5 @@
 import argparse
+import json
 
 from invoices.report import rows
 
@@ -9,4 +10,9 @@ def main(argv=None):
     parser.add_argument("--month", required=True)
+    parser.add_argument("--json", action="store_true", help="one JSON object per invoice")
     args = parser.parse_args(argv)
-    for row in rows(args.month):
-        print(row.line())
+    for row in rows(args.month):
+        if args.json:
+            print(json.dumps(row.as_dict()))
+        else:
+            print(row.line())
diff --git a/tests/test_cli_json.py b/tests/test_cli_json.py
new file mode 100644
index 0000000..4c2e8f1
--- /dev/null
+++ b/tests/test_cli_json.py
@@ -0,0 +1,9 @@
+import json
+import unittest
+
+from invoices.cli import main
+
+
+class JsonOutput(unittest.TestCase):
+    def test_one_object_per_line(self):
+        self.assertIsNone(main(["--month", "2026-10", "--json"]))
"##;

/// Puts `app` on the comparison; false for any other view name.
pub fn stage_compare(app: &mut App, view: &str) -> bool {
    if view != "approvals-compare" {
        return false;
    }
    let Some(builtin) = app.rows.iter_mut().find(|r| r.task_id == "T-0008") else {
        return false;
    };
    builtin.compare_group = Some("T-0008".into());
    let mut claude = builtin.clone();
    claude.task_id = "T-0010".into();
    claude.run_id = Some("T-0010/r1".into());
    claude.agent = "claude-code".into();
    claude.quality = Some(7.5);
    claude.result = Some("SOFT_FAIL".into());
    claude.cost = 27_767;
    claude.tokens = 12_804;
    claude.waiting_since = Some(NOW - 12_000);
    app.rows.push(claude);

    app.detail.loaded = Some(repo_detail("T-0008"));
    let mut side = repo_detail("T-0010");
    let mut repo = repo_work();
    repo.worktree = "T-0010-r1".into();
    repo.branch = "agt/T-0010".into();
    repo.diff = Some(summary(&repo.base_commit, CLAUDE_PATCH));
    if let Some(risk) = &mut repo.risk {
        risk.score = 35;
        risk.reasons.remove(1);
    }
    repo.result = Some(ResultStatus::SoftFail);
    if let Some(c) = repo.criteria.last_mut() {
        c.met = false;
        c.evidence = "failed: grep -q -- '--json' README.md (exit 1)".into();
    }
    side.diff = CLAUDE_PATCH.lines().map(str::to_string).collect();
    side.repo = Some(repo);
    side.reported_difference = Some(-1);
    app.approvals.sibling = Some(side);
    app.approvals.sel = app
        .waiting()
        .iter()
        .position(|r| r.task_id == "T-0008")
        .unwrap_or(0);
    app.view = View::Approvals;
    true
}
