#!/usr/bin/env python3
"""WAL pages written per flow by oauthd's SQLite schema, for a given batch size and schema change.

Replays the writes of the benchmarked flow (exchange: store the grant, the redeemed code's row
(since schema 7 its hash, expiry, redemption and grant only), one access and one refresh token; refresh: rotate, one access and one refresh token; before
schema 6 also authorize: one code, then the exchange marked it redeemed) with the real
migrations and the store's statements, on a database that already holds
20 000 flows, committing JOBS jobs at a time as the writer thread's group commit does. Every
commit writes each page it dirtied to the WAL as one frame, so frames per flow is what a commit
costs in pwrite()s and fsync()ed bytes. Deterministic up to the random token bytes.

Usage: crates/bench/wal_frames.py [--jobs 7] [--page 2048] [VARIANT ...]
Variants: base, full-code-rows (schema 6: sealed codes, but the redeemed code's row still
holds the whole record), stored-codes (before schema 6: the code stored when issued, one more
write job per flow), before-expiry-rowids (schema 4: rowids in insertion order, an index on each
table's expires_at), without-rowid (the four token tables WITHOUT ROWID), no-expiry-indexes,
no-cascade-indexes (codes_client, codes_user), no-codes-grant, no-token-grant-indexes
(access_tokens_grant, refresh_tokens_grant), no-grants-cascade (grants_client, grants_user),
long-hash (before schema 8: the whole SHA-256 digest in each stored hash), blob-hash (the issue
time and whole digest as a 40-byte BLOB), successor-rowid (a rotated refresh token records its
successor's rowid, not its hash); combine with '+'.
"""
import argparse
import hashlib
import os
import re
import sqlite3
import tempfile

MIGRATIONS = os.path.join(os.path.dirname(__file__), "../store/migrations/sqlite")
USER = "u-" + "0" * 34
CLIENT = "bench-public"


def schema(variant):
    parts = set(variant.split("+"))
    sql = "".join(
        open(os.path.join(MIGRATIONS, f)).read()
        for f in sorted(os.listdir(MIGRATIONS))
        if not ("before-expiry-rowids" in parts and f.startswith("0005"))
        and not (parts & {"stored-codes", "full-code-rows"} and f.startswith("0007"))
    )
    if "without-rowid" in parts:
        for table in ["codes", "access_tokens", "refresh_tokens", "grants"]:
            m = re.search(r"CREATE TABLE %s \(.*?\n\);" % table, sql, re.S)
            sql = sql[: m.end() - 1] + " WITHOUT ROWID;" + sql[m.end():]
    if "no-expiry-indexes" in parts:
        for index in ["codes_expiry", "access_tokens_expiry", "refresh_tokens_expiry", "grants_expiry"]:
            sql = re.sub(r"CREATE INDEX %s ON \w+ \(expires_at\);" % index, "", sql)
    if "no-cascade-indexes" in parts:
        sql = sql.replace("CREATE INDEX codes_client ON codes (client_id);", "")
        sql = sql.replace("CREATE INDEX codes_user ON codes (user_id);", "")
    if "no-token-grant-indexes" in parts:
        sql = sql.replace("CREATE INDEX access_tokens_grant ON access_tokens (grant_id);", "")
        sql = sql.replace("CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);", "")
    if "no-codes-grant" in parts:
        sql = sql.replace("CREATE INDEX codes_grant ON codes (grant_id) WHERE grant_id IS NOT NULL;", "")
    if "no-grants-cascade" in parts:
        sql = sql.replace("CREATE INDEX grants_client ON grants (client_id);", "")
        sql = sql.replace("CREATE INDEX grants_user ON grants (user_id);", "")
    return sql


