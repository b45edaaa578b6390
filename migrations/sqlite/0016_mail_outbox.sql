-- The mail homekey sends (src/store/mail_outbox.rs, src/mail/): queued inside the
-- transaction of the change that sends it, delivered by `homekey serve` (one instance at a
-- time takes a mail, under a lease), retried with backoff, shown by `homekey email status`.
CREATE TABLE homekey_mail_outbox (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- The parts of the mail. They may hold a secret (a reset link): emptied (NULL) once the
    -- mail is delivered, dropped or given up.
    body_text TEXT,
    body_html TEXT,
    -- Send only if the recipient is still an address of an account at delivery time (a reset
    -- asked for an address no account has is queued as any other, and dropped here).
    only_if_address_known BOOLEAN NOT NULL,
    queued_ms BIGINT NOT NULL,
    -- 'queued' (waiting or being retried), 'sent', 'dropped' (address unknown) or 'given_up'.
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    -- The instance delivering it, until when (an instance that died loses it then).
    lease_holder TEXT,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    -- The last failure (what failed and the server's answer; never the body); NULL before.
    last_error TEXT,
    -- When it was sent, dropped or given up.
    done_ms BIGINT
);
CREATE INDEX homekey_mail_outbox_due ON homekey_mail_outbox (state, next_attempt_ms);
