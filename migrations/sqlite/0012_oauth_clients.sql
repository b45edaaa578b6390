-- The clients of the Matrix OAuth 2.0 API that registered themselves (src/oauth/): public
-- clients, each with the metadata homekey keeps of its registration (JSON). Clients register
-- again at the start of every sign-in, so one registering the same metadata gets the same
-- client back (`metadata_digest`, the SHA-256 of the kept metadata). A client that has begun
-- no session (`first_session_ms` NULL) is forgotten some time after it last registered.
CREATE TABLE homekey_oauth_clients (
    client_id TEXT NOT NULL PRIMARY KEY,
    metadata TEXT NOT NULL,
    metadata_digest TEXT NOT NULL UNIQUE,
    registered_ms BIGINT NOT NULL,
    last_registered_ms BIGINT NOT NULL,
    first_session_ms BIGINT
);
CREATE INDEX homekey_oauth_clients_unused ON homekey_oauth_clients (last_registered_ms)
    WHERE first_session_ms IS NULL;
