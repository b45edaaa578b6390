-- homekey's own: one row per change an operator or an admin made to an account, through the
-- Admin API or the CLI. Never a secret: details say what changed, not to what.

CREATE TABLE homekey_audit_log (
    id INTEGER PRIMARY KEY,
    -- Milliseconds since the epoch.
    ts_ms BIGINT NOT NULL,
    -- Who: an admin's user ID, or "cli:" and the operating-system user.
    actor TEXT NOT NULL,
    -- What: reset_password, create_user, set_admin, deactivate, …
    action TEXT NOT NULL,
    -- To whom: a user ID.
    target TEXT,
    -- More about it, as a JSON object (e.g. {"logout_devices": true}).
    details TEXT NOT NULL
);
CREATE INDEX homekey_audit_log_target ON homekey_audit_log (target, ts_ms);
CREATE INDEX homekey_audit_log_ts ON homekey_audit_log (ts_ms);
