-- Beside Synapse, each `homekey serve` under a name that outlives its restarts (its host and
-- the addresses it listens on), with the process serving under it now and when that process
-- last said it was alive (every 2 s). A delivery lease whose process is no longer its
-- instance's (the instance restarted) or has been silent for 8 s (it died) can be taken at
-- once, instead of blocking its user until it expires (src/accounts/beside_synapse.rs).
CREATE TABLE homekey_synapse_instances (
    instance TEXT NOT NULL PRIMARY KEY,
    process TEXT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

-- The `serve` process holding a lease; NULL for a command's (`homekey user …`), which only
-- expires.
ALTER TABLE homekey_synapse_leases ADD COLUMN process TEXT;
