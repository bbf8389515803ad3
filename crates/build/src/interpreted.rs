//! Builds for Python, JavaScript and PHP: a syntax check, the function's own
//! dependencies installed into its code dir (never globally), and a tar archive of that
//! dir as the artifact. HTML is checked to be text and passed through.

use std::path::Path;

use bytes::Bytes;
use minifaas_core::{Error, FunctionConfig, Lang, Result};
use minifaas_sandbox::{Isolation, Limits, SandboxedCommand};
use serde_json::Value;

/// Environment variables an installer may need to reach its registry (operator settings,
/// not user data). Everything else is withheld.
const INSTALLER_ENV_PREFIXES: [&str; 4] = ["PIP_", "NPM_CONFIG_", "npm_config_", "SSL_CERT_"];
const INSTALLER_ENV_NAMES: [&str; 7] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
];

/// The `dependencies` config key: a list of requirement strings, each a package spec and
/// never an installer option.
pub(crate) fn dependencies(config: &FunctionConfig) -> Result<Vec<String>> {
    let Some(value) = config.extra.get("dependencies") else {
        return Ok(Vec::new());
    };
    let invalid = |why: String| Error::invalid("invalid_config", why);
    let Value::Array(items) = value else {
        return Err(invalid(
            "dependencies must be a list of package specs, e.g. [\"requests==2.32.3\"]".into(),
        ));
    };
    let mut specs = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(spec) = item else {
            return Err(invalid(format!("dependency {item} is not a string")));
        };
        let spec = spec.trim();
        if spec.is_empty()
            || spec.starts_with('-')
            || spec.chars().any(|c| c.is_whitespace() || c.is_control())
            || spec.len() > 200
        {
            return Err(invalid(format!(
                "dependency '{}' is not a package spec (no spaces, no options)",
                spec.escape_default()
            )));
        }
        specs.push(spec.to_owned());
    }
    Ok(specs)
}

fn with_installer_env(mut command: SandboxedCommand) -> SandboxedCommand {
    for (key, value) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if INSTALLER_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
            || INSTALLER_ENV_NAMES.contains(&name)
        {
            command = command.env(key.clone(), value);
        }
    }
    command
}

/// Whether the source looks like it defines the handler entry point. A file without one
/// runs in script mode (a plain program per invocation).
pub fn defines_handler(lang: Lang, source: &str) -> bool {
    source.lines().any(|line| {
        let line = line.trim_start();
        match lang {
            Lang::Python => {
                line.starts_with("def handle(")
                    || line.starts_with("async def handle(")
                    || line.starts_with("def handle (")
            }
            Lang::JavaScript => line.contains("module.exports") || line.contains("exports.handle"),
            Lang::Php => line.contains("function handle(") || line.contains("function handle ("),
            _ => false,
        }
    })
}

pub(crate) struct Step<'a> {
    pub program: &'a Path,
    pub lang: Lang,
    pub what: &'static str,
}

pub(crate) async fn run_step(
    step: Step<'_>,
    command: SandboxedCommand,
    limits: Limits,
    build_dir: &Path,
) -> Result<()> {
    let outcome = command.limits(limits.clone()).run().await.map_err(|e| {
        Error::platform_ctx(
            &format!("starting {} for {}", step.program.display(), step.lang),
            e,
        )
    })?;
    if outcome.timed_out {
        return Err(Error::build_failed(format!(
            "the {} {} did not finish within {} s",
            step.lang,
            step.what,
            limits.wall_time.as_secs()
        )));
    }
    if !outcome.status.success() {
        let text = crate::compile::diagnostics_text(&outcome.stderr, &outcome.stdout, build_dir);
        return Err(Error::build_failed(format!(
            "the {} {} failed:\n{text}",
            step.lang, step.what
        )));
    }
    Ok(())
}

