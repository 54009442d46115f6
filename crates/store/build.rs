//! Builds `sqlite/wal_writes.c`, the VFS that writes each commit's WAL frames in one call
//! instead of two per page (see that file). SQLite registers it when it initialises
//! (`SQLITE_EXTRA_INIT` in .cargo/config.toml), so nothing in Rust calls into it and the
//! object must be linked whole: nothing else refers to it before SQLite's own archive does.
fn main() {
    let include = std::env::var("DEP_SQLITE3_INCLUDE")
        .expect("libsqlite3-sys (bundled) passes the path of its sqlite3.h");
    println!("cargo:rerun-if-changed=sqlite/wal_writes.c");
    cc::Build::new()
        .file("sqlite/wal_writes.c")
        .include(include)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .link_lib_modifier("+whole-archive")
        .compile("oauthd_wal_writes");
}
