//! minifaas-executor-process: Python, JavaScript and PHP functions in warm worker
//! processes, script-mode functions, and static HTML.
//!
//! - `shims/`: the language shims, shipped inside the binary and written to the cache
//!   dir at start-up; each loads the user's handler once and serves frames in a loop;
//! - `protocol.rs`: the frames over the worker's private pipe pair (fds 3 and 4);
//! - `worker.rs`: one worker, its reaper task and its log forwarding;
//! - `pool.rs`: the workers of one version (mechanics only; counts come from config);
//! - `script.rs`: script mode (a process per invocation) and static pages.
//!
//! Every process is started through `minifaas-sandbox`. Invariants: a worker serves one
//! request at a time; a worker past its deadline is killed and its request answered 504;
//! a worker that dies is reaped and its request answered 502, and the next request gets
//! a fresh one; no worker outlives its pool, and no child outlives the server
//! (kill-on-drop, parent-death signal).

mod pool;
mod protocol;
mod script;
mod worker;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use minifaas_core::{
    Artifact, ArtifactKind, CODE_MANIFEST_FILE, Error, Executor, FunctionConfig, FunctionName,
    InvokeRequest, InvokeResponse, PreparedFunction, Result,
};
use minifaas_sandbox::{Limits, WorkerCommand};
use serde::Deserialize;

use crate::pool::Pool;
use crate::script::{PreparedScript, StaticPage};
use crate::worker::WorkerSpec;

const PYTHON_SHIM: &str = include_str!("shims/python.py");
const NODE_SHIM: &str = include_str!("shims/node.js");
const PHP_SHIM: &str = include_str!("shims/php.php");

/// The interpreters, found once at start-up (`None`: that language cannot run here).
#[derive(Debug, Clone, Default)]
pub struct Interpreters {
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub php: Option<PathBuf>,
}

/// Defaults for pools, overridable per function.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Workers started at deploy and at start-up (`min_instances`; `serve --workers`).
    pub default_min_instances: usize,
    /// Most workers one version may have (`max_instances`).
    pub default_max_instances: usize,
    /// How long a worker may take to load its handler.
    pub startup_timeout: Duration,
    /// Largest response a function may return.
    pub max_response_bytes: usize,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            default_min_instances: 0,
            default_max_instances: 4,
            startup_timeout: Duration::from_secs(15),
            max_response_bytes: 6 * 1024 * 1024,
        }
    }
}

pub struct ProcessExecutor {
    interpreters: Interpreters,
    options: ProcessOptions,
    /// Unpacked code dirs, `<cache>/code/<artifact sha256>/`.
    code_root: PathBuf,
    /// The shims, written from the binary at start-up.
    shim_dir: PathBuf,
}

#[derive(Deserialize)]
struct Manifest {
    entry: String,
    mode: String,
}

impl ProcessExecutor {
    pub fn new(
        cache_dir: &Path,
        interpreters: Interpreters,
        options: ProcessOptions,
    ) -> Result<Self> {
        let code_root = cache_dir.join("code");
        let shim_dir = cache_dir.join("shims");
        for dir in [&code_root, &shim_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::platform_ctx(&format!("creating {}", dir.display()), e))?;
        }
        for (file, text) in [
            ("python.py", PYTHON_SHIM),
            ("node.js", NODE_SHIM),
            ("php.php", PHP_SHIM),
        ] {
            let path = shim_dir.join(file);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text)
                    .map_err(|e| Error::platform_ctx(&format!("writing {}", path.display()), e))?;
            }
        }
        Ok(Self {
            interpreters,
            options,
            code_root,
            shim_dir,
        })
    }

    /// Unpacks an archive once into its content-addressed dir; returns the dir.
    async fn unpack(&self, artifact: &Artifact) -> Result<PathBuf> {
        let sha = &artifact.sha256;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::platform(format!(
                "artifact hash '{sha}' is not a sha256"
            )));
        }
        let dir = self.code_root.join(sha);
        if dir.join(CODE_MANIFEST_FILE).is_file() {
            return Ok(dir);
        }
        let bytes = artifact.bytes.clone();
        let root = self.code_root.clone();
        let target = dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let staging = tempfile::Builder::new()
                .prefix(".unpack-")
                .tempdir_in(&root)?;
            let mut archive = tar::Archive::new(std::io::Cursor::new(&bytes[..]));
            archive.set_preserve_permissions(false);
            // `unpack` refuses entries that would land outside the directory.
            archive.unpack(staging.path())?;
            match std::fs::rename(staging.path(), &target) {
                Ok(()) => {
                    // The directory now lives at `target`; do not delete it.
                    let _ = staging.keep();
                    Ok(())
                }
                // Another prepare of the same artifact won the race: keep its copy.
                Err(_) if target.join(CODE_MANIFEST_FILE).is_file() => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await
        .map_err(|e| Error::platform_ctx("unpacking a code archive", e))?
        .map_err(|e| Error::platform_ctx("unpacking a code archive", e))?;
        Ok(dir)
    }

    fn interpreter(&self, kind: ArtifactKind) -> Result<&Path> {
        let (found, lang) = match kind {
            ArtifactKind::PythonArchive => (&self.interpreters.python, "python"),
            ArtifactKind::NodeArchive => (&self.interpreters.node, "javascript"),
            ArtifactKind::PhpArchive => (&self.interpreters.php, "php"),
            _ => {
                return Err(Error::platform(format!(
                    "{} is not a process artifact",
                    kind.as_str()
                )));
            }
        };
        found.as_deref().ok_or_else(|| {
            Error::unavailable(
                "runtime_missing",
                format!("this server cannot run {lang} functions: its interpreter is not installed (run scripts/install-toolchains.sh)"),
            )
        })
    }

    fn environment(&self, config: &FunctionConfig) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/tmp".to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
            ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ];
        env.extend(
            config
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        env
    }
}

