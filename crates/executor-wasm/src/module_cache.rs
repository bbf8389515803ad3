//! Precompiled native code for every artifact, on disk under the cache dir.
//!
//! A file is named `<artifact sha256>-<engine fingerprint>.cwasm`: the fingerprint
//! changes with wasmtime's version and the engine's settings, so a stale file is never
//! loaded by an incompatible engine. Files are written to a temp name and renamed, so a
//! reader sees a whole file or none. The directory is derived state: deleting it only
//! costs recompiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use minifaas_core::{Artifact, Error, Result};
use wasmtime::{Engine, Module};

pub(crate) struct ModuleCache {
    dir: PathBuf,
    fingerprint: String,
}

impl ModuleCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::platform_ctx(&format!("creating {}", dir.display()), e))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.fingerprint))
    }

    /// The module for `artifact`, and whether it had to be compiled.
    pub(crate) async fn load_or_compile(
        &self,
        engine: &Engine,
        artifact: &Artifact,
    ) -> Result<(Module, bool)> {
        // The sha256 names a file: accept nothing but hex.
        if artifact.sha256.len() != 64 || !artifact.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::platform(format!(
                "artifact hash '{}' is not a sha256",
                artifact.sha256
            )));
        }
        let path = self.path_for(&artifact.sha256);
        let engine = engine.clone();
        let bytes = artifact.bytes.clone();
        tokio::task::spawn_blocking(move || {
            if path.exists() {
                match load(&engine, &path) {
                    Ok(module) => return Ok((module, false)),
                    Err(err) => {
                        tracing::warn!(path = %path.display(), %err, "discarding unreadable precompiled module");
                    }
                }
            }
            let native = engine.precompile_module(&bytes).map_err(|e| {
                Error::build_failed(format!("the module is not valid WebAssembly: {e:#}"))
            })?;
            write_atomically(&path, &native)
                .map_err(|e| Error::platform_ctx(&format!("writing {}", path.display()), e))?;
            let module = load(&engine, &path)
                .map_err(|e| Error::platform_ctx("loading a freshly compiled module", e))?;
            Ok((module, true))
        })
        .await
        .map_err(|e| Error::platform_ctx("compiling a module", e))?
    }
}

fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: files in this directory are only ever written by `precompile_module` of an
    // engine with the same fingerprint, through a rename, so they are complete and were
    // produced by wasmtime itself. Loading from a file lets wasmtime map it and use
    // copy-on-write memory images.
    unsafe { Module::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
