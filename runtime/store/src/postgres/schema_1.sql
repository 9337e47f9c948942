-- The PostgreSQL job store, schema version 1: the same tables as the SQLite store (at its
-- version 2), with the types PostgreSQL wants. Applied by src/postgres/migrate.rs in one
-- transaction together with its row in schema_version. Never edit this file once a released
-- mr-host has applied it: add schema_2.sql.
--
-- Every number the Rust side holds as a u32 (task index, attempt, slice, part...) is a bigint
-- checked to fit one: a part number of 2^32 - 1 marks a bad-records file, past `integer`.
-- Times are ms since the epoch by the database's clock. Enums are stored by their names.

CREATE TABLE schema_version (
    version     integer PRIMARY KEY,
    applied_ms  bigint NOT NULL
);

CREATE TABLE jobs (
    -- An identity is never reused: a deleted job's id stays dead.
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    fingerprint text NOT NULL UNIQUE,
    output      text NOT NULL,
    spec        text NOT NULL,
    phase       text NOT NULL DEFAULT 'map'
                CHECK (phase IN ('map', 'reduce', 'finalize', 'done', 'failed', 'cancelled')),
    error       text,
    created_ms  bigint NOT NULL,
    finished_ms bigint
);

CREATE TABLE tasks (
    job         bigint NOT NULL REFERENCES jobs (id),
    kind        text NOT NULL CHECK (kind IN ('map', 'reduce', 'finalize')),
    idx         bigint NOT NULL CHECK (idx BETWEEN 0 AND 4294967295),
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    owner       text,
    attempt     bigint NOT NULL DEFAULT 0 CHECK (attempt BETWEEN 0 AND 4294967295),
    failures    bigint NOT NULL DEFAULT 0 CHECK (failures BETWEEN 0 AND 4294967295),
    not_before  bigint NOT NULL DEFAULT 0,
    expires_at  bigint,
    cursor      text NOT NULL DEFAULT '',
    slices      bigint NOT NULL DEFAULT 0 CHECK (slices BETWEEN 0 AND 4294967295),
    PRIMARY KEY (job, kind, idx)
);

-- One row per committed slice. Its key is what makes a replayed commit harmless: slice N of a
-- task can be inserted once, whichever attempt tries again.
CREATE TABLE slices (
    job          bigint NOT NULL,
    kind         text NOT NULL,
    idx          bigint NOT NULL,
    slice        bigint NOT NULL CHECK (slice BETWEEN 0 AND 4294967295),
    attempt      bigint NOT NULL,
    cursor       text NOT NULL,
    counters     text NOT NULL,
    committed_ms bigint NOT NULL,
    PRIMARY KEY (job, kind, idx, slice)
);

CREATE TABLE outputs (
    job         bigint NOT NULL,
    kind        text NOT NULL,
    idx         bigint NOT NULL,
    slice       bigint NOT NULL,
    part        bigint NOT NULL CHECK (part BETWEEN 0 AND 4294967295),
    path        text NOT NULL,
    bytes       bigint NOT NULL,
    records     bigint NOT NULL,
    checksum    text NOT NULL,
    PRIMARY KEY (job, kind, idx, slice, path)
);

CREATE TABLE counters (
    job         bigint NOT NULL,
    kind        text NOT NULL,
    idx         bigint NOT NULL,
    name        text NOT NULL,
    value       bigint NOT NULL,
    PRIMARY KEY (job, kind, idx, name)
);

CREATE TABLE attempts (
    job         bigint NOT NULL,
    kind        text NOT NULL,
    idx         bigint NOT NULL,
    attempt     bigint NOT NULL,
    owner       text NOT NULL,
    started_ms  bigint NOT NULL,
    ended_ms    bigint,
    outcome     text CHECK (outcome IN ('done', 'failed', 'abandoned', 'refused')),
    failure     text,
    error       text,
    -- The failure without its attempt number: two attempts failing alike fail deterministically.
    signature   text,
    PRIMARY KEY (job, kind, idx, attempt)
);

-- The lifecycle log. Ids of one job's events are handed out in commit order (every insert
-- first takes the job's event lock, held to COMMIT), so `events(after = N)` never skips an event
-- that commits late.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         bigint NOT NULL,
    at_ms       bigint NOT NULL,
    event       text NOT NULL,
    kind        text,
    idx         bigint,
    slice       bigint,
    attempt     bigint,
    owner       text,
    detail      text
);
CREATE INDEX events_by_job ON events (job, id);

-- One row per committed write transaction, for a short while: its token, chosen at random by
-- the client and inserted just before COMMIT. A client whose COMMIT reply was lost looks for it
-- (once the old connection's backend is gone) to learn whether the transaction committed.
-- Rows older than an hour are deleted as the store is used.
CREATE TABLE write_log (
    token       bigint PRIMARY KEY,
    at_ms       bigint NOT NULL
);

-- Completion hooks (--notify, --on-done): delivered once per job, claimed like a task.
CREATE TABLE hooks (
    job         bigint NOT NULL,
    name        text NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempt     bigint NOT NULL DEFAULT 0 CHECK (attempt BETWEEN 0 AND 4294967295),
    owner       text,
    expires_at  bigint,
    not_before  bigint NOT NULL DEFAULT 0,
    detail      text,
    updated_ms  bigint NOT NULL,
    PRIMARY KEY (job, name)
);

-- Job components by content, for workers on hosts that do not have the file.
CREATE TABLE components (
    sha256      text PRIMARY KEY,
    bytes       bytea NOT NULL
);
