-- Synapse's registration tokens (its schema delta 63/01), with its names and types, so that a
-- migration from or to Synapse carries them as they are. An admin makes a token (the Admin
-- API's `registration_tokens`, `homekey registration-token`); each sign-up that gives it
-- spends one use: `pending` while the sign-up is unfinished, `completed` once the account
-- exists. `uses_allowed` NULL: no limit. `expiry_time`: ms since the epoch, NULL: never.
CREATE TABLE registration_tokens (
    token TEXT NOT NULL,
    uses_allowed INT,
    pending INT NOT NULL,
    completed INT NOT NULL,
    expiry_time BIGINT,
    UNIQUE (token)
);
