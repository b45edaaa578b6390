-- The sign-up page's code (src/accounts/sign_up_page.rs) waits in homekey_email_codes too,
-- under `sign-up:` and the page session's digest instead of a user ID; until it is typed
-- back, the form's name, password hash and registration token wait with it (JSON), as the
-- account is made only then. NULL for the account page's codes.
ALTER TABLE homekey_email_codes ADD COLUMN sign_up TEXT;
