//! The [`Builder`] that compiles sources to WASI modules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use minifaas_core::{Artifact, ArtifactKind, Builder, Error, FunctionConfig, Lang, Result};
use minifaas_sandbox::{Isolation, Limits, SandboxedCommand};

use crate::toolchain::{Toolchain, Toolchains};

/// Limits on one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Wall-clock limit of one compile (Go's first build of its runtime takes ~15 s).
    pub time_limit: Duration,
    /// Largest artifact accepted.
    pub max_artifact_bytes: u64,
    /// Bytes of compiler diagnostics kept.
    pub max_diagnostics_bytes: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            time_limit: Duration::from_secs(120),
            max_artifact_bytes: 64 * 1024 * 1024,
            max_diagnostics_bytes: 32 * 1024,
        }
    }
}

/// Compiles C, Rust and Go to wasm32 WASI modules; passes `.wasm` uploads through.
pub struct CompilerBuilder {
    toolchains: Toolchains,
    /// Parent of the throwaway build directories.
    work_root: PathBuf,
    /// Go's build cache, shared across builds so only the first compiles the runtime.
    go_cache: PathBuf,
    options: BuildOptions,
}

const WASM_MAGIC: &[u8] = b"\0asm";

/// Memory one build (compiler, linker, installer and their children) may use.
pub(crate) const BUILD_MEMORY_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Processes and threads one build may have.
pub(crate) const BUILD_MAX_PROCESSES: u64 = 256;

impl CompilerBuilder {
    /// `cache_dir` is derived state (build scratch space and the Go build cache).
    pub fn new(toolchains: Toolchains, cache_dir: &Path, options: BuildOptions) -> Result<Self> {
        let work_root = cache_dir.join("builds");
        let go_cache = cache_dir.join("go-build");
        for dir in [&work_root, &go_cache] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::platform_ctx(&format!("creating {}", dir.display()), e))?;
        }
        Ok(Self {
            toolchains,
            work_root,
            go_cache,
            options,
        })
    }

    fn require<'a>(&self, toolchain: &'a Toolchain, lang: Lang) -> Result<&'a Path> {
        match toolchain {
            Toolchain::Ready { program, .. } => Ok(program),
            Toolchain::Missing { reason } => Err(Error::unavailable(
                "toolchain_missing",
                format!("this server cannot build {lang} functions: {reason}"),
            )),
        }
    }

    fn build_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&self.work_root)
            .map_err(|e| Error::platform_ctx("creating a build directory", e))
    }

    fn limits(&self) -> Limits {
        Limits {
            wall_time: self.options.time_limit,
            cpu_seconds: self.options.time_limit.as_secs().max(1) * 2,
            max_file_bytes: self.options.max_artifact_bytes * 4,
            max_open_files: 1024,
            max_output_bytes: self.options.max_diagnostics_bytes,
        }
    }

    async fn compile(&self, lang: Lang, source: &Bytes) -> Result<Bytes> {
        let dir = self.build_dir()?;
        let source_name = lang.source_file_name();
        tokio::fs::write(dir.path().join(source_name), source)
            .await
            .map_err(|e| Error::platform_ctx("writing the source", e))?;
        let out_name = "main.out.wasm";
        let limits = self.limits();
        let command = match lang {
            Lang::C => {
                let clang = self.require(&self.toolchains.c, lang)?;
                SandboxedCommand::new(clang, dir.path())
                    .args([
                        "--target=wasm32-wasi",
                        "-O2",
                        "-s",
                        "-o",
                        out_name,
                        source_name,
                    ])
                    .env("PATH", "/usr/bin:/bin")
            }
            Lang::Rust => {
                let rustc = self.require(&self.toolchains.rust, lang)?;
                SandboxedCommand::new(rustc, dir.path())
                    .args([
                        "--target",
                        "wasm32-wasip1",
                        "--edition",
                        "2021",
                        "--crate-name",
                        "main",
                        "--crate-type",
                        "bin",
                        "-O",
                        "-C",
                        "strip=symbols",
                        "-o",
                        out_name,
                        source_name,
                    ])
                    .env("PATH", "/usr/bin:/bin")
            }
            Lang::Go => {
                let go = self.require(&self.toolchains.go, lang)?;
                let go_bin = go.parent().unwrap_or(Path::new("/usr/bin"));
                let home = dir.path().join("home");
                SandboxedCommand::new(go, dir.path())
                    .args(["build", "-trimpath", "-o", out_name, source_name])
                    .env("PATH", format!("{}:/usr/bin:/bin", go_bin.display()))
                    .env("GOOS", "wasip1")
                    .env("GOARCH", "wasm")
                    .env("CGO_ENABLED", "0")
                    .env("GOTOOLCHAIN", "local")
                    .env("GOPROXY", "off")
                    .env("GO111MODULE", "off")
                    .env("GOCACHE", &self.go_cache)
                    .env("GOPATH", home.join("go"))
                    .env("HOME", home)
            }
            Lang::Wasm | Lang::Python | Lang::JavaScript | Lang::Php | Lang::Html => {
                return Err(Error::platform(format!("compile called for {lang}")));
            }
        };
        // The compiler sees its own installation and this build's directory (and Go its
        // build cache); no network, nothing of the host's /etc, the data dir or /root.
        let program = match lang {
            Lang::C => self.require(&self.toolchains.c, lang)?,
            Lang::Rust => self.require(&self.toolchains.rust, lang)?,
            _ => self.require(&self.toolchains.go, lang)?,
        };
        let mut isolation = Isolation::new()
            .runtime(program)
            .writable(dir.path())
            .memory(BUILD_MEMORY_BYTES)
            .processes(BUILD_MAX_PROCESSES);
        if lang == Lang::Go {
            isolation = isolation.writable(&self.go_cache);
        }
        let outcome = command
            .limits(limits)
            .isolate(isolation)
            .run()
            .await
            .map_err(|e| Error::platform_ctx(&format!("starting the {lang} compiler"), e))?;
        if outcome.timed_out {
            return Err(Error::build_failed(format!(
                "the {lang} build did not finish within {} s",
                self.options.time_limit.as_secs()
            )));
        }
        if outcome.oom_killed {
            return Err(Error::build_failed(format!(
                "the {lang} build ran out of memory (limit {} MiB)",
                BUILD_MEMORY_BYTES >> 20
            )));
        }
        let diagnostics = diagnostics_text(&outcome.stderr, &outcome.stdout, dir.path());
        if !outcome.status.success() {
            let diagnostics = if diagnostics.is_empty() {
                format!("the {lang} compiler failed ({})", outcome.status)
            } else {
                diagnostics
            };
            return Err(Error::build_failed(format!(
                "the {lang} build failed:\n{diagnostics}"
            )));
        }
        let artifact_path = dir.path().join(out_name);
        let size = tokio::fs::metadata(&artifact_path)
            .await
            .map_err(|_| Error::build_failed(format!("the {lang} compiler produced no module")))?
            .len();
        if size > self.options.max_artifact_bytes {
            return Err(Error::too_large(format!(
                "the built module is {size} bytes, more than the {} byte limit",
                self.options.max_artifact_bytes
            )));
        }
        let bytes = tokio::fs::read(&artifact_path)
            .await
            .map_err(|e| Error::platform_ctx("reading the built module", e))?;
        Ok(Bytes::from(bytes))
    }
}

