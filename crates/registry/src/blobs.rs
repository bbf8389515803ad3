//! Content-addressed blobs: a file per sha256, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use minifaas_core::{Error, Result, sha256_hex};

pub struct BlobStore {
    dir: PathBuf,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl BlobStore {
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::platform_ctx(&format!("creating {}", dir.display()), e))?;
        Ok(Self { dir })
    }

    fn path(&self, sha256: &str) -> Result<PathBuf> {
        // Only a well-formed hash ever becomes a path.
        if !is_sha256(sha256) {
            return Err(Error::platform(format!("'{sha256}' is not a sha256")));
        }
        Ok(self.dir.join(sha256))
    }

    /// Stores `bytes` durably and returns their sha256. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = sha256_hex(bytes);
        let path = self.path(&sha256)?;
        if path.exists() {
            return Ok(sha256);
        }
        let write = || -> std::io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-")
                .tempfile_in(&self.dir)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| Error::platform_ctx("writing a blob", e))?;
        Ok(sha256)
    }

    pub fn get(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path(sha256)?;
        std::fs::read(&path).map_err(|e| Error::platform_ctx(&format!("reading blob {sha256}"), e))
    }

    /// Removes every blob (and leftover temp file) whose name `keep` rejects.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<usize> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| Error::platform_ctx("listing blobs", e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale_tmp = name.starts_with(".tmp-");
            if (stale_tmp || (is_sha256(name) && !keep(name)))
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
