-- `homekey migrate-from-synapse`: the accounts carried from an existing Synapse's database
-- (src/store/synapse_migration.rs). A carried account is homekey's from then on: a second
-- run (or one after an interruption) passes over it, so that it never overwrites what was
-- changed in homekey since, and an account homekey had before that Synapse also has is told
-- apart from one carried by an earlier run.
CREATE TABLE homekey_carried_from_synapse (
    user_id TEXT NOT NULL PRIMARY KEY,
    carried_ts BIGINT NOT NULL
);
