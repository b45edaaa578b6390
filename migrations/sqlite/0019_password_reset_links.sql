-- homekey's own password reset links (src/store/reset_links.rs): "Forgot password?" on its
-- sign-in pages, and the links an operator sends (`homekey user send-reset-link`). Not
-- Synapse's threepid_validation_* tables, which serve legacy clients' flow.
CREATE TABLE homekey_password_reset_links (
    -- The link's token as a digest (`sha256:` + base64url): a copy of the database holds no
    -- usable link.
    token_digest TEXT NOT NULL PRIMARY KEY,
    -- The address the link was mailed to (canonical), and the account that had it when the
    -- link was made; NULL when none had it (the mail is then dropped at delivery).
    address TEXT NOT NULL,
    user_id TEXT,
    -- Where the browser goes once the password is set: a path on homekey's own pages that
    -- homekey checked (an OAuth authorization, the account page); NULL: nowhere.
    return_to TEXT,
    -- The operator's "sign out everywhere", applied when the user sets the password; NULL or
    -- FALSE: the user chooses.
    logout_devices BOOLEAN,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    -- Set once the link set a password (or another link of the user did): it works once.
    used_ms BIGINT
);
CREATE INDEX homekey_password_reset_links_user ON homekey_password_reset_links (user_id);
CREATE INDEX homekey_password_reset_links_expiry ON homekey_password_reset_links (expires_ms);