/// Checks, installs and archives a Python, JavaScript or PHP function in `build_dir`.
pub(crate) async fn build_code_dir(
    lang: Lang,
    interpreter: &Path,
    npm: Option<&Path>,
    source: &Bytes,
    config: &FunctionConfig,
    build_dir: &Path,
    limits: Limits,
) -> Result<Bytes> {
    if std::str::from_utf8(source).is_err() {
        return Err(Error::invalid(
            "invalid_code",
            format!("{lang} source must be UTF-8 text"),
        ));
    }
    let code_dir = build_dir.join("code");
    let home = build_dir.join("home");
    for dir in [&code_dir, &home] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::platform_ctx("creating the code dir", e))?;
    }
    let entry = lang.source_file_name();
    tokio::fs::write(code_dir.join(entry), source)
        .await
        .map_err(|e| Error::platform_ctx("writing the source", e))?;

    let path_env = match interpreter.parent() {
        Some(dir) => format!("{}:/usr/bin:/bin", dir.display()),
        None => "/usr/bin:/bin".into(),
    };
    // The checker and the installer see their own runtime and this build's code and
    // home directories (writable); only the installer gets the network.
    let base_with = |program: &Path, network: bool| {
        SandboxedCommand::new(program, &code_dir)
            .env("PATH", &path_env)
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .isolate(
                Isolation::new()
                    .runtime(program)
                    .runtime(interpreter)
                    .writable(&code_dir)
                    .writable(&home)
                    .network(network)
                    .memory(crate::compile::BUILD_MEMORY_BYTES)
                    .processes(crate::compile::BUILD_MAX_PROCESSES),
            )
    };
    let base = |program: &Path| base_with(program, false);

    // 1. Syntax.
    let check = match lang {
        Lang::Python => base(interpreter).args([
            "-I",
            "-S",
            "-B",
            "-c",
            "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')",
            entry,
        ]),
        Lang::JavaScript => base(interpreter).args(["--check", entry]),
        Lang::Php => base(interpreter).args(["-n", "-l", entry]),
        _ => return Err(Error::platform(format!("build_code_dir called for {lang}"))),
    };
    run_step(
        Step {
            program: interpreter,
            lang,
            what: "syntax check",
        },
        check,
        limits.clone(),
        &code_dir,
    )
    .await?;

    // 2. Dependencies, into the function's own directory.
    let specs = dependencies(config)?;
    if !specs.is_empty() {
        let install = match lang {
            Lang::Python => with_installer_env(base_with(interpreter, true))
                .args([
                    "-I",
                    "-m",
                    "pip",
                    "install",
                    "--no-input",
                    "--disable-pip-version-check",
                    "--no-cache-dir",
                    "--target",
                    "deps",
                    "--",
                ])
                .args(specs.iter().cloned()),
            Lang::JavaScript => {
                let npm = npm.ok_or_else(|| {
                    Error::unavailable(
                        "toolchain_missing",
                        "this server cannot install JavaScript dependencies: npm is not installed",
                    )
                })?;
                with_installer_env(base_with(npm, true))
                    .args([
                        "install",
                        "--prefix",
                        ".",
                        "--no-audit",
                        "--no-fund",
                        "--no-package-lock",
                        "--ignore-scripts",
                        "--omit=dev",
                        "--",
                    ])
                    .args(specs.iter().cloned())
            }
            _ => {
                return Err(Error::invalid(
                    "invalid_config",
                    format!("{lang} functions do not take dependencies"),
                ));
            }
        };
        let program = if lang == Lang::JavaScript {
            npm.unwrap_or(interpreter)
        } else {
            interpreter
        };
        run_step(
            Step {
                program,
                lang,
                what: "dependency install",
            },
            install,
            Limits {
                max_output_bytes: 16 * 1024,
                ..limits
            },
            &code_dir,
        )
        .await?;
    }

    // 3. How the executor should run it.
    let mode = if defines_handler(lang, std::str::from_utf8(source).unwrap_or("")) {
        "handler"
    } else {
        "script"
    };
    let manifest = serde_json::json!({"entry": entry, "mode": mode});
    tokio::fs::write(
        code_dir.join(minifaas_core::CODE_MANIFEST_FILE),
        manifest.to_string(),
    )
    .await
    .map_err(|e| Error::platform_ctx("writing the manifest", e))?;

    // 4. The archive.
    let code_dir_for_tar = code_dir.clone();
    let archive = tokio::task::spawn_blocking(move || pack(&code_dir_for_tar))
        .await
        .map_err(|e| Error::platform_ctx("archiving the code dir", e))?
        .map_err(|e| Error::platform_ctx("archiving the code dir", e))?;
    Ok(Bytes::from(archive))
}

/// A deterministic tar of `dir` (no timestamps or owners), symlinks kept as links.
fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependencies_are_specs_never_options() {
        let config =
            |deps: Value| FunctionConfig::from_json(&json!({"dependencies": deps})).unwrap();
        assert_eq!(
            dependencies(&config(json!(["requests==2.32.3", "six"]))).unwrap(),
            ["requests==2.32.3", "six"]
        );
        for bad in [
            json!(["--index-url=http://evil"]),
            json!(["a b"]),
            json!("six"),
            json!([1]),
        ] {
            assert!(dependencies(&config(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn handlers_are_recognised() {
        assert!(defines_handler(
            Lang::Python,
            "import json\ndef handle(request):\n  return 1"
        ));
        assert!(!defines_handler(Lang::Python, "print(input())"));
        assert!(defines_handler(
            Lang::JavaScript,
            "module.exports = async (r) => 1"
        ));
        assert!(!defines_handler(Lang::JavaScript, "console.log(1)"));
        assert!(defines_handler(
            Lang::Php,
            "<?php function handle($r) { return 1; }"
        ));
        assert!(!defines_handler(Lang::Php, "<?php echo 1;"));
    }
}
