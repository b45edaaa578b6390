-- The admin console's sessions (src/web/admin/) live beside the account page's, as another
-- kind: a session of one kind is never found by the other's pages, whatever cookie a
-- browser sends (browsers do not separate cookies by port). Rows of both kinds are ended
-- together when the user's account is logged out everywhere, locked or deactivated.
ALTER TABLE homekey_web_sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'account';
