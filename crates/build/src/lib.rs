//! minifaas-build: turning an upload into an artifact.
//!
//! C, Rust and Go sources are compiled to WASI preview-1 modules; a `.wasm` upload is
//! checked and passed through. Python, JavaScript and PHP sources are syntax-checked,
//! get their `dependencies` installed into their own code dir, and are archived (tar)
//! with a manifest saying whether they define a handler; HTML passes through. Every compiler runs through `minifaas-sandbox` in a
//! throwaway directory, with a time limit and a cap on its diagnostics; a failed build
//! returns `BuildFailed` with the compiler's messages (paths shown relative to the
//! source, never the server's directories) and produces nothing.
//!
//! Toolchains are found once, at start-up ([`Toolchains::discover`]), never per build:
//! resolving `rustc` through the rustup proxy on every build would cost a process.

mod compile;
mod interpreted;
mod toolchain;

pub use compile::{BuildOptions, CompilerBuilder};
pub use interpreted::defines_handler;
pub use toolchain::{Toolchain, Toolchains};
