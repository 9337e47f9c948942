-- Straggler splitting: a running map task can hand the unread rest of its shard to a new
-- task. `origin` is the planned shard a task reads (part of), `position` where in it the
-- task starts (sorts in input order; empty for the planned task), `bounds` the executor's
-- encoding of what the task reads when that is not its planned shard, `split_wanted` a
-- request from an idle worker that the task's owner answers at its next slice commit.
ALTER TABLE tasks ADD COLUMN origin bigint CHECK (origin BETWEEN 0 AND 4294967295);
ALTER TABLE tasks ADD COLUMN position text NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN bounds text;
ALTER TABLE tasks ADD COLUMN split_wanted boolean NOT NULL DEFAULT false;
UPDATE tasks SET origin = idx;
ALTER TABLE tasks ALTER COLUMN origin SET NOT NULL;
