-- The daily loop's slots, one row per slot claimed (its scheduled instant, UTC ms): a slot
-- is claimed before its work starts, so it never runs twice, also across restarts.
-- `started` is how many pending tasks it started; `note` says what it did (a catch-up).
CREATE TABLE schedule_slots (
    slot_at      INTEGER PRIMARY KEY,
    processed_at INTEGER NOT NULL,
    started      INTEGER NOT NULL DEFAULT 0,
    note         TEXT NOT NULL DEFAULT ''
);
