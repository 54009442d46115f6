-- A code points at a grant only once it is redeemed. Indexing only those codes spares each new
-- code an index entry under NULL and each redemption moving it out: at c=8 the index cost a
-- commit 2.8 WAL pages and now about one (BENCHMARKS.md). The cascade from a deleted grant
-- looks codes up by `grant_id = ?`, which implies NOT NULL, so it still uses this index.
DROP INDEX codes_grant;
CREATE INDEX codes_grant ON codes (grant_id) WHERE grant_id IS NOT NULL;
