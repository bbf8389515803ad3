//! The SQLite [`Store`]: one connection behind a mutex, used from blocking threads.
//!
//! One writer is all SQLite allows anyway; reads are rare (the invoke path reads the
//! scheduler's in-memory route table, never the database).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use minifaas_core::{
    ArtifactKind, Error, FunctionConfig, FunctionName, FunctionRecord, InvocationRecord,
    InvocationStore, KeyRecord, KeyStore, Lang, NewVersion, Result, Scopes, Store, VersionRecord,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::blobs::BlobStore;
use crate::schema;

struct Inner {
    conn: Connection,
    blobs: BlobStore,
    /// The last `PRAGMA data_version` seen (the change feed).
    data_version: Option<i64>,
}

pub struct SqliteStore {
    inner: Arc<Mutex<Inner>>,
}

fn db_err(err: rusqlite::Error) -> Error {
    Error::platform_ctx("database", err)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const SELECT_CURRENT: &str = "SELECT f.name, f.id, f.current_version, f.created_at, f.updated_at,
        v.version, v.lang, v.config, v.source_sha256, v.source_size, v.artifact_sha256,
        v.artifact_kind, v.created_at
    FROM functions f JOIN versions v ON v.name = f.name AND v.version = f.current_version";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<(FunctionRecord, VersionRecord)>> {
    let name: String = row.get(0)?;
    let lang: String = row.get(6)?;
    let config: String = row.get(7)?;
    let kind: String = row.get(11)?;
    let function_fields = (
        row.get::<_, String>(1)?,
        row.get::<_, u32>(2)?,
        row.get::<_, i64>(3)?,
        row.get::<_, i64>(4)?,
    );
    let version_fields = (
        row.get::<_, u32>(5)?,
        row.get::<_, String>(8)?,
        row.get::<_, i64>(9)?,
        row.get::<_, String>(10)?,
        row.get::<_, i64>(12)?,
    );
    Ok((|| {
        let name = FunctionName::parse(&name)?;
        let lang = Lang::parse(&lang)?;
        let config_json: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| Error::platform_ctx("stored config is not JSON", e))?;
        let config = FunctionConfig::from_json(&config_json)?;
        let artifact_kind = ArtifactKind::parse(&kind)
            .ok_or_else(|| Error::platform(format!("unknown artifact kind '{kind}'")))?;
        let (id, current_version, created_at, updated_at) = function_fields;
        let (version, source_sha256, source_size, artifact_sha256, version_created_at) =
            version_fields;
        Ok((
            FunctionRecord {
                id,
                name: name.clone(),
                current_version,
                created_at,
                updated_at,
            },
            VersionRecord {
                name,
                version,
                lang,
                config,
                source_sha256,
                source_size: source_size as u64,
                artifact_sha256,
                artifact_kind,
                created_at: version_created_at,
            },
        ))
    })())
}

