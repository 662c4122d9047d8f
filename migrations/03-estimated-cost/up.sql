-- A call whose provider reported no usage is still charged, at an estimate; the row says so,
-- and so do the task and the run it belongs to, so every place that shows their cost can
-- mark it as estimated.
ALTER TABLE cost_log ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE code_tasks ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER cost_log_marks_estimated AFTER INSERT ON cost_log WHEN NEW.estimated = 1
BEGIN
    UPDATE code_tasks SET cost_estimated = 1 WHERE id = NEW.task_id;
    UPDATE runs SET cost_estimated = 1 WHERE id = NEW.run_id;
END;
