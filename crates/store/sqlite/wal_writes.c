/*
** The "oauthd" SQLite VFS: the "unix" VFS, except that a WAL file's writes are gathered and
** handed to the kernel as one write each time SQLite is about to depend on them.
**
** Why: SQLite writes every WAL frame as two write calls, the 24-byte frame header and then
** the page (walWriteOneFrame in wal.c), so a commit of 23 pages is 46 `pwrite`s before its
** fsync. On ext4 each call costs about 1.7 us of kernel CPU whatever its size; one write of
** the same 48 KB costs about 22 us instead of 77 (BENCHMARKS.md, eighth session). Nothing
** else changes: the same bytes reach the same offsets, in the same order relative to every
** sync, read, truncation and close of the file, and none is left gathered once the
** connection lets go of the WAL's write lock.
**
** When the gathered bytes are written (before any of these the file holds all of them):
**   - xSync: a commit with synchronous=FULL syncs the WAL before it is visible to anyone;
**   - a commit frame completed: the frame header's bytes 4..7 hold the database size after
**     a commit and are zero in every other frame (https://sqlite.org/fileformat2.html,
**     "WAL Frame Format"), so with synchronous=NORMAL, where a commit is not synced, its
**     frames are still in the file before the wal-index makes them visible to readers;
**   - any write that does not continue the gathered bytes, or that would not fit;
**   - xRead, xTruncate, xFileSize, xFileControl, xFetch and xClose of the WAL;
**   - any shared-memory unlock on the database file of the same connection. A transaction
**     that spilled pages to the WAL and then rolled back leaves frames gathered that no
**     commit frame follows; once the write lock is free another connection or process may
**     commit over that stretch of the WAL, and writing them later would overwrite its
**     frames. Written while the lock is still held they are only bytes past the WAL's valid
**     end, as with the "unix" VFS.
**
** The WAL also grows ahead of its frames, GROW_STEP bytes of zeros at a time, written with
** the frames that reached its end. Why: a write past a file's end makes the next fdatasync
** allocate blocks and write the inode too, more trips to the device for every commit while
** the WAL grows (its first 200 MiB after each start). Overwriting written blocks costs
** neither. In the server at c=8 while the WAL grew, fdatasync took 0.53-0.65 ms instead of
** 0.80-0.88 on average, with 2.5-2.6 block requests each instead of 3.9-4.0, though flows/s
** did not change measurably (BENCHMARKS.md, ninth session).
** Zeros past the last frame are where SQLite's WAL recovery stops (no frame is for page 0).
** The zeros go only where the file holds nothing: its size is asked for before each step,
** so frames another connection or process appended since are never overwritten. The
** writer holds the WAL's write lock throughout, so nobody appends or truncates meanwhile.
**
** WAL files and main database files are wrapped (the database file only to see that
** unlock); every other file goes to the "unix" VFS untouched. A WAL whose database file is
** not wrapped is written through, ungathered.
**
** Registered when SQLite initialises, through SQLITE_EXTRA_INIT (.cargo/config.toml), so the
** Rust side needs no foreign call of its own (the crates forbid unsafe code). Connections ask
** for it by name ("oauthd"); it is not the default VFS.
*/
#include <string.h>
#include "sqlite3.h"

/* The VFS's name, as the Rust side opens it. */
#define WAL_WRITES_VFS "oauthd"
/* The bytes of one WAL frame header (wal.c WAL_FRAME_HDRSIZE). */
#define FRAME_HEADER 24
/* The most bytes gathered: a larger commit is written as it goes, MAX_GATHERED at a time. */
#define MAX_GATHERED (1024 * 1024)
/* The most bytes handed to the "unix" VFS in one write: its unixWrite keeps only the low 17
** bits of a write's size (seekAndWriteFd; SQLite itself never writes more than a 64 KiB
** page at once), so 128 KiB or more would be cut short and reported as a full disk. */
#define MAX_WRITE (124 * 1024)

/* How far ahead of its frames the WAL is zero-filled (see the top of this file). */
#define GROW_STEP (1024 * 1024)