impl SqliteStore {
    /// Opens (creating if needed) `<data>/minifaas.db` and `<data>/blobs/`, migrates the
    /// schema, and removes blobs no version names.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::platform_ctx(&format!("creating data dir {}", data_dir.display()), e)
        })?;
        let mut conn = Connection::open(data_dir.join("minifaas.db")).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        schema::migrate(&mut conn).map_err(db_err)?;
        let blobs = BlobStore::open(data_dir.join("blobs"))?;
        let inner = Inner {
            conn,
            blobs,
            data_version: None,
        };
        let removed = inner.collect_garbage()?;
        if removed > 0 {
            tracing::info!(removed, "removed blobs that no version names");
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner
                .lock()
                .map_err(|_| Error::platform("registry lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::platform_ctx("registry task", e))?
    }
}

impl Inner {
    fn collect_garbage(&self) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source_sha256 FROM versions UNION SELECT artifact_sha256 FROM versions",
            )
            .map_err(db_err)?;
        let live: std::collections::HashSet<String> = stmt
            .query_map([], |row| row.get(0))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)?;
        self.blobs.retain(|sha| live.contains(sha))
    }

    fn current(&self, name_or_id: &str) -> Result<Option<(FunctionRecord, VersionRecord)>> {
        let sql = format!(
            "{SELECT_CURRENT} WHERE f.name = ?1 OR f.id = ?1 ORDER BY f.name = ?1 DESC LIMIT 1"
        );
        let row = self
            .conn
            .query_row(&sql, [name_or_id], read_row)
            .optional()
            .map_err(db_err)?;
        row.transpose()
    }

    /// Writes the blobs, then inserts the version (and the function, if `create`) and
    /// flips the current version, in one transaction.
    fn write_version(
        &mut self,
        name: &FunctionName,
        version: NewVersion,
        create: bool,
    ) -> Result<(FunctionRecord, VersionRecord)> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
                [name.as_str()],
                |row| row.get(0),
            )
            .map_err(db_err)?;
        if create && exists {
            return Err(Error::name_taken(name.as_str()));
        }
        if !create && !exists {
            return Err(Error::function_not_found());
        }
        let source_sha256 = self.blobs.put(&version.source)?;
        let artifact_sha256 = self.blobs.put(&version.artifact.bytes)?;
        let config = version.config.to_json().to_string();
        let at = now();
        let tx = self.conn.transaction().map_err(db_err)?;
        let number: u32 = if create {
            tx.execute(
                "INSERT INTO functions (name, id, current_version, created_at, updated_at)
                 VALUES (?1, ?2, 1, ?3, ?3)",
                params![name.as_str(), format!("{name}_{at}"), at],
            )
            .map_err(db_err)?;
            1
        } else {
            let latest: u32 = tx
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?1",
                    [name.as_str()],
                    |row| row.get(0),
                )
                .map_err(db_err)?;
            latest + 1
        };
        tx.execute(
            "INSERT INTO versions (name, version, lang, config, source_sha256, source_size,
                artifact_sha256, artifact_kind, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                name.as_str(),
                number,
                version.lang.as_str(),
                config,
                source_sha256,
                version.source.len() as i64,
                artifact_sha256,
                version.artifact.kind.as_str(),
                at
            ],
        )
        .map_err(db_err)?;
        tx.execute(
            "UPDATE functions SET current_version = ?2, updated_at = ?3 WHERE name = ?1",
            params![name.as_str(), number, at],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        self.current(name.as_str())?
            .ok_or_else(|| Error::platform("version vanished after commit"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_function(
        &self,
        name: &FunctionName,
        version: NewVersion,
    ) -> Result<(FunctionRecord, VersionRecord)> {
        let name = name.clone();
        self.with(move |inner| inner.write_version(&name, version, true))
            .await
    }

    async fn add_version(
        &self,
        name: &FunctionName,
        version: NewVersion,
    ) -> Result<(FunctionRecord, VersionRecord)> {
        let name = name.clone();
        self.with(move |inner| inner.write_version(&name, version, false))
            .await
    }

    async fn get_function(
        &self,
        name_or_id: &str,
    ) -> Result<Option<(FunctionRecord, VersionRecord)>> {
        let key = name_or_id.to_owned();
        self.with(move |inner| inner.current(&key)).await
    }

    async fn list_functions(&self) -> Result<Vec<(FunctionRecord, VersionRecord)>> {
        self.with(|inner| {
            let sql = format!("{SELECT_CURRENT} ORDER BY f.name");
            let mut stmt = inner.conn.prepare(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map([], read_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn changed_elsewhere(&self) -> Result<bool> {
        self.with(|inner| {
            // Changes only when another connection commits; this server's own writes go
            // through this same connection and do not count.
            let version: i64 = inner
                .conn
                .query_row("PRAGMA data_version", [], |row| row.get(0))
                .map_err(db_err)?;
            let changed = inner.data_version.is_some_and(|seen| seen != version);
            inner.data_version = Some(version);
            Ok(changed)
        })
        .await
    }

    async fn delete_function(&self, name: &FunctionName) -> Result<bool> {
        let name = name.clone();
        self.with(move |inner| {
            let tx = inner.conn.transaction().map_err(db_err)?;
            tx.execute("DELETE FROM versions WHERE name = ?1", [name.as_str()])
                .map_err(db_err)?;
            let deleted = tx
                .execute("DELETE FROM functions WHERE name = ?1", [name.as_str()])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            inner.collect_garbage()?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn get_blob(&self, sha256: &str) -> Result<Bytes> {
        let sha256 = sha256.to_owned();
        self.with(move |inner| inner.blobs.get(&sha256).map(Bytes::from))
            .await
    }
}

fn read_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KeyRecord>> {
    let scopes: String = row.get(3)?;
    let record = (
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, Option<f64>>(4)?,
        row.get::<_, i64>(5)?,
    );
    Ok(Scopes::from_joined(&scopes).map(|scopes| KeyRecord {
        id: record.0,
        name: record.1,
        hash: record.2,
        scopes,
        rate_limit: record.3,
        created_at: record.4,
    }))
}

const SELECT_KEY: &str = "SELECT id, name, hash, scopes, rate_limit, created_at FROM api_keys";

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, key: KeyRecord) -> Result<()> {
        self.with(move |inner| {
            let inserted = inner.conn.execute(
                "INSERT INTO api_keys (id, name, hash, scopes, rate_limit, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![
                    key.id,
                    key.name,
                    key.hash,
                    key.scopes.joined(),
                    key.rate_limit,
                    key.created_at
                ],
            );
            match inserted.map_err(db_err)? {
                0 => Err(Error::new(
                    minifaas_core::ErrorKind::Conflict,
                    "key_exists",
                    "a key with this id or secret already exists",
                )),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.with(|inner| {
            let sql = format!("{SELECT_KEY} ORDER BY created_at, id");
            let mut stmt = inner.conn.prepare(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map([], read_key)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>> {
        let hash = hash.to_owned();
        self.with(move |inner| {
            let sql = format!("{SELECT_KEY} WHERE hash = ?1");
            inner
                .conn
                .query_row(&sql, [hash], read_key)
                .optional()
                .map_err(db_err)?
                .transpose()
        })
        .await
    }

    async fn delete_key(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.with(move |inner| {
            let deleted = inner
                .conn
                .execute("DELETE FROM api_keys WHERE id = ?1", [id])
                .map_err(db_err)?;
            Ok(deleted > 0)
        })
        .await
    }
}

const SELECT_INVOCATION: &str = "SELECT id, function, version, status, started_at, duration_ms,
        wait_ms, cold, init_ms, instance, error, logs FROM invocations";

fn read_invocation(row: &rusqlite::Row<'_>) -> rusqlite::Result<InvocationRecord> {
    Ok(InvocationRecord {
        id: row.get(0)?,
        function: row.get(1)?,
        version: row.get(2)?,
        status: row.get(3)?,
        started_at: row.get(4)?,
        duration_ms: row.get(5)?,
        wait_ms: row.get(6)?,
        cold: row.get::<_, i64>(7)? != 0,
        init_ms: row.get(8)?,
        instance: row.get::<_, Option<i64>>(9)?.map(|i| i as u64),
        error: row.get(10)?,
        logs: row.get(11)?,
    })
}

#[async_trait]
impl InvocationStore for SqliteStore {
    async fn insert_invocations(&self, records: Vec<InvocationRecord>) -> Result<()> {
        self.with(move |inner| {
            let tx = inner.conn.transaction().map_err(db_err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO invocations (id, function, version, status,
                            started_at, duration_ms, wait_ms, cold, init_ms, instance, error, logs)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .map_err(db_err)?;
                for r in &records {
                    insert
                        .execute(params![
                            r.id,
                            r.function,
                            r.version,
                            r.status,
                            r.started_at,
                            r.duration_ms,
                            r.wait_ms,
                            r.cold as i64,
                            r.init_ms,
                            r.instance.map(|i| i as i64),
                            r.error,
                            r.logs
                        ])
                        .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let id = id.to_owned();
        self.with(move |inner| {
            let sql = format!("{SELECT_INVOCATION} WHERE id = ?1");
            inner
                .conn
                .query_row(&sql, [id], read_invocation)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn list_invocations(
        &self,
        function: &str,
        status: Option<u16>,
        limit: usize,
    ) -> Result<Vec<InvocationRecord>> {
        let function = function.to_owned();
        self.with(move |inner| {
            // A one-digit status is a class: 5 means 500-599.
            let (low, high) = match status {
                Some(class) if class < 10 => (class as i64 * 100, class as i64 * 100 + 99),
                Some(exact) => (exact as i64, exact as i64),
                None => (0, 999),
            };
            let sql = format!(
                "{SELECT_INVOCATION} WHERE function = ?1 AND status BETWEEN ?2 AND ?3
                 ORDER BY started_at DESC, rowid DESC LIMIT ?4"
            );
            let mut stmt = inner.conn.prepare(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(params![function, low, high, limit as i64], read_invocation)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            Ok(rows)
        })
        .await
    }

    async fn prune_invocations(&self, keep: usize, before: i64) -> Result<usize> {
        self.with(move |inner| {
            let by_age = inner
                .conn
                .execute("DELETE FROM invocations WHERE started_at < ?1", [before])
                .map_err(db_err)?;
            let by_count = inner
                .conn
                .execute(
                    "DELETE FROM invocations WHERE rowid NOT IN
                        (SELECT rowid FROM invocations ORDER BY started_at DESC LIMIT ?1)",
                    [keep as i64],
                )
                .map_err(db_err)?;
            Ok(by_age + by_count)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minifaas_core::Artifact;

    fn new_version(source: &'static [u8]) -> NewVersion {
        NewVersion {
            lang: Lang::Wasm,
            config: FunctionConfig::default(),
            source: Bytes::from_static(source),
            artifact: Artifact::new(ArtifactKind::WasiModule, Bytes::from_static(source)),
        }
    }

    #[tokio::test]
    async fn versions_are_numbered_and_the_current_one_flips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let name = FunctionName::parse("f").unwrap();
        let (f, v) = store
            .create_function(&name, new_version(b"one"))
            .await
            .unwrap();
        assert_eq!((f.current_version, v.version), (1, 1));
        assert!(f.id.starts_with("f_"));
        let err = store
            .create_function(&name, new_version(b"again"))
            .await
            .unwrap_err();
        assert_eq!(err.code, "name_taken");
        let (f2, v2) = store.add_version(&name, new_version(b"two")).await.unwrap();
        assert_eq!((f2.current_version, v2.version), (2, 2));
        assert_eq!(f2.id, f.id);
        let by_id = store.get_function(&f.id).await.unwrap().unwrap();
        assert_eq!(by_id.1.version, 2);
        assert_eq!(
            &store.get_blob(&v2.source_sha256).await.unwrap()[..],
            b"two"
        );
    }

    #[tokio::test]
    async fn delete_removes_rows_and_unreferenced_blobs_and_reopen_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let a = FunctionName::parse("a").unwrap();
        let b = FunctionName::parse("b").unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .create_function(&a, new_version(b"aaa"))
                .await
                .unwrap();
            store
                .create_function(&b, new_version(b"bbb"))
                .await
                .unwrap();
            assert!(store.delete_function(&a).await.unwrap());
            assert!(!store.delete_function(&a).await.unwrap());
        }
        // A stray blob, as a crash between blob write and commit would leave.
        std::fs::write(dir.path().join("blobs").join("0".repeat(64)), b"orphan").unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(store.get_function("a").await.unwrap().is_none());
        let list = store.list_functions().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0.name.as_str(), "b");
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert_eq!(blobs, 1, "only b's blob is left");
    }

    #[tokio::test]
    async fn keys_are_stored_by_hash_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let key = KeyRecord {
            id: "key_1".into(),
            name: "ci".into(),
            scopes: Scopes::parse(&["invoke"]).unwrap(),
            rate_limit: Some(5.0),
            hash: minifaas_core::auth::key_hash("mfk_secret"),
            created_at: 1,
        };
        store.create_key(key.clone()).await.unwrap();
        assert!(store.create_key(key.clone()).await.is_err());
        let found = store.key_by_hash(&key.hash).await.unwrap();
        assert_eq!(found.as_ref(), Some(&key));
        assert_eq!(store.list_keys().await.unwrap(), vec![key.clone()]);
        assert!(store.delete_key("key_1").await.unwrap());
        assert!(!store.delete_key("key_1").await.unwrap());
        assert_eq!(store.key_by_hash(&key.hash).await.unwrap(), None);
    }

    #[tokio::test]
    async fn invocation_records_are_listed_newest_first_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let record = |id: &str, status: u16, at: i64| InvocationRecord {
            id: id.into(),
            function: "f".into(),
            version: 1,
            status,
            started_at: at,
            duration_ms: 1.5,
            wait_ms: 0.1,
            cold: at == 1,
            init_ms: (at == 1).then_some(30.0),
            instance: Some(3),
            error: None,
            logs: "hi\n".into(),
        };
        store
            .insert_invocations(vec![
                record("a", 200, 1),
                record("b", 502, 2),
                record("c", 200, 3),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.invocation("a").await.unwrap(),
            Some(record("a", 200, 1))
        );
        let all = store.list_invocations("f", None, 10).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        let failed = store.list_invocations("f", Some(5), 10).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(store.prune_invocations(2, 0).await.unwrap(), 1);
        assert_eq!(store.invocation("a").await.unwrap(), None);
        assert_eq!(store.prune_invocations(10, 3).await.unwrap(), 1);
    }
}
