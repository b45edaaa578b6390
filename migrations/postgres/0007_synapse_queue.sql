-- Beside Synapse: the work homekey owes Synapse, and what homekey has made exist there
-- (src/store/synapse_queue.rs). Empty and unused without a `synapse:` section.

-- One row a user whose users and devices in Synapse are to be brought in line with homekey's.
-- A change writes it in its own transaction; delivery computes what to send from the state at
-- the time it delivers, and removes the row only if no change came in the meantime.
CREATE TABLE homekey_synapse_owed (
    user_id TEXT NOT NULL PRIMARY KEY,
    -- Counts the changes that owed this work: the row is removed only at the count it was read.
    changes BIGINT NOT NULL,
    owed_since_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    -- The last failure, without any secret; NULL before the first.
    last_error TEXT,
    -- Synapse refused in a way retrying alone will not mend (403: the secrets differ; 404: it
    -- does not know the user): an operator should look (`homekey synapse status`).
    alarm BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX homekey_synapse_owed_due ON homekey_synapse_owed (next_attempt_ms);

-- Who is delivering for a user: one deliverer at a time, across processes and instances.
CREATE TABLE homekey_synapse_leases (
    user_id TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);

-- What Synapse has, as homekey made it so: what a delivery compares homekey's state with.
-- `locked` NULL: not known (the user was found in Synapse, not made by homekey).
CREATE TABLE homekey_synapse_users (
    user_id TEXT NOT NULL PRIMARY KEY,
    deactivated BOOLEAN NOT NULL,
    locked BOOLEAN
);
CREATE TABLE homekey_synapse_devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
