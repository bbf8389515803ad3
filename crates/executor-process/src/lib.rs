//! minifaas-executor-process: Python, JavaScript and PHP functions in warm worker
//! processes, script-mode functions, and static HTML.
//!
//! - `shims/`: the language shims, shipped inside the binary and written to the cache
//!   dir at start-up; each loads the user's handler once and serves frames in a loop;
//! - `protocol.rs`: the frames over the worker's private pipe pair (fds 3 and 4);
//! - `worker.rs`: one worker, its reaper task and its log forwarding;
//! - `zygote.rs`: the Python fork server (`shims/python_zygote.py`): it has imported the
//!   shim and common modules once, and forks a worker per cold start;
//! - `script.rs`: script mode (a process per invocation) and static pages.
//!
//! Every process is started through `minifaas-sandbox`. Invariants: a worker serves one
//! request at a time; a worker past its deadline is killed and its request answered 504;
//! a worker that dies is reaped and its request answered 502, and the next request gets
//! a fresh one; a worker is stopped when the scheduler drops it, and no child outlives
//! the server
//! (kill-on-drop, parent-death signal).

mod protocol;
mod script;
mod worker;
mod zygote;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use minifaas_core::config::DEFAULT_MEMORY_MB;
use minifaas_core::{
    Artifact, ArtifactKind, CODE_MANIFEST_FILE, Error, Executor, FunctionConfig, FunctionName,
    Instance, InstanceDefaults, PreparedFunction, Result, SharedInstance,
};
use minifaas_sandbox::{Isolation, Limits, WorkerCommand};
use serde::Deserialize;

use crate::script::{PreparedScript, StaticPage};
use crate::worker::{Launch, Spares, Worker, WorkerSpec};
use crate::zygote::Zygote;

const PYTHON_SHIM: &str = include_str!("shims/python.py");
const NODE_SHIM: &str = include_str!("shims/node.js");
const PHP_SHIM: &str = include_str!("shims/php.php");
const PYTHON_ZYGOTE: &str = include_str!("shims/python_zygote.py");

/// The interpreters, found once at start-up (`None`: that language cannot run here).
#[derive(Debug, Clone, Default)]
pub struct Interpreters {
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub php: Option<PathBuf>,
}

