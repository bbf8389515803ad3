//! minifaas-registry: where functions live.
//!
//! - `schema.rs`: the SQLite schema and its migrations (`PRAGMA user_version`);
//! - `blobs.rs`: the content-addressed blob store, `<data>/blobs/<sha256>`;
//! - `sqlite.rs`: the [`Store`](minifaas_core::Store) on SQLite (WAL), the default.
//!
//! Invariants: a version row is committed only after every blob it names is durable
//! (temp file, fsync, rename); a function's current version flips in the same
//! transaction that inserts the version; so a crash at any point leaves the old version
//! or the new one. Blobs no row names (left by a crash mid-deploy, or by a delete) are
//! removed, under the same lock that serializes writes, so a blob is never removed while
//! a deploy is about to name it.

mod blobs;
mod schema;
mod sqlite;

pub use blobs::BlobStore;
pub use sqlite::SqliteStore;
