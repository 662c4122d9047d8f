-- Work that arrived from outside (an Upwork webhook's job), one row per job: the job id is
-- the delivery's idempotency key, written in the same transaction as the task it created.
CREATE TABLE intake_jobs (
    source      TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL REFERENCES code_tasks(id),
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, job_id)
);
