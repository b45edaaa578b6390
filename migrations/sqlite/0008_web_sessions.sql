-- The account page's sessions (src/web/session.rs): one row per browser session. The cookie
-- holds a random ID; only its SHA-256 is stored, so a copy of the database signs no one in.
-- `user_id` is NULL until the password is given (the sign-in form has its CSRF token too).
CREATE TABLE homekey_web_sessions (
    id_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT,
    csrf_token TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    -- When the user last gave their password (sign-in or a confirmation).
    verified_ms BIGINT
);
CREATE INDEX homekey_web_sessions_last_seen ON homekey_web_sessions (last_seen_ms);
