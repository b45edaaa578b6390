-- homekey's own: the nonces of shared-secret registration (`GET /_synapse/admin/v1/register`).
-- Kept in the database, not in the process as Synapse does, so a nonce fetched from one
-- instance is accepted by another; each is deleted when used.

CREATE TABLE homekey_registration_nonces (
    nonce TEXT NOT NULL PRIMARY KEY,
    -- Milliseconds since the epoch.
    created_ms BIGINT NOT NULL
);