/// Settings of worker processes.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Most workers one version may have unless its config says (`max_instances`).
    pub default_max_instances: usize,
    /// How long a worker may take to load its handler.
    pub startup_timeout: Duration,
    /// Largest response a function may return.
    pub max_response_bytes: usize,
    /// Start Python workers by forking a zygote (fast cold starts) rather than a fresh
    /// interpreter each.
    pub python_zygote: bool,
    /// Generic Node workers kept idle to be specialized on first use (0: none).
    pub node_spares: usize,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            default_max_instances: 4,
            startup_timeout: Duration::from_secs(15),
            max_response_bytes: 6 * 1024 * 1024,
            python_zygote: true,
            node_spares: 2,
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
    /// Generic idle Node workers, specialized on first use.
    node_spares: Option<Arc<Spares>>,
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
            ("python_zygote.py", PYTHON_ZYGOTE),
        ] {
            let path = shim_dir.join(file);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text)
                    .map_err(|e| Error::platform_ctx(&format!("writing {}", path.display()), e))?;
            }
        }
        // A generic worker is started before anyone knows which function it will run,
        // so it cannot be given one function's filesystem view: sandboxed servers start
        // workers per function instead.
        let spares_allowed = minifaas_sandbox::active().is_none();
        let node_spares = match (&interpreters.node, options.node_spares) {
            (Some(node), spares) if spares > 0 && spares_allowed => Some(Spares::new(
                shim_worker(
                    node.clone(),
                    &shim_dir,
                    "node.js",
                    node_flags(DEFAULT_MEMORY_MB),
                    None,
                ),
                "node-generic",
                spares,
                options.startup_timeout,
            )),
            _ => None,
        };
        Ok(Self {
            interpreters,
            options,
            code_root,
            shim_dir,
            node_spares,
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
            // Workers run as an unprivileged user: the code must be readable by others.
            std::fs::set_permissions(
                staging.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )?;
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

    /// What a worker or script of one function may see and use: its interpreter's
    /// installation, the shims and its own code, read-only; its memory; a process cap.
    fn isolation(&self, interpreter: &Path, code_dir: &Path, memory_mb: u64) -> Isolation {
        Isolation::new()
            .runtime(interpreter)
            .read_only(&self.shim_dir)
            .read_only(code_dir)
            .memory(memory_mb.max(MIN_MEMORY_MB) * 1024 * 1024)
            .processes(WORKER_MAX_PROCESSES)
    }

    fn environment(&self, config: &FunctionConfig) -> Vec<(String, String)> {
        let mut env = base_environment();
        env.extend(
            config
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        env
    }
}

/// Processes and threads one worker may have (Node alone runs about a dozen threads);
/// a fork bomb stops here.
const WORKER_MAX_PROCESSES: u64 = 128;

/// Smallest memory limit given to a worker: an interpreter needs this much to start.
const MIN_MEMORY_MB: u64 = 16;

/// The error for a function the kernel killed at its memory limit.
pub(crate) fn memory_exceeded(function: &str, limit: Option<u64>) -> Error {
    let limit = limit
        .map(|b| format!(" of {} MiB", b / (1024 * 1024)))
        .unwrap_or_default();
    Error::function_failed(
        "memory_limit_exceeded",
        format!(
            "function '{function}' was killed: memory limit exceeded (its `memory` config{limit}); raise `memory` or use less"
        ),
    )
}

/// What every worker and script sees, before the function's own `environment`.
fn base_environment() -> Vec<(String, String)> {
    vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME".to_owned(), "/tmp".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
    ]
}

/// Python's flags for workers and zygotes: -I ignores PYTHON* variables and the user
/// site; -S skips site (a fast start; dependencies live in the function's own deps/);
/// -B writes no bytecode; -u leaves the log unbuffered.
fn python_flags() -> Vec<OsString> {
    ["-I", "-S", "-B", "-u"].map(OsString::from).to_vec()
}

/// Node's flags: the function's memory as its heap limit.
fn node_flags(memory_mb: u64) -> Vec<OsString> {
    vec![format!("--max-old-space-size={memory_mb}").into()]
}

/// A process that starts as a shim with no function loaded yet (a zygote, a generic
/// Node worker): it runs in the shim dir with the base environment; the function's own
/// environment reaches it with what to load.
fn shim_worker(
    program: PathBuf,
    shim_dir: &Path,
    shim: &str,
    mut args: Vec<OsString>,
    isolation: Option<Isolation>,
) -> WorkerCommand {
    args.push(shim_dir.join(shim).into_os_string());
    WorkerCommand {
        program,
        args,
        env: base_environment()
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        cwd: shim_dir.to_owned(),
        limits: worker_limits(),
        isolation,
    }
}

/// Limits of long-lived workers (and the zygote they fork from).
fn worker_limits() -> Limits {
    Limits {
        wall_time: Duration::MAX,
        // CPU time is bounded per request by the timeout; this stops a runaway worker
        // that somehow escaped it.
        cpu_seconds: 24 * 3600,
        ..Limits::default()
    }
}

/// A warm-worker function: starts workers on demand. The worker started at prepare
/// (which proved the handler loads) is handed out by the first `start_instance`.
struct PreparedHandler {
    spec: Arc<WorkerSpec>,
    spare: std::sync::Mutex<Option<Arc<Worker>>>,
    defaults: InstanceDefaults,
}

#[async_trait]
impl PreparedFunction for PreparedHandler {
    fn defaults(&self) -> InstanceDefaults {
        self.defaults
    }

    async fn start_instance(&self) -> Result<Arc<dyn Instance>> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match spare {
            Some(worker) if worker.is_usable() => Ok(worker),
            _ => Ok(Worker::start(&self.spec).await?),
        }
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
            return Ok(Arc::new(SharedInstance {
                instance: Arc::new(StaticPage {
                    body: artifact.bytes.clone(),
                }),
                defaults: InstanceDefaults {
                    concurrency: 1024,
                    max_instances: 1,
                },
            }));
        }
        let interpreter = self.interpreter(artifact.kind)?.to_owned();
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
        let isolation = self.isolation(&interpreter, &code_dir, memory_mb);

        if manifest.mode == "script" {
            let mut args: Vec<String> = match artifact.kind {
                ArtifactKind::PythonArchive => vec!["-I".into(), "-S".into(), "-B".into()],
                ArtifactKind::PhpArchive => vec![format!("-dmemory_limit={memory_mb}M")],
                _ => vec![format!("--max-old-space-size={memory_mb}")],
            };
            args.push(manifest.entry.clone());
            let script = PreparedScript {
                function: name.to_string(),
                program: interpreter,
                args,
                cwd: code_dir,
                env,
                timeout: config.timeout,
                max_output_bytes: self.options.max_response_bytes,
                isolation,
            };
            // A process per request: the "instance" only bounds how many run at once.
            return Ok(Arc::new(SharedInstance {
                instance: Arc::new(script),
                defaults: InstanceDefaults {
                    concurrency: 4,
                    max_instances: self.options.default_max_instances,
                },
            }));
        }

        let node_spares = self
            .node_spares
            .as_ref()
            .filter(|_| memory_mb == DEFAULT_MEMORY_MB);
        let zygote = self.options.python_zygote;
        let launch = match (zygote, node_spares, artifact.kind) {
            (_, Some(spares), ArtifactKind::NodeArchive) => {
                // Generic workers run with the default heap, so only functions with the
                // default memory use them.
                spares.refill();
                let load = serde_json::json!({
                    "load": {
                        "code_dir": code_dir,
                        "entry": manifest.entry,
                        "env": env.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                    },
                    "body_len": 0,
                });
                Launch::Specialize {
                    spares: spares.clone(),
                    load: load.to_string().into_bytes(),
                    fallback: shim_worker(
                        interpreter,
                        &self.shim_dir,
                        "node.js",
                        node_flags(memory_mb),
                        None,
                    ),
                }
            }
            (true, _, ArtifactKind::PythonArchive) => {
                let request = serde_json::json!({
                    "code_dir": code_dir,
                    "entry": manifest.entry,
                    "env": env.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                });
                // This version's own fork server: its sandbox shows this code only.
                let zygote = Arc::new(Zygote::new(shim_worker(
                    interpreter.clone(),
                    &self.shim_dir,
                    "python_zygote.py",
                    python_flags(),
                    Some(isolation.clone()),
                )));
                Launch::Fork {
                    zygote,
                    request: request.to_string().into_bytes(),
                }
            }
            _ => {
                let (shim, mut args): (&str, Vec<OsString>) = match artifact.kind {
                    ArtifactKind::PythonArchive => ("python.py", python_flags()),
                    ArtifactKind::NodeArchive => ("node.js", node_flags(memory_mb)),
                    _ => (
                        "php.php",
                        vec![
                            format!("-dmemory_limit={memory_mb}M").into(),
                            "-ddisplay_errors=stderr".into(),
                        ],
                    ),
                };
                args.push(self.shim_dir.join(shim).into_os_string());
                args.push(code_dir.clone().into_os_string());
                args.push(manifest.entry.clone().into());
                Launch::Spawn(WorkerCommand {
                    program: interpreter,
                    args,
                    env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                    cwd: code_dir,
                    limits: worker_limits(),
                    isolation: Some(isolation.clone()),
                })
            }
        };
        let spec = Arc::new(WorkerSpec {
            function: name.to_string(),
            launch,
            startup_timeout: self.options.startup_timeout,
            timeout: config.timeout,
            max_response_bytes: self.options.max_response_bytes,
            memory_bytes: isolation.memory_bytes,
        });
        // Start one worker now: it proves the handler loads (a failure is a deploy
        // error, not a surprise at the first call), and becomes the first instance.
        let first = Worker::start(&spec).await.map_err(|err| {
            if err.code == "function_load_failed" {
                Error::build_failed(err.message)
            } else {
                err
            }
        })?;
        Ok(Arc::new(PreparedHandler {
            spec,
            spare: std::sync::Mutex::new(Some(first)),
            defaults: InstanceDefaults {
                concurrency: 1,
                max_instances: self.options.default_max_instances,
            },
        }))
    }
}
