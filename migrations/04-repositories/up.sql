-- Work on clients' repositories: each run in its own worktree on branch agt/<task>, its
-- result status, the task's base branch and acceptance criteria, and an audit row for
-- every tool call, file write, command and git operation a run makes.
ALTER TABLE code_tasks ADD COLUMN base_branch TEXT;
ALTER TABLE code_tasks ADD COLUMN acceptance TEXT NOT NULL DEFAULT '[]';   -- JSON array of strings
ALTER TABLE code_tasks ADD COLUMN result_status TEXT;                      -- SUCCESS | SOFT_FAIL | HARD_FAIL
ALTER TABLE runs ADD COLUMN worktree TEXT;      -- directory name under worktrees/ while it exists
ALTER TABLE runs ADD COLUMN branch TEXT;
ALTER TABLE runs ADD COLUMN base_commit TEXT;
ALTER TABLE runs ADD COLUMN result_status TEXT;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES code_tasks(id),
    run_id      TEXT NOT NULL REFERENCES runs(id),
    at          INTEGER NOT NULL,
    tool        TEXT NOT NULL,
    args_digest TEXT NOT NULL,                  -- SHA-256 prefix of the arguments, never the arguments
    outcome     TEXT NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX audit_task ON audit(task_id, id);
