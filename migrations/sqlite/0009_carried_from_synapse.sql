-- `homekey migrate-from-synapse` (src/store/synapse_migration.rs): the accounts carried from an
-- existing Synapse's database are marked in the mirror of what Synapse has, with when. A
-- carried account is homekey's from then on: a second run (or one after an interruption)
-- passes over it, so that it never overwrites what was changed in homekey since; an account
-- homekey made in Synapse itself has a mirror row without the mark; any other account homekey
-- has that Synapse also has is told apart by having neither.
ALTER TABLE homekey_synapse_users ADD COLUMN carried_ts BIGINT;