class Flow:
    """The three write jobs of one flow, as the store runs them."""

    def __init__(self, db, clock, slotted, sealed, slim, parts=()):
        self.db, self.clock, self.slotted, self.sealed, self.slim = db, clock, slotted, sealed, slim
        self.parts = parts

    def insert(self, table, columns, values, expires_at):
        """INSERT as the store does: since schema 5 with a rowid in the row's expiry slot
        (crates/store/src/sqlite/expiry_rowid.rs)."""
        marks = ", ".join("?" * len(values))
        if not self.slotted:
            sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, columns, marks)
            self.db.execute(sql, values)
            return
        slot = expires_at * 4194304
        sql = (
            "INSERT INTO %s (rowid, %s) VALUES (coalesce((SELECT rowid + 1 FROM %s WHERE rowid >= ?"
            " AND rowid < ? ORDER BY rowid DESC LIMIT 1), ?), %s)" % (table, columns, table, marks)
        )
        self.db.execute(sql, (slot, slot + 4194304, slot) + tuple(values))

    def token_hash(self):
        # Issue time (ms, 11 hex digits) then the first 128 bits of the SHA-256 in hex, as
        # SecretHash::of stores it since schema 8.
        digest = hashlib.sha256(os.urandom(32))
        if "blob-hash" in self.parts:
            return self.clock[0].to_bytes(8, "big") + digest.digest()
        if "long-hash" in self.parts:
            return "%011x" % self.clock[0] + digest.hexdigest()
        return "%011x" % self.clock[0] + digest.hexdigest()[:32]

    def jobs(self):
        if self.sealed:
            return [self.exchange, self.refresh]
        return [self.authorize, self.exchange, self.refresh]

    def code_row(self, now, redeemed):
        if self.slim:
            # Schema 7: the row only records the redemption.
            self.insert(
                "codes",
                "hash, expires_at, redeemed_at, grant_id",
                (self.code, now + 60, now, self.grant),
                now + 60,
            )
            return
        columns = (
            "hash, client_id, user_id, redirect_uri, redirect_uri_sent, scope, code_challenge,"
            " pkce_mode, auth_time, nonce, created_at, expires_at"
        )
        values = (self.code, CLIENT, USER, "myapp://oauth2redirect", 1, "api",
                  "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "strict", now, None, now, now + 60)
        if redeemed:
            columns += ", redeemed_at, grant_id"
            values += (now, self.grant)
        self.insert("codes", columns, values, now + 60)

    def authorize(self, now):
        self.code = self.token_hash()
        self.code_row(now, redeemed=False)

    def exchange(self, now):
        # The grant first, then the compare-and-set that marks the code and points it at the
        # grant (SqliteStore::redeem_code).
        # Grant ids lead with the millisecond (time_ordered_id).
        self.grant = "%011x" % self.clock[0] + os.urandom(16).hex()
        self.insert(
            "grants",
            "id, client_id, user_id, scope, auth_time, created_at, expires_at",
            (self.grant, CLIENT, USER, "api", now, now, now + 30 * 86400),
            now + 30 * 86400,
        )
        if self.sealed:
            # Schema 6: a sealed code gets its row when it is redeemed.
            self.code = self.token_hash()
            self.code_row(now, redeemed=True)
        else:
            self.db.execute(
                "UPDATE codes SET redeemed_at = ?, grant_id = ? WHERE hash = ? AND redeemed_at IS NULL"
                " AND failed_attempts < 5 AND expires_at > ?",
                (now, self.grant, self.code, now),
            )
        self.refresh_hash = self.pair(now)

    def refresh(self, now):
        successor = self.pair(now, insert=False)
        if "successor-rowid" in self.parts:
            self.db.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL",
                (now, self.refresh_hash),
            )
            self.insert_pair(now, *successor)
            rowid = self.db.execute("SELECT rowid FROM refresh_tokens WHERE hash = ?", (successor[1],)).fetchone()[0]
            self.db.execute("UPDATE refresh_tokens SET successor_hash = ? WHERE hash = ?", (rowid, self.refresh_hash))
            return
        self.db.execute(
            "UPDATE refresh_tokens SET used_at = ?, successor_hash = ? WHERE hash = ? AND used_at IS NULL",
            (now, successor[1], self.refresh_hash),
        )
        self.insert_pair(now, *successor)

    def pair(self, now, insert=True):
        access, refresh = self.token_hash(), self.token_hash()
        if not insert:
            return access, refresh
        self.insert_pair(now, access, refresh)
        return refresh

    def insert_pair(self, now, access, refresh):
        self.insert(
            "access_tokens",
            "hash, grant_id, scope, issued_at, expires_at, kid",
            (access, self.grant, "api", now, now + 3600, None),
            now + 3600,
        )
        self.insert(
            "refresh_tokens",
            "hash, grant_id, access_hash, issued_at, expires_at",
            (refresh, self.grant, access, now, now + 30 * 86400),
            now + 30 * 86400,
        )


def replay(db, clock, flows, jobs_per_commit, slotted, sealed, slim, parts=()):
    """Runs `flows` flows with jobs_per_commit flows in flight, one job each per commit in
    turn, as concurrent users' requests arrive at the writer. Returns commits."""
    waiting = [Flow(db, clock, slotted, sealed, slim, parts).jobs() for _ in range(flows)]
    in_flight, commits = [], 0
    while waiting or in_flight:
        while waiting and len(in_flight) < jobs_per_commit:
            in_flight.append(waiting.pop(0))
        db.execute("BEGIN IMMEDIATE")
        for jobs in in_flight[:jobs_per_commit]:
            clock[0] += 1
            jobs.pop(0)(clock[0] // 1000)
        db.execute("COMMIT")
        commits += 1
        in_flight = [j for j in in_flight if j]
    return commits


def measure(variant, jobs_per_commit, page, flows=3000):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "frames.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute(f"PRAGMA page_size = {page}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.executescript(schema(variant))
        db.execute(
            "INSERT INTO clients VALUES (?, 'Bench', 'public', NULL, 'myapp://oauth2redirect',"
            " 'authorization_code refresh_token', 'api', 1, 'strict', 3600, 2592000, 'opaque',"
            " 'ES256', 'RS256', '', 0)",
            (CLIENT,),
        )
        db.execute("INSERT INTO users VALUES (?, 'bench', '$argon2id$x', NULL, NULL, 0)", (USER,))
        clock = [1_700_000_000_000]
        slotted = "before-expiry-rowids" not in variant.split("+")
        sealed = "stored-codes" not in variant.split("+")
        slim = sealed and "full-code-rows" not in variant.split("+")
        parts = variant.split("+")
        replay(db, clock, 20_000, jobs_per_commit, slotted, sealed, slim, parts)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        commits = replay(db, clock, flows, jobs_per_commit, slotted, sealed, slim, parts)
        frames = os.path.getsize(path + "-wal") // (page + 24)
        db.close()
    return frames / flows, frames / commits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=7, help="write jobs per commit")
    parser.add_argument("--page", type=int, default=2048, help="page size of the new file")
    parser.add_argument("variants", nargs="*", default=["base"])
    args = parser.parse_args()
    for variant in args.variants:
        per_flow, per_commit = measure(variant, args.jobs, args.page)
        print(
            f"{variant:45s} jobs/commit {args.jobs:3d}  page {args.page}:"
            f"  WAL frames per flow {per_flow:5.2f}, per commit {per_commit:5.1f}"
        )


if __name__ == "__main__":
    main()
