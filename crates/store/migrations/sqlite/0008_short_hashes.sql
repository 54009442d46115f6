-- Stored hashes keep the first 128 bits of the SHA-256 digest instead of all 256
-- (oauthd_core::secret::SecretHash): 32 hex digits, after the issue time when the value has one.
-- Every value stored before keeps its first 32 digest digits, so a token, code, session or
-- pending authorization issued before the upgrade is still found by what the new version
-- computes. A hash has 64 digits (no issue time) or 75 (11 of time first); anything else was
-- not written by oauthd and is left as it is.
UPDATE sessions SET id_hash = substr(id_hash, 1, length(id_hash) - 32)
    WHERE length(id_hash) IN (64, 75);
UPDATE pending_authorizations SET id_hash = substr(id_hash, 1, length(id_hash) - 32)
    WHERE length(id_hash) IN (64, 75);
UPDATE pending_authorizations SET browser_hash = substr(browser_hash, 1, length(browser_hash) - 32)
    WHERE length(browser_hash) IN (64, 75);
UPDATE pending_authorizations SET login_session = substr(login_session, 1, length(login_session) - 32)
    WHERE length(login_session) IN (64, 75);
UPDATE codes SET hash = substr(hash, 1, length(hash) - 32)
    WHERE length(hash) IN (64, 75);
UPDATE access_tokens SET hash = substr(hash, 1, length(hash) - 32)
    WHERE length(hash) IN (64, 75);
UPDATE refresh_tokens SET hash = substr(hash, 1, length(hash) - 32)
    WHERE length(hash) IN (64, 75);
UPDATE refresh_tokens SET access_hash = substr(access_hash, 1, length(access_hash) - 32)
    WHERE length(access_hash) IN (64, 75);
UPDATE refresh_tokens SET successor_hash = substr(successor_hash, 1, length(successor_hash) - 32)
    WHERE length(successor_hash) IN (64, 75);