/* What both wrappers start with: SQLite's view of the file, then the "unix" VFS's file,
** which lives in the same allocation, right after the wrapper. */
typedef struct Wrapped {
  sqlite3_file base;         /* base.pMethods is this VFS's methods once opened */
  sqlite3_file *real;
} Wrapped;

#define REAL(f) (((Wrapped *)(f))->real)

typedef struct DbFile DbFile;

typedef struct WalFile {
  Wrapped file;
  DbFile *db;                /* the same connection's database file; 0: write through */
  unsigned char *buf;        /* gathered bytes, from sqlite3_malloc64 */
  sqlite3_int64 capacity;    /* bytes buf can hold */
  sqlite3_int64 held;        /* bytes gathered */
  sqlite3_int64 start;       /* the file offset of buf[0] */
  int commit_pending;        /* the last header gathered was a commit frame's */
  sqlite3_int64 known_end;   /* the file holds at least this many bytes; 0: not known */
} WalFile;

struct DbFile {
  Wrapped file;
  WalFile *wal;              /* this connection's WAL while it is open, or 0 */
};

/* The room before the "unix" VFS's file in each allocation (a multiple of 8 bytes). */
#define WRAPPER_SIZE (sizeof(WalFile) > sizeof(DbFile) ? sizeof(WalFile) : sizeof(DbFile))

static sqlite3_vfs *unix_vfs;

