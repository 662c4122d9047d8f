-- ecca store, schema 1. Money is integer micro-dollars, times are unix milliseconds (UTC).

CREATE TABLE clients (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    monthly_budget_micros INTEGER NOT NULL CHECK (monthly_budget_micros >= 0),
    repo_url           TEXT,
    created_at         INTEGER NOT NULL
);

-- Month-to-date spend per client. Changed only in the transaction that writes the cost row.
CREATE TABLE client_month_spend (
    client_id    TEXT NOT NULL REFERENCES clients(id),
    month        TEXT NOT NULL,              -- 'YYYY-MM', UTC
    spent_micros INTEGER NOT NULL DEFAULT 0,
    calls        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, month)
);

CREATE TABLE client_mcp_configs (
    id                     INTEGER PRIMARY KEY,
    client_id              TEXT NOT NULL UNIQUE REFERENCES clients(id),
    github_token_encrypted BLOB,             -- AES-256-GCM, nonce || ciphertext, row id as AAD
    repo_url               TEXT,
    mcp_server_port        INTEGER,
    active                 INTEGER NOT NULL DEFAULT 1,
    created_at             INTEGER NOT NULL
);

CREATE TABLE code_tasks (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES clients(id),
    title            TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    stack            TEXT NOT NULL,
    source           TEXT NOT NULL DEFAULT 'manual',
    agent_kind       TEXT NOT NULL DEFAULT 'builtin',
    model_mode       TEXT NOT NULL,           -- 'offline' | 'anthropic' | 'openai'
    status           TEXT NOT NULL DEFAULT 'pending',
    status_reason    TEXT,
    budget_micros    INTEGER NOT NULL CHECK (budget_micros >= 0),
    deliverable_url  TEXT,
    iterations       INTEGER NOT NULL DEFAULT 0,
    quality_score    REAL,
    tokens_used      INTEGER NOT NULL DEFAULT 0,
    cost_micros      INTEGER NOT NULL DEFAULT 0,
    model_calls      INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    completed_at     INTEGER
);
CREATE INDEX code_tasks_client ON code_tasks(client_id);
CREATE INDEX code_tasks_status ON code_tasks(status);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES code_tasks(id),
    attempt      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    agent_state  TEXT NOT NULL,
    fsm_state    TEXT NOT NULL,               -- JSON checkpoint of the agent state machine
    tokens_used  INTEGER NOT NULL DEFAULT 0,
    cost_micros  INTEGER NOT NULL DEFAULT 0,
    model_calls  INTEGER NOT NULL DEFAULT 0,
    owner_pid    INTEGER,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX runs_task ON runs(task_id);
CREATE INDEX runs_status ON runs(status);

CREATE TABLE run_events (
    id        INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL REFERENCES runs(id),
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL                   -- JSON
);
CREATE INDEX run_events_run ON run_events(run_id, id);

CREATE TABLE artifacts (
    id        INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL REFERENCES runs(id),
    kind      TEXT NOT NULL,                  -- 'file' | 'diff' | 'lint' | 'test' | 'exec' | 'bundle'
    name      TEXT NOT NULL,
    content   TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX artifacts_run ON artifacts(run_id);

CREATE TABLE cost_log (
    id                 INTEGER PRIMARY KEY,
    at                 INTEGER NOT NULL,
    month              TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients(id),
    task_id            TEXT NOT NULL REFERENCES code_tasks(id),
    run_id             TEXT NOT NULL REFERENCES runs(id),
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    purpose            TEXT NOT NULL,
    simulated          INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    reserved_micros    INTEGER NOT NULL,
    outcome            TEXT NOT NULL           -- 'ok' | 'cut' | 'error'
);
CREATE INDEX cost_log_client_month ON cost_log(client_id, month);
CREATE INDEX cost_log_task ON cost_log(task_id);

CREATE TABLE approvals (
    id        INTEGER PRIMARY KEY,
    task_id   TEXT NOT NULL REFERENCES code_tasks(id),
    run_id    TEXT NOT NULL REFERENCES runs(id),
    decision  TEXT NOT NULL CHECK (decision IN ('approve', 'revise', 'reject')),
    note      TEXT NOT NULL DEFAULT '',
    at        INTEGER NOT NULL
);
CREATE INDEX approvals_task ON approvals(task_id);

CREATE TABLE snippets (
    id         INTEGER PRIMARY KEY,
    client_id  TEXT NOT NULL,
    language   TEXT NOT NULL,
    description TEXT NOT NULL,
    code       TEXT NOT NULL,
    embedding  BLOB,
    quality    REAL,
    created_at INTEGER NOT NULL
);
CREATE INDEX snippets_client ON snippets(client_id);

CREATE TABLE batches (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(id),
    name       TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE schedule_state (
    name        TEXT PRIMARY KEY,
    last_run_at INTEGER,
    next_run_at INTEGER
);
