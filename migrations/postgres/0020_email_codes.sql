-- The code mailed to an address a user adds on the account page (src/store/email_codes.rs):
-- one address waiting a user, its code kept as a digest, with how many wrong tries it still
-- takes. The row goes when the code is used up, replaced by a new one, or expired (the cull).
CREATE TABLE homekey_email_codes (
    user_id TEXT NOT NULL PRIMARY KEY,
    address TEXT NOT NULL,
    code TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    tries_left INTEGER NOT NULL
);
