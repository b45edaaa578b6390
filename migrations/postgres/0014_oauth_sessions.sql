-- The sessions of the Matrix OAuth 2.0 API (src/oauth/): which client holds which device of
-- a user, and the scope it was granted. The session's tokens are ordinary rows of
-- access_tokens and refresh_tokens, but stored as a digest ("sha256:…") instead of the token,
-- so a copy of the database holds no usable OAuth token. A device is held by at most one
-- OAuth session; a legacy login on it ends that session, a grant on it ends its older tokens.
CREATE TABLE homekey_oauth_sessions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (user_id, device_id)
);

-- Authorization codes (RFC 6749 §4.1), by digest: single use, short-lived, bound to the
-- client, the redirect URI, the PKCE challenge, the user and the scope. Once exchanged, the
-- code keeps the session it began (until it expires), so that a replay can end that session.
CREATE TABLE homekey_oauth_codes (
    code_digest TEXT NOT NULL PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    exchanged_session_id BIGINT,
    exchanged BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX homekey_oauth_codes_expires ON homekey_oauth_codes (expires_ms);
