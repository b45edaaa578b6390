-- The device authorization grant of the OAuth 2.0 API (RFC 8628, MSC4341; QR login): a
-- device without a browser asks for a code, a signed-in user approves it on a page, the
-- device polls the token endpoint. The device code is kept as a digest; the user code (8
-- letters without look-alikes) is what the user types or follows. `decision` is NULL while
-- pending, then 'allowed', 'denied', or 'exchanged' once the device got its tokens.
CREATE TABLE homekey_oauth_device_grants (
    device_code_digest TEXT NOT NULL PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    requested_from TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    last_poll_ms BIGINT,
    decision TEXT,
    user_id TEXT,
    granted_scope TEXT
);
CREATE INDEX homekey_oauth_device_grants_expires ON homekey_oauth_device_grants (expires_ms);
