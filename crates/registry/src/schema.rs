//! The schema, as an ordered list of migrations. `PRAGMA user_version` records how many
//! have run; each runs once, in a transaction, in order.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: functions and their versions.
    "CREATE TABLE functions (
        name            TEXT PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        current_version INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE TABLE versions (
        name            TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        version         INTEGER NOT NULL,
        lang            TEXT NOT NULL,
        config          TEXT NOT NULL,
        source_sha256   TEXT NOT NULL,
        source_size     INTEGER NOT NULL,
        artifact_sha256 TEXT NOT NULL,
        artifact_kind   TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    );",
    // 2: API keys, stored by the SHA-256 of their secret.
    "CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        hash        TEXT NOT NULL UNIQUE,
        scopes      TEXT NOT NULL,
        rate_limit  REAL,
        created_at  INTEGER NOT NULL
    );",
    // 3: invocation records, written in batches off the request path. One index only:
    // every insert pays for each; pruning by age (once a minute) may scan.
    "CREATE TABLE invocations (
        id          TEXT PRIMARY KEY,
        function    TEXT NOT NULL,
        version     INTEGER NOT NULL,
        status      INTEGER NOT NULL,
        started_at  INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        wait_ms     REAL NOT NULL,
        cold        INTEGER NOT NULL,
        init_ms     REAL,
        instance    INTEGER,
        error       TEXT,
        logs        TEXT NOT NULL
    );
    CREATE INDEX invocations_by_function ON invocations (function, started_at);",
];

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
