-- Pipelines: stages, each a job, chained by their outputs (see mr-exec's pipeline module).
CREATE TABLE pipelines (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    output      text NOT NULL UNIQUE,
    definition  text NOT NULL,
    phase       text NOT NULL DEFAULT 'running' CHECK (phase IN ('running', 'done', 'failed')),
    error       text,
    created_ms  bigint NOT NULL,
    updated_ms  bigint NOT NULL,
    finished_ms bigint
);

CREATE TABLE stages (
    pipeline    bigint NOT NULL,
    name        text NOT NULL,
    state       text NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'running', 'done', 'reused', 'failed')),
    fingerprint text,
    job         bigint,
    claims      bigint NOT NULL DEFAULT 0 CHECK (claims BETWEEN 0 AND 4294967295),
    owner       text,
    expires_at  bigint,
    reason      text,
    detail      text,
    updated_ms  bigint NOT NULL,
    PRIMARY KEY (pipeline, name)
);