/* Methods that only pass the call on to the "unix" VFS's file. */
static int fwd_read(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
  return REAL(f)->pMethods->xRead(REAL(f), out, amount, offset);
}
static int fwd_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
  return REAL(f)->pMethods->xWrite(REAL(f), data, amount, offset);
}
static int fwd_truncate(sqlite3_file *f, sqlite3_int64 size) {
  return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int fwd_sync(sqlite3_file *f, int flags) {
  return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int fwd_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int fwd_lock(sqlite3_file *f, int level) {
  return REAL(f)->pMethods->xLock(REAL(f), level);
}
static int fwd_unlock(sqlite3_file *f, int level) {
  return REAL(f)->pMethods->xUnlock(REAL(f), level);
}
static int fwd_check_reserved_lock(sqlite3_file *f, int *out) {
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int fwd_file_control(sqlite3_file *f, int op, void *arg) {
  return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int fwd_sector_size(sqlite3_file *f) {
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int fwd_device_characteristics(sqlite3_file *f) {
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int fwd_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
  return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, out);
}
static int fwd_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void fwd_shm_barrier(sqlite3_file *f) {
  REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int fwd_shm_unmap(sqlite3_file *f, int delete_flag) {
  return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}
static int fwd_fetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
  return REAL(f)->pMethods->xFetch(REAL(f), offset, amount, out);
}
static int fwd_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) {
  return REAL(f)->pMethods->xUnfetch(REAL(f), offset, page);
}

static const unsigned char zeros[MAX_WRITE];

/* Write `n` bytes at `offset` in pieces of at most MAX_WRITE bytes: `data`, or zeros if 0. */
static int write_pieces(WalFile *p, const unsigned char *data, sqlite3_int64 n,
                        sqlite3_int64 offset) {
  int rc = SQLITE_OK;
  sqlite3_int64 done = 0;
  while (rc == SQLITE_OK && done < n) {
    sqlite3_int64 piece = n - done;
    if (piece > MAX_WRITE) piece = MAX_WRITE;
    rc = fwd_write(&p->file.base, data != 0 ? data + done : zeros, (int)piece, offset + done);
    done += piece;
  }
  return rc;
}

/* Zero-fill the WAL from its end to GROW_STEP bytes past `end`, the end of the frames just
** written. Only an optimisation: a failure (a full disk) is not the commit's, whose frames
** are written; the known end stays where it was, so the next write past it tries again. */
static void grow(WalFile *p, sqlite3_int64 end) {
  sqlite3_int64 size;
  sqlite3_int64 target = (end + GROW_STEP) / 4096 * 4096;
  if (fwd_file_size(&p->file.base, &size) != SQLITE_OK) return;
  if (size >= target) {
    p->known_end = size;
  } else if (write_pieces(p, 0, target - size, size) == SQLITE_OK) {
    p->known_end = target;
  }
}

/* Write what is gathered. The buffer is emptied whether or not the writes succeeded: after
** a failed write SQLite abandons the transaction, whose frames are past the WAL's valid end. */
static int flush(WalFile *p) {
  sqlite3_int64 end = p->start + p->held;
  int rc;
  if (p->held == 0) return SQLITE_OK;
  rc = write_pieces(p, p->buf, p->held, p->start);
  if (rc == SQLITE_OK && end > p->known_end) grow(p, end);
  p->held = 0;
  return rc;
}

/* Room for `more` bytes after what is held, growing the buffer up to MAX_GATHERED. */
static int reserve(WalFile *p, sqlite3_int64 more) {
  sqlite3_int64 need = p->held + more;
  sqlite3_int64 grown;
  unsigned char *buf;
  if (need <= p->capacity) return SQLITE_OK;
  grown = p->capacity > 0 ? p->capacity : 64 * 1024;
  while (grown < need) grown *= 2;
  if (grown > MAX_GATHERED) grown = MAX_GATHERED;
  buf = sqlite3_realloc64(p->buf, (sqlite3_uint64)grown);
  if (buf == 0) return SQLITE_NOMEM;
  p->buf = buf;
  p->capacity = grown;
  return SQLITE_OK;
}

/* The WAL. */
static int wal_close(sqlite3_file *f) {
  WalFile *p = (WalFile *)f;
  int rc = flush(p);
  int rc_close = REAL(f)->pMethods->xClose(REAL(f));
  if (p->db != 0) p->db->wal = 0; /* set together in wal_writes_open */
  sqlite3_free(p->buf);
  return rc != SQLITE_OK ? rc : rc_close;
}

static int wal_write(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
  WalFile *p = (WalFile *)f;
  const unsigned char *bytes = (const unsigned char *)data;
  /* This write is the page of a commit frame whose header came last. */
  int completes_commit = p->commit_pending;
  /* A frame header: bytes 4..7, big-endian, are non-zero only in a commit frame's. */
  int commit_header =
      amount == FRAME_HEADER && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  int rc;
  p->commit_pending = commit_header;
  if (p->held > 0 && (offset != p->start + p->held || p->held + amount > MAX_GATHERED)) {
    rc = flush(p);
    if (rc != SQLITE_OK) return rc;
  }
  if (p->db == 0 || amount <= 0 || amount > MAX_WRITE || reserve(p, amount) != SQLITE_OK) {
    /* Not to be gathered, too large to, or no memory to: write it as SQLite asked. */
    rc = flush(p);
    if (rc != SQLITE_OK) return rc;
    return fwd_write(f, data, amount, offset);
  }
  if (p->held == 0) p->start = offset;
  memcpy(p->buf + p->held, bytes, (size_t)amount);
  p->held += amount;
  if (completes_commit && !commit_header) return flush(p);
  return SQLITE_OK;
}

/* The WAL's methods that first write what is gathered: the file then looks to the "unix"
** VFS exactly as it would have without gathering. */
#define FLUSH_THEN(f) \
  do { \
    int flushed = flush((WalFile *)(f)); \
    if (flushed != SQLITE_OK) return flushed; \
  } while (0)

static int wal_read(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
  FLUSH_THEN(f);
  return fwd_read(f, out, amount, offset);
}
static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
  FLUSH_THEN(f);
  ((WalFile *)f)->known_end = 0;
  return fwd_truncate(f, size);
}
static int wal_sync(sqlite3_file *f, int flags) {
  FLUSH_THEN(f);
  return fwd_sync(f, flags);
}
static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  FLUSH_THEN(f);
  return fwd_file_size(f, size);
}
static int wal_file_control(sqlite3_file *f, int op, void *arg) {
  FLUSH_THEN(f);
  return fwd_file_control(f, op, arg);
}
static int wal_fetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
  FLUSH_THEN(f);
  return fwd_fetch(f, offset, amount, out);
}

static const sqlite3_io_methods wal_methods = {
  3, wal_close, wal_read, wal_write, wal_truncate, wal_sync, wal_file_size, fwd_lock,
  fwd_unlock, fwd_check_reserved_lock, wal_file_control, fwd_sector_size,
  fwd_device_characteristics, fwd_shm_map, fwd_shm_lock, fwd_shm_barrier, fwd_shm_unmap,
  wal_fetch, fwd_unfetch,
};

