-- Codes are sealed since schema 6 (oauthd_core::code_sealing): the code itself carries its
-- client, user, redirect URI, scope and PKCE challenge. Its row only records what happened to it
-- at the token endpoint (failed verifiers, its redemption and the grant that came of it), so a
-- replay is recognised until the row is purged. The rest goes, with the two indexes that served
-- the cascades from clients and users: a redeemed code's row now goes with its grant, and a row
-- holding only failed attempts says nothing about anyone and is purged with the others.
CREATE TABLE codes_slim (
    hash             TEXT PRIMARY KEY,
    expires_at       INTEGER NOT NULL,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    redeemed_at      INTEGER,
    grant_id         TEXT REFERENCES grants (id) ON DELETE CASCADE
);
-- Rowids kept: they are the expiry slots of schema 5.
INSERT INTO codes_slim (rowid, hash, expires_at, failed_attempts, redeemed_at, grant_id)
    SELECT rowid, hash, expires_at, failed_attempts, redeemed_at, grant_id FROM codes;
DROP TABLE codes;
ALTER TABLE codes_slim RENAME TO codes;
CREATE INDEX codes_grant ON codes (grant_id) WHERE grant_id IS NOT NULL;
