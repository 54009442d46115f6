-- Codes, tokens and grants are numbered by when they expire (rowid = expires_at × 2^22 + n, see
-- crates/store/src/sqlite/expiry_rowid.rs), so housekeeping finds expired rows as a range of
-- rowids and these four indexes go: each insert writes one index entry less.
DROP INDEX codes_expiry;
DROP INDEX access_tokens_expiry;
DROP INDEX refresh_tokens_expiry;
DROP INDEX grants_expiry;

-- Renumber the rows already stored, in place. SQLite numbered them from 1 up, and every new
-- rowid is at least 2^42 (expiries are clamped as expiry_rowid::slot does), so no new rowid meets
-- an old one. n follows the old order within each second. Rows go in order of their new rowid, so
-- each lands at the end of its table and the pages stay full (about 30 s per million grants).
UPDATE codes SET rowid = m.new FROM (
    SELECT rowid AS old,
           min(max(expires_at, 1048576), 2199023255550) * 4194304
             + row_number() OVER (PARTITION BY min(max(expires_at, 1048576), 2199023255550) ORDER BY rowid) - 1 AS new
    FROM codes) AS m
WHERE codes.rowid = m.old;

UPDATE access_tokens SET rowid = m.new FROM (
    SELECT rowid AS old,
           min(max(expires_at, 1048576), 2199023255550) * 4194304
             + row_number() OVER (PARTITION BY min(max(expires_at, 1048576), 2199023255550) ORDER BY rowid) - 1 AS new
    FROM access_tokens) AS m
WHERE access_tokens.rowid = m.old;

UPDATE refresh_tokens SET rowid = m.new FROM (
    SELECT rowid AS old,
           min(max(expires_at, 1048576), 2199023255550) * 4194304
             + row_number() OVER (PARTITION BY min(max(expires_at, 1048576), 2199023255550) ORDER BY rowid) - 1 AS new
    FROM refresh_tokens) AS m
WHERE refresh_tokens.rowid = m.old;

UPDATE grants SET rowid = m.new FROM (
    SELECT rowid AS old,
           min(max(expires_at, 1048576), 2199023255550) * 4194304
             + row_number() OVER (PARTITION BY min(max(expires_at, 1048576), 2199023255550) ORDER BY rowid) - 1 AS new
    FROM grants) AS m
WHERE grants.rowid = m.old;