/* The main database file: the "unix" VFS's methods, except that a shared-memory unlock
** first writes what the connection's WAL has gathered (see the top of this file). */
static int db_close(sqlite3_file *f) {
  DbFile *p = (DbFile *)f;
  if (p->wal != 0) {
    flush(p->wal);
    p->wal->db = 0;
    p->wal = 0;
  }
  return REAL(f)->pMethods->xClose(REAL(f));
}

static int db_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  DbFile *p = (DbFile *)f;
  if ((flags & SQLITE_SHM_UNLOCK) != 0 && p->wal != 0) {
    /* A failed write is dropped: the bytes were past the WAL's valid end. */
    flush(p->wal);
  }
  return fwd_shm_lock(f, offset, n, flags);
}

static const sqlite3_io_methods db_methods = {
  3, db_close, fwd_read, fwd_write, fwd_truncate, fwd_sync, fwd_file_size, fwd_lock,
  fwd_unlock, fwd_check_reserved_lock, fwd_file_control, fwd_sector_size,
  fwd_device_characteristics, fwd_shm_map, db_shm_lock, fwd_shm_barrier, fwd_shm_unmap,
  fwd_fetch, fwd_unfetch,
};

/* Open the "unix" VFS's file behind a wrapper; on failure leave the wrapper without methods,
** as SQLite calls xClose only on a file whose pMethods is set. */
static int open_wrapped(sqlite3_filename name, Wrapped *w, int flags, int *out_flags,
                        const sqlite3_io_methods *methods) {
  int rc;
  w->real = (sqlite3_file *)((char *)w + WRAPPER_SIZE);
  rc = unix_vfs->xOpen(unix_vfs, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods != 0) w->real->pMethods->xClose(w->real);
    w->base.pMethods = 0;
    return rc;
  }
  w->base.pMethods = methods;
  return SQLITE_OK;
}

static int wal_writes_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                           int *out_flags) {
  (void)vfs;
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
    DbFile *p = (DbFile *)f;
    memset(p, 0, sizeof(*p));
    return open_wrapped(name, &p->file, flags, out_flags, &db_methods);
  }
  if ((flags & SQLITE_OPEN_WAL) != 0) {
    WalFile *p = (WalFile *)f;
    sqlite3_file *db;
    int rc;
    memset(p, 0, sizeof(*p));
    rc = open_wrapped(name, &p->file, flags, out_flags, &wal_methods);
    if (rc != SQLITE_OK) return rc;
    /* The main database file this WAL belongs to (SQLite passes a WAL's name so that it can
    ** be asked). Gather only when its unlocks can be seen, and it has no other WAL open. */
    db = sqlite3_database_file_object(name);
    if (db != 0 && db->pMethods == &db_methods && ((DbFile *)db)->wal == 0) {
      p->db = (DbFile *)db;
      p->db->wal = p;
    }
    return SQLITE_OK;
  }
  /* Neither: the "unix" VFS's own file, in the room this VFS asked for. */
  return unix_vfs->xOpen(unix_vfs, name, f, flags, out_flags);
}

static sqlite3_vfs wal_writes_vfs;

/* Called by sqlite3_initialize() (SQLITE_EXTRA_INIT). */
int oauthd_sqlite_init(const char *unused) {
  (void)unused;
  if (sqlite3_vfs_find(WAL_WRITES_VFS) != 0) return SQLITE_OK;
  unix_vfs = sqlite3_vfs_find("unix");
  if (unix_vfs == 0) return SQLITE_OK; /* not a unix build: connections fall back */
  wal_writes_vfs = *unix_vfs;
  wal_writes_vfs.pNext = 0;
  wal_writes_vfs.zName = WAL_WRITES_VFS;
  wal_writes_vfs.szOsFile = (int)WRAPPER_SIZE + unix_vfs->szOsFile;
  wal_writes_vfs.xOpen = wal_writes_open;
  return sqlite3_vfs_register(&wal_writes_vfs, 0);
}
