//! Finding the compilers on this machine.

use std::path::{Path, PathBuf};

/// One compiler: where it is, or why it is not usable.
#[derive(Debug, Clone)]
pub enum Toolchain {
    Ready { program: PathBuf, version: String },
    Missing { reason: String },
}

impl Toolchain {
    pub fn program(&self) -> Option<&Path> {
        match self {
            Toolchain::Ready { program, .. } => Some(program),
            Toolchain::Missing { .. } => None,
        }
    }
}

/// The compilers for the WASI languages.
#[derive(Debug, Clone)]
pub struct Toolchains {
    /// clang with the wasm32-wasi target, wasi-libc and wasm-ld.
    pub c: Toolchain,
    /// The real rustc (not the rustup proxy) with the wasm32-wasip1 target.
    pub rust: Toolchain,
    /// go 1.21+ (wasip1 support).
    pub go: Toolchain,
    /// The real Python interpreter (never a pyenv shim), with pip for dependencies.
    pub python: Toolchain,
    /// node, for JavaScript functions.
    pub node: Toolchain,
    /// npm, for JavaScript dependencies.
    pub npm: Toolchain,
    /// php-cli.
    pub php: Toolchain,
}

const INSTALL_HINT: &str = "run scripts/install-toolchains.sh on the server";

impl Toolchains {
    /// Looks for every compiler. Blocking: call once at start-up.
    pub fn discover() -> Self {
        Self {
            c: discover_clang(),
            rust: discover_rustc(),
            go: discover_go(),
            python: discover_python(),
            node: discover_on_path("node", &["--version"], "node"),
            npm: discover_on_path("npm", &["--version"], "npm"),
            php: discover_on_path("php", &["-r", "echo PHP_VERSION;"], "php-cli"),
        }
    }

    /// (language, toolchain) pairs, for start-up logs and `check-system`.
    pub fn summary(&self) -> [(&'static str, &Toolchain); 7] {
        [
            ("c", &self.c),
            ("rust", &self.rust),
            ("go", &self.go),
            ("python", &self.python),
            ("javascript", &self.node),
            ("javascript dependencies", &self.npm),
            ("php", &self.php),
        ]
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

use minifaas_sandbox::probe_first_line as first_line_of;

fn discover_clang() -> Toolchain {
    let Some(program) = find_on_path("clang").or_else(|| find_on_path("clang-14")) else {
        return Toolchain::Missing {
            reason: format!("clang is not installed; {INSTALL_HINT}"),
        };
    };
    if !Path::new("/usr/include/wasm32-wasi/stdio.h").exists() {
        return Toolchain::Missing {
            reason: format!("wasi-libc is not installed; {INSTALL_HINT}"),
        };
    }
    if find_on_path("wasm-ld").is_none() {
        return Toolchain::Missing {
            reason: format!("wasm-ld (lld) is not installed; {INSTALL_HINT}"),
        };
    }
    let version = first_line_of(&program, &["--version"]).unwrap_or_default();
    Toolchain::Ready { program, version }
}

fn discover_rustc() -> Toolchain {
    let Some(proxy) = find_on_path("rustc") else {
        return Toolchain::Missing {
            reason: format!("rustc is not installed; {INSTALL_HINT}"),
        };
    };
    // Through rustup, `rustc` is a proxy that resolves the toolchain on every call; ask
    // it once for the sysroot and run the real compiler from there.
    let Some(sysroot) = first_line_of(&proxy, &["--print", "sysroot"]) else {
        return Toolchain::Missing {
            reason: "rustc --print sysroot failed".into(),
        };
    };
    let sysroot = PathBuf::from(sysroot);
    let program = sysroot.join("bin").join("rustc");
    let program = if program.is_file() { program } else { proxy };
    if !sysroot.join("lib/rustlib/wasm32-wasip1").is_dir() {
        return Toolchain::Missing {
            reason: format!("the Rust wasm32-wasip1 target is not installed; {INSTALL_HINT}"),
        };
    }
    let version = first_line_of(&program, &["--version"]).unwrap_or_default();
    Toolchain::Ready { program, version }
}

fn discover_go() -> Toolchain {
    let program = ["/usr/lib/go-1.23/bin/go", "/usr/local/go/bin/go"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| find_on_path("go"));
    let Some(program) = program else {
        return Toolchain::Missing {
            reason: format!("go (1.21 or newer) is not installed; {INSTALL_HINT}"),
        };
    };
    let version = first_line_of(&program, &["version"]).unwrap_or_default();
    Toolchain::Ready { program, version }
}

fn discover_on_path(name: &str, version_args: &[&str], package: &str) -> Toolchain {
    let Some(program) = find_on_path(name) else {
        return Toolchain::Missing {
            reason: format!("{package} is not installed; {INSTALL_HINT}"),
        };
    };
    let program = std::fs::canonicalize(&program).unwrap_or(program);
    let version = first_line_of(&program, version_args).unwrap_or_default();
    Toolchain::Ready { program, version }
}

fn discover_python() -> Toolchain {
    // `python3` on PATH may be a pyenv shim (a shell script costing ~250 ms a start): ask
    // it once for the interpreter behind it and run that directly.
    let real = find_on_path("python3")
        .and_then(|p| first_line_of(&p, &["-c", "import sys; print(sys.executable)"]))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/python3")).filter(|p| p.is_file()));
    let Some(program) = real else {
        return Toolchain::Missing {
            reason: format!("python3 is not installed; {INSTALL_HINT}"),
        };
    };
    let version = first_line_of(&program, &["--version"]).unwrap_or_default();
    Toolchain::Ready { program, version }
}
