-- Only tokens minted with a refresh token have a refresh_token_id; every other row is NULL
-- there. A partial index still serves the lookups by refresh_token_id (the foreign key's
-- ON DELETE CASCADE), and a logout of many devices no longer updates it row by row
-- (bench/README.md: reset_password with 10,000 devices, about 2 ms of the 10 ms delete).
DROP INDEX access_tokens_refresh_token_id_idx;
CREATE INDEX access_tokens_refresh_token_id_idx ON access_tokens (refresh_token_id)
    WHERE refresh_token_id IS NOT NULL;
