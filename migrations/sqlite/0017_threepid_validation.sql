-- The e-mail password reset of legacy clients (`/account/password/email/requestToken`, the
-- link's `submit_token` page, then `m.login.email.identity`), in Synapse's own tables and
-- columns, so that an instance confirms a link another sent. Unlike Synapse, homekey keeps
-- `client_secret` and `token` as digests (`sha256:…`, store/token_forms.rs): a copy of the
-- database confirms no link and completes no reset. `last_send_attempt` is the client's
-- counter (a repeat sends no second mail); `validated_at` (ms) is set once the link is
-- confirmed; `expires` is in ms. Expired tokens, and sessions left without a token, are culled.
CREATE TABLE threepid_validation_session (
    session_id TEXT NOT NULL PRIMARY KEY,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    last_send_attempt BIGINT NOT NULL,
    validated_at BIGINT
);
CREATE INDEX threepid_validation_session_address
    ON threepid_validation_session (medium, address, client_secret);

CREATE TABLE threepid_validation_token (
    token TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL,
    next_link TEXT,
    expires BIGINT NOT NULL
);
CREATE INDEX threepid_validation_token_session_id ON threepid_validation_token (session_id);
CREATE INDEX threepid_validation_token_expires ON threepid_validation_token (expires);
