-- Keys homekey makes for itself, one row each, the same for every instance on this database
-- (src/store/web_sessions.rs): `web_form` keys the CSRF tokens of the pages' sign-in forms,
-- so that a token cannot be computed from the cookie alone. Never shown nor logged.
CREATE TABLE homekey_server_keys (
    name TEXT NOT NULL PRIMARY KEY,
    key TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
