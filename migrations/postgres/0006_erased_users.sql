-- Synapse's record of the users who asked to be erased (GDPR) when they were deactivated:
-- the same table and unique index as Synapse's (delta 50/erasure_store.sql), so
-- `GET /_synapse/admin/v2/users/<id>` and the listings show `erased` from the same rows on
-- homekey's database and on Synapse's. A reactivation removes the user's row.
CREATE TABLE erased_users (
    user_id TEXT NOT NULL
);
CREATE UNIQUE INDEX erased_users_user ON erased_users (user_id);
