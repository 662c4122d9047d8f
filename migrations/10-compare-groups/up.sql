-- Sibling tasks of one spec run by different agent kinds, for a side-by-side choice: every
-- task of a comparison holds the id of its first task; approving one rejects the others.
ALTER TABLE code_tasks ADD COLUMN compare_group TEXT;
CREATE INDEX code_tasks_compare ON code_tasks(compare_group) WHERE compare_group IS NOT NULL;
