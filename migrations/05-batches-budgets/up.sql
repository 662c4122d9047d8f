-- Batches launched from a manifest, budgets changed by the operator, and revenue.

-- A batch: the manifest as launched, its own concurrency inside the global limit, an
-- optional cap for the whole batch, and the forecast made before launch (JSON) so the
-- forecast and the actual can be shown side by side afterwards.
-- status: running | finished | cancelled
ALTER TABLE batches ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 4;
ALTER TABLE batches ADD COLUMN budget_micros INTEGER;
ALTER TABLE batches ADD COLUMN forecast TEXT;
ALTER TABLE batches ADD COLUMN finished_at INTEGER;

-- A task of a batch names its batch and its app's name in the manifest.
ALTER TABLE code_tasks ADD COLUMN batch_id TEXT REFERENCES batches(id);
ALTER TABLE code_tasks ADD COLUMN batch_app TEXT;
CREATE INDEX code_tasks_batch ON code_tasks(batch_id);

-- Revenue: a task may carry its price (a fixed-price job), a client a monthly retainer.
ALTER TABLE code_tasks ADD COLUMN price_micros INTEGER;
ALTER TABLE clients ADD COLUMN retainer_micros INTEGER;

-- Every change of a client's monthly cap or a task's budget, with who-knows-why: the
-- operator's note. kind: client_cap | task_budget
CREATE TABLE budget_changes (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients(id),
    task_id    TEXT REFERENCES code_tasks(id),
    kind       TEXT NOT NULL,
    old_micros INTEGER NOT NULL,
    new_micros INTEGER NOT NULL,
    note       TEXT NOT NULL
);
CREATE INDEX budget_changes_client ON budget_changes(client_id, at);
