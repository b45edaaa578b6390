-- The third-party IDs (e-mail addresses, phone numbers) of accounts, in Synapse's own table
-- and columns, so that SQL an operator knows works and the move from and to Synapse carries
-- them: one row per address, an address (stored canonical) on one account at most.
CREATE TABLE user_threepids (
    user_id TEXT NOT NULL,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    CONSTRAINT medium_address UNIQUE (medium, address)
);
CREATE INDEX user_threepids_user_id ON user_threepids (user_id);

-- Beside Synapse: the e-mail addresses homekey last gave Synapse for the user (a digest of
-- the sorted list), so that a delivery sends them only when they changed.
ALTER TABLE homekey_synapse_users ADD COLUMN emails_digest TEXT;