/// Reads a non-negative integer config key.
fn config_count(config: &FunctionConfig, key: &str, default: usize) -> Result<usize> {
    match config.extra.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| *n <= 1024)
            .map(|n| n as usize)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid_config",
                    format!("{key} must be a whole number from 0 to 1024, got {value}"),
                )
            }),
    }
}

/// A warm-worker function: its pool.
struct PreparedHandler {
    pool: Pool,
}

#[async_trait]
impl PreparedFunction for PreparedHandler {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.pool.invoke(&request).await
    }
}

#[async_trait]
impl Executor for ProcessExecutor {
    fn kinds(&self) -> &'static [ArtifactKind] {
        &[
            ArtifactKind::PythonArchive,
            ArtifactKind::NodeArchive,
            ArtifactKind::PhpArchive,
            ArtifactKind::StaticHtml,
        ]
    }

    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>> {
        if artifact.kind == ArtifactKind::StaticHtml {
            return Ok(Arc::new(StaticPage {
                body: artifact.bytes.clone(),
            }));
        }
        let interpreter = self.interpreter(artifact.kind)?.to_owned();
        let min_instances =
            config_count(config, "min_instances", self.options.default_min_instances)?;
        let max_instances =
            config_count(config, "max_instances", self.options.default_max_instances)?.max(1);
        if min_instances > max_instances {
            return Err(Error::invalid(
                "invalid_config",
                format!(
                    "min_instances ({min_instances}) is more than max_instances ({max_instances})"
                ),
            ));
        }
        let code_dir = self.unpack(artifact).await?;
        let manifest: Manifest = std::fs::read(code_dir.join(CODE_MANIFEST_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::platform("the code archive has no readable manifest"))?;
        // The entry names a file inside the code dir, nothing else.
        if manifest.entry.contains('/') || manifest.entry.starts_with('.') {
            return Err(Error::platform(format!(
                "bad entry '{}' in manifest",
                manifest.entry
            )));
        }
        let env = self.environment(config);
        let memory_mb = config.memory_mb;

        if manifest.mode == "script" {
            let mut args: Vec<String> = match artifact.kind {
                ArtifactKind::PythonArchive => vec!["-I".into(), "-S".into(), "-B".into()],
                ArtifactKind::PhpArchive => vec![format!("-dmemory_limit={memory_mb}M")],
                _ => vec![format!("--max-old-space-size={memory_mb}")],
            };
            args.push(manifest.entry.clone());
            return Ok(Arc::new(PreparedScript {
                function: name.to_string(),
                program: interpreter,
                args,
                cwd: code_dir,
                env,
                timeout: config.timeout,
                max_output_bytes: self.options.max_response_bytes,
            }));
        }

        let code_dir_arg: OsString = code_dir.clone().into_os_string();
        let (shim, mut args): (&str, Vec<OsString>) = match artifact.kind {
            // -I: ignore PYTHON* variables and the user site; -S: skip site (a fast
            // start; dependencies live in the function's own deps/); -u: unbuffered logs.
            ArtifactKind::PythonArchive => (
                "python.py",
                vec!["-I".into(), "-S".into(), "-B".into(), "-u".into()],
            ),
            ArtifactKind::NodeArchive => (
                "node.js",
                vec![format!("--max-old-space-size={memory_mb}").into()],
            ),
            _ => (
                "php.php",
                vec![
                    format!("-dmemory_limit={memory_mb}M").into(),
                    "-ddisplay_errors=stderr".into(),
                ],
            ),
        };
        args.push(self.shim_dir.join(shim).into_os_string());
        args.push(code_dir_arg);
        args.push(manifest.entry.clone().into());
        let command = WorkerCommand {
            program: interpreter,
            args,
            env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            cwd: code_dir,
            limits: Limits {
                wall_time: Duration::MAX,
                // CPU time is bounded per request by the timeout; this stops a runaway
                // worker that somehow escaped it.
                cpu_seconds: 24 * 3600,
                ..Limits::default()
            },
        };
        let pool = Pool::new(
            WorkerSpec {
                function: name.to_string(),
                command,
                startup_timeout: self.options.startup_timeout,
                timeout: config.timeout,
                max_response_bytes: self.options.max_response_bytes,
            },
            max_instances,
        );
        // Start at least one worker now: it proves the handler loads (a failure is a
        // deploy error, not a surprise at the first call), and the first call is warm.
        pool.prewarm(min_instances.max(1)).await.map_err(|err| {
            if err.code == "function_load_failed" {
                Error::build_failed(err.message)
            } else {
                err
            }
        })?;
        Ok(Arc::new(PreparedHandler { pool }))
    }
}