/// The compiler's messages, with the build directory's path removed.
pub(crate) fn diagnostics_text(stderr: &[u8], stdout: &[u8], dir: &Path) -> String {
    let mut text = String::from_utf8_lossy(stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(stdout).into_owned();
    }
    let dir = dir.display().to_string();
    text.replace(&format!("{dir}/"), "")
        .replace(&dir, ".")
        .trim_end()
        .to_owned()
}

#[async_trait]
impl Builder for CompilerBuilder {
    async fn build(&self, lang: Lang, source: Bytes, config: &FunctionConfig) -> Result<Artifact> {
        let wasm = match lang {
            Lang::Wasm => {
                if !source.starts_with(WASM_MAGIC) {
                    return Err(Error::invalid(
                        "invalid_module",
                        "the upload is not a WebAssembly module (it does not start with \\0asm); send the .wasm file as the raw body or as code_base64",
                    ));
                }
                source
            }
            Lang::C | Lang::Rust | Lang::Go => self.compile(lang, &source).await?,
            Lang::Html => {
                if std::str::from_utf8(&source).is_err() {
                    return Err(Error::invalid(
                        "invalid_code",
                        "an HTML page must be UTF-8 text",
                    ));
                }
                return Ok(Artifact::new(ArtifactKind::StaticHtml, source));
            }
            Lang::Python | Lang::JavaScript | Lang::Php => {
                let interpreter = match lang {
                    Lang::Python => &self.toolchains.python,
                    Lang::JavaScript => &self.toolchains.node,
                    _ => &self.toolchains.php,
                };
                let interpreter = self.require(interpreter, lang)?.to_owned();
                let dir = self.build_dir()?;
                let archive = crate::interpreted::build_code_dir(
                    lang,
                    &interpreter,
                    self.toolchains.npm.program(),
                    &source,
                    config,
                    dir.path(),
                    self.limits(),
                )
                .await?;
                if archive.len() as u64 > self.options.max_artifact_bytes {
                    return Err(Error::too_large(format!(
                        "the function with its dependencies is {} bytes, more than the {} byte limit",
                        archive.len(),
                        self.options.max_artifact_bytes
                    )));
                }
                return Ok(Artifact::new(ArtifactKind::for_lang(lang), archive));
            }
        };
        Ok(Artifact::new(ArtifactKind::WasiModule, wasm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(dir: &Path) -> CompilerBuilder {
        CompilerBuilder::new(Toolchains::discover(), dir, BuildOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn compiles_c_to_a_wasm_module() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = builder(dir.path())
            .build(
                Lang::C,
                Bytes::from_static(b"#include <stdio.h>\nint main(){puts(\"hi\");}\n"),
                &FunctionConfig::default(),
            )
            .await
            .unwrap();
        assert!(artifact.bytes.starts_with(WASM_MAGIC));
    }

    #[tokio::test]
    async fn a_compile_error_returns_relative_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        let err = builder(dir.path())
            .build(
                Lang::C,
                Bytes::from_static(b"int main( { return 0 }\n"),
                &FunctionConfig::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, "build_failed");
        assert!(err.message.contains("main.c:1:"), "{}", err.message);
        assert!(!err.message.contains(&dir.path().display().to_string()));
        // The throwaway directory is gone.
        let left = std::fs::read_dir(dir.path().join("builds"))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn rejects_non_wasm_uploads_and_binary_html() {
        let dir = tempfile::tempdir().unwrap();
        let b = builder(dir.path());
        let err = b
            .build(
                Lang::Wasm,
                Bytes::from_static(b"MZ"),
                &FunctionConfig::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, "invalid_module");
        let err = b
            .build(
                Lang::Html,
                Bytes::from_static(b"\xff\xfe"),
                &FunctionConfig::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, "invalid_code");
    }
}
