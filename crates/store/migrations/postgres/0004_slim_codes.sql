-- Codes are sealed since schema 3 (oauthd_core::code_sealing): the code itself carries its
-- client, user, redirect URI, scope and PKCE challenge. Its row only records what happened to it
-- at the token endpoint (failed verifiers, its redemption and the grant that came of it), so a
-- replay is recognised until the row is purged. The rest goes, with the indexes that served the
-- cascades from clients and users: a redeemed code's row now goes with its grant, and a row
-- holding only failed attempts says nothing about anyone and is purged with the others.
ALTER TABLE codes
    DROP COLUMN client_id,
    DROP COLUMN user_id,
    DROP COLUMN redirect_uri,
    DROP COLUMN redirect_uri_sent,
    DROP COLUMN scope,
    DROP COLUMN code_challenge,
    DROP COLUMN pkce_mode,
    DROP COLUMN auth_time,
    DROP COLUMN nonce,
    DROP COLUMN created_at;
