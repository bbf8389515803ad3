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
}

const INSTALL_HINT: &str = "run scripts/install-toolchains.sh on the server";

impl Toolchains {
    /// Looks for every compiler. Blocking: call once at start-up.
    pub fn discover() -> Self {
        Self {
            c: discover_clang(),
            rust: discover_rustc(),
            go: discover_go(),
        }
    }

    /// (language, toolchain) pairs, for start-up logs and `check-system`.
    pub fn summary(&self) -> [(&'static str, &Toolchain); 3] {
        [("c", &self.c), ("rust", &self.rust), ("go", &self.go)]
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
