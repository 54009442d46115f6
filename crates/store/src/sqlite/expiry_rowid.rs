//! Rows that expire (codes, access and refresh tokens, grants) are numbered by when they expire:
//! a row's rowid is `expires_at × 2^22 + n`, where n counts the rows of its table that expire in
//! the same second. Housekeeping then finds every row with `expires_at <= t` as the rowids below
//! [`slot`]`(t + 1)`, a range of the table itself, so these tables need no index on `expires_at`
//! and each insert writes one index entry less (BENCHMARKS.md). Rows of one lifetime still land
//! at the end of their table, as rowids SQLite picks itself do.
//!
//! A row inserted without an explicit rowid (by hand, or by an older binary) gets SQLite's
//! `max(rowid) + 1`, which lies in the slot of the latest expiry in the table: it is purged late,
//! never early. Rows numbered below every slot (the sqlite3 shell's `.dump` drops rowids, so a
//! restored dump numbers rows from 1) are purged by their `expires_at` and renumbered into their
//! slots when the store next starts ([`renumber_strays`]).
use oauthd_core::UnixTime;
use rusqlite::{Connection, TransactionBehavior, params};

/// Rowids per second of expiry: room for four million rows of one table expiring in the same
/// second, far beyond what one SQLite writer commits.
pub(crate) const PER_SECOND: i64 = 1 << 22;

/// The earliest expiry with a slot of its own (1970-01-13). Every slot's rowids are then at least
/// 2^42, above any rowid SQLite gave a row itself (from 1 up): those are strays, and they can be
/// moved in place without meeting a slotted row.
const FIRST_SECOND: i64 = 1 << 20;

/// The latest expiry with a slot of its own; `(LAST_SECOND + 1) × PER_SECOND` still fits an
/// `i64`, so the slot's end can be computed. It is the year 71 000.
const LAST_SECOND: i64 = i64::MAX / PER_SECOND - 1;

/// The first rowid of the rows that expire at `expires_at`. An expiry before 1970-01-13 shares
/// that day's slot (such a row is long expired, and still purged), one after the year 71 000 the
/// slot of that year. Token lifetimes are at most a year (admin CLI), so neither happens.
pub(crate) fn slot(expires_at: UnixTime) -> i64 {
    expires_at.clamp(FIRST_SECOND, LAST_SECOND) * PER_SECOND
}

/// The first rowid of the first slot: rows below it are strays, numbered by something else.
pub(crate) const FIRST_SLOTTED: i64 = FIRST_SECOND * PER_SECOND;

/// The first rowid housekeeping keeps at `now`: rows that expire at or before `now` lie below it
/// (`expires_at <= now` is `rowid < slot(now + 1)`).
pub(crate) fn purge_below(now: UnixTime) -> i64 {
    slot(now.saturating_add(1))
}

/// The SQL expression for a new row's rowid in `$table`, given its slot as parameter `?1`: one
/// past the last rowid taken in that slot (a single descent of the table's B-tree), or the
/// slot's first.
macro_rules! next_rowid_in_slot {
    ($table:literal) => {
        concat!(
            "coalesce((SELECT rowid + 1 FROM ",
            $table,
            " WHERE rowid >= ?1 AND rowid < ?1 + 4194304 ORDER BY rowid DESC LIMIT 1), ?1)"
        )
    };
}
pub(crate) use next_rowid_in_slot;

/// The statement deleting up to `?4` rows of `$table` that expired at or before `?3`: the rowids
/// below `?1` (`purge_below`) down to `?2` (`FIRST_SLOTTED`), then any stray below that by its
/// `expires_at`. `$or` adds another reason to delete a row, with parameters from `?5`.
macro_rules! purge_expired {
    ($table:literal) => {
        purge_expired!($table, "")
    };
    ($table:literal, $or:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE rowid IN (SELECT rowid FROM ",
            $table,
            " WHERE rowid < ?1 AND (rowid >= ?2 OR expires_at <= ?3)",
            $or,
            " LIMIT ?4)"
        )
    };
}
pub(crate) use purge_expired;

/// The parameters `?1` to `?4` of [`purge_expired`].
pub(crate) fn purge_params(expired_by: UnixTime, batch: i64) -> [i64; 4] {
    [purge_below(expired_by), FIRST_SLOTTED, expired_by, batch]
}

/// For each table numbered by expiry: the query for its strays and the statement that moves one
/// (`?2`) to the next free rowid in its slot (`?1`).
macro_rules! stray_statements {
    ($($table:literal),*) => {
        [$((
            concat!("SELECT rowid, expires_at FROM ", $table, " WHERE rowid < ?1 ORDER BY expires_at, rowid"),
            concat!("UPDATE ", $table, " SET rowid = ", next_rowid_in_slot!($table), " WHERE rowid = ?2"),
        )),*]
    };
}

/// Moves every stray row into its expiry's slot, in one transaction; how many moved. Normally
/// there are none and this is one empty range read per table; after migration 5 every row is
/// one. Rows move in order of expiry, so each lands at the end of its table and pages stay full.
pub(crate) fn renumber_strays(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut moved = 0;
    for (strays, move_one) in
        stray_statements!("codes", "access_tokens", "refresh_tokens", "grants")
    {
        let rows: Vec<(i64, UnixTime)> = tx
            .prepare(strays)?
            .query_map([FIRST_SLOTTED], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut update = tx.prepare(move_one)?;
        for (rowid, expires_at) in rows {
            moved += update.execute(params![slot(expires_at), rowid])?;
        }
    }
    tx.commit()?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_orders_rows_by_expiry() {
        assert_eq!(slot(FIRST_SECOND), 1 << 42);
        assert_eq!(slot(FIRST_SECOND + 1), (1 << 42) + PER_SECOND);
        assert_eq!(slot(1_700_000_000), 1_700_000_000 * PER_SECOND);
        // A whole second's rows lie below the next second's slot.
        assert!(slot(1_700_000_000) + PER_SECOND - 1 < slot(1_700_000_001));
    }

    #[test]
    fn purge_below_keeps_exactly_the_rows_not_yet_expired() {
        let now = 1_700_000_000;
        // Rows expiring at `now` (any n) are below; rows expiring a second later are not.
        assert!(slot(now) + PER_SECOND - 1 < purge_below(now));
        assert_eq!(purge_below(now), slot(now + 1));
        assert!(slot(now - 1) < purge_below(now));
    }

    #[test]
    fn out_of_range_expiries_clamp_without_overflow() {
        assert_eq!(slot(-5), slot(FIRST_SECOND));
        assert_eq!(slot(i64::MIN), slot(FIRST_SECOND));
        assert_eq!(slot(i64::MAX), LAST_SECOND * PER_SECOND);
        // The last slot's end is still an i64, as the insert's range test needs.
        assert!(slot(i64::MAX).checked_add(PER_SECOND).is_some());
        assert_eq!(purge_below(i64::MAX), slot(i64::MAX));
    }

    #[test]
    fn the_sql_uses_the_same_slot_width() {
        assert!(next_rowid_in_slot!("codes").contains(&format!("?1 + {PER_SECOND} ")));
    }
}
