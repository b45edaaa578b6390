-- User-interactive authentication sessions, in Synapse's own tables: a session survives a
-- restart and is shared by every homekey instance on one database, and the same code works
-- on a Synapse database. creation_time is in milliseconds.

CREATE TABLE ui_auth_sessions (
    session_id TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    -- What the server keeps between the requests of a session (JSON), e.g. a new password's hash.
    serverdict TEXT NOT NULL,
    -- What the client sent (JSON); homekey keeps none of it, as it may hold a new password.
    clientdict TEXT NOT NULL,
    -- The operation the session authorises: it may not change between the requests.
    uri TEXT NOT NULL,
    method TEXT NOT NULL,
    description TEXT NOT NULL,
    UNIQUE (session_id)
);

-- The stages completed in a session; result is JSON (for m.login.password, the user ID).
CREATE TABLE ui_auth_sessions_credentials (
    session_id TEXT NOT NULL,
    stage_type TEXT NOT NULL,
    result TEXT NOT NULL,
    UNIQUE (session_id, stage_type),
    FOREIGN KEY (session_id) REFERENCES ui_auth_sessions (session_id)
);
