-- Codes, tokens and grants are numbered by when they expire (rowid = expires_at × 2^22 + n, see
-- crates/store/src/sqlite/expiry_rowid.rs), so housekeeping finds expired rows as a range of
-- rowids and these four indexes go: each insert writes one index entry less. The rows already
-- stored are numbered from 1, below every slot; the store moves them into their slots right
-- after migrating (expiry_rowid::renumber_strays).
DROP INDEX codes_expiry;
DROP INDEX access_tokens_expiry;
DROP INDEX refresh_tokens_expiry;
DROP INDEX grants_expiry;
