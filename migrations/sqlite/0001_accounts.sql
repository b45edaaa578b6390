-- homekey's account tables, on SQLite. Table and column names are Synapse's, so the SQL an
-- operator knows from Synapse works here unchanged. Units as in Synapse: users.creation_ts in
-- seconds, every other *_ts / *_ms column in milliseconds.

CREATE TABLE users (
    name TEXT NOT NULL,
    password_hash TEXT,
    creation_ts BIGINT NOT NULL,
    admin SMALLINT DEFAULT 0 NOT NULL,
    upgrade_ts BIGINT,
    is_guest SMALLINT DEFAULT 0 NOT NULL,
    appservice_id TEXT,
    consent_version TEXT,
    consent_server_notice_sent TEXT,
    user_type TEXT DEFAULT NULL,
    deactivated SMALLINT DEFAULT 0 NOT NULL,
    shadow_banned BOOLEAN,
    consent_ts BIGINT,
    approved BOOLEAN,
    locked BOOLEAN NOT NULL DEFAULT FALSE,
    suspended BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (name)
);
-- Synapse treats user IDs case-insensitively at registration and login; homekey's own
-- database enforces it, so two concurrent registrations of @Bob and @bob cannot both succeed.
CREATE UNIQUE INDEX users_lower_name ON users (lower(name));
CREATE INDEX users_creation_ts ON users (creation_ts);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    token TEXT NOT NULL,
    next_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    expiry_ts BIGINT DEFAULT NULL,
    ultimate_session_expiry_ts BIGINT DEFAULT NULL,
    UNIQUE (token)
);
CREATE INDEX refresh_tokens_next_token_id ON refresh_tokens (next_token_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id, device_id);

-- `id` is allocated by the database here (Synapse allocates it in its processes instead).
CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    token TEXT NOT NULL,
    valid_until_ms BIGINT,
    puppets_user_id TEXT,
    last_validated BIGINT,
    refresh_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    used BOOLEAN,
    UNIQUE (token)
);
CREATE INDEX access_tokens_device_id ON access_tokens (user_id, device_id);
CREATE INDEX access_tokens_refresh_token_id_idx ON access_tokens (refresh_token_id);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen BIGINT,
    ip TEXT,
    user_agent TEXT,
    hidden BOOLEAN DEFAULT FALSE,
    CONSTRAINT device_uniqueness UNIQUE (user_id, device_id)
);

-- As in Synapse, profiles.user_id is the localpart and full_user_id the whole ID.
CREATE TABLE profiles (
    user_id TEXT NOT NULL,
    displayname TEXT,
    avatar_url TEXT,
    full_user_id TEXT,
    UNIQUE (user_id)
);
CREATE UNIQUE INDEX profiles_full_user_id_key ON profiles (full_user_id);
