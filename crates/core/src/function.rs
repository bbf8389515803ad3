//! Functions, their versions and their build artifacts.

use std::fmt;

use crate::config::FunctionConfig;
use crate::error::{Error, Result};

/// A validated function name: `[a-z0-9][a-z0-9_-]{0,62}`.
///
/// Names appear in URLs, logs and (through the registry) never in filesystem paths; the
/// pattern still keeps them safe anywhere: no dots, no slashes, no upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName(String);

impl FunctionName {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::invalid(
                "invalid_name",
                format!(
                    "invalid function name '{}': {why}; use 1 to 63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit",
                    raw.escape_default()
                ),
            )
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(invalid("it is too long"));
        }
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok {
            return Err(invalid("it must start with a lower-case letter or a digit"));
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
            return Err(invalid("it contains a character that is not allowed"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The language a function's source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    C,
    Rust,
    Go,
    /// A prebuilt WASI preview-1 module (TinyGo, Zig, AssemblyScript, ...).
    Wasm,
    Python,
    JavaScript,
    Php,
    Html,
}

impl Lang {
    pub const ALL: [Lang; 8] = [
        Lang::C,
        Lang::Rust,
        Lang::Go,
        Lang::Wasm,
        Lang::Python,
        Lang::JavaScript,
        Lang::Php,
        Lang::Html,
    ];

    /// Parses a language name or one of its aliases (`rs`, `js`, `node`, `py`, ...).
    pub fn parse(raw: &str) -> Result<Self> {
        let lang = match raw.trim().to_ascii_lowercase().as_str() {
            "c" => Lang::C,
            "rust" | "rs" => Lang::Rust,
            "go" | "golang" => Lang::Go,
            "wasm" | "wasi" => Lang::Wasm,
            "python" | "py" | "python3" => Lang::Python,
            "javascript" | "js" | "node" | "nodejs" => Lang::JavaScript,
            "php" => Lang::Php,
            "html" | "htm" => Lang::Html,
            _ => {
                return Err(Error::invalid(
                    "invalid_lang",
                    format!(
                        "unknown language '{}'; use one of: c, rust, go, wasm, python, javascript, php, html",
                        raw.escape_default()
                    ),
                ));
            }
        };
        Ok(lang)
    }

    /// The language a file extension implies, for the CLI's `deploy FILE`.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "c" | "h" => Lang::C,
            "rs" => Lang::Rust,
            "go" => Lang::Go,
            "wasm" => Lang::Wasm,
            "py" => Lang::Python,
            "js" | "mjs" | "cjs" => Lang::JavaScript,
            "php" => Lang::Php,
            "html" | "htm" => Lang::Html,
            _ => return None,
        })
    }

    /// The canonical name, as stored and returned.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Rust => "rust",
            Lang::Go => "go",
            Lang::Wasm => "wasm",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::Php => "php",
            Lang::Html => "html",
        }
    }

    /// The file name the source is given inside a build directory.
    pub fn source_file_name(self) -> &'static str {
        match self {
            Lang::C => "main.c",
            Lang::Rust => "main.rs",
            Lang::Go => "main.go",
            Lang::Wasm => "main.wasm",
            Lang::Python => "main.py",
            Lang::JavaScript => "main.js",
            Lang::Php => "main.php",
            Lang::Html => "index.html",
        }
    }

    /// Whether the function runs as a WASI module.
    pub fn is_wasm(self) -> bool {
        matches!(self, Lang::C | Lang::Rust | Lang::Go | Lang::Wasm)
    }

    /// Whether the source is binary (and so shown base64-encoded).
    pub fn is_binary(self) -> bool {
        matches!(self, Lang::Wasm)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a build produced, ready for an executor's `prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// A WASI preview-1 command module.
    WasiModule,
    /// A tar archive of a Python code dir: `main.py`, and `deps/` if it has dependencies.
    PythonArchive,
    /// A tar archive of a Node code dir: `main.js`, and `node_modules/` if any.
    NodeArchive,
    /// A tar archive of a PHP code dir: `main.php`.
    PhpArchive,
    /// A static HTML page, served as is.
    StaticHtml,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 5] = [
        ArtifactKind::WasiModule,
        ArtifactKind::PythonArchive,
        ArtifactKind::NodeArchive,
        ArtifactKind::PhpArchive,
        ArtifactKind::StaticHtml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::WasiModule => "wasi-module",
            ArtifactKind::PythonArchive => "python-archive",
            ArtifactKind::NodeArchive => "node-archive",
            ArtifactKind::PhpArchive => "php-archive",
            ArtifactKind::StaticHtml => "html",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The artifact kind a language builds to.
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::C | Lang::Rust | Lang::Go | Lang::Wasm => ArtifactKind::WasiModule,
            Lang::Python => ArtifactKind::PythonArchive,
            Lang::JavaScript => ArtifactKind::NodeArchive,
            Lang::Php => ArtifactKind::PhpArchive,
            Lang::Html => ArtifactKind::StaticHtml,
        }
    }
}

/// The file in a code archive (Python, JavaScript, PHP) naming its entry file and mode:
/// JSON `{"entry": "main.py", "mode": "handler" | "script"}`. Written by the build,
/// read by the process executor.
pub const CODE_MANIFEST_FILE: &str = ".minifaas.json";

/// A build artifact: its kind, its bytes and their sha256 (the key of its blob and of
/// every cache derived from it).
#[derive(Debug, Clone)]
pub struct Artifact {
    pub kind: ArtifactKind,
    pub bytes: bytes::Bytes,
    pub sha256: String,
}

impl Artifact {
    pub fn new(kind: ArtifactKind, bytes: bytes::Bytes) -> Self {
        let sha256 = sha256_hex(&bytes);
        Self {
            kind,
            bytes,
            sha256,
        }
    }
}

/// Lower-case hex sha256 of `bytes`: the content address of blobs.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A deployed function, as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    /// The seed API's id, `<name>_<unix seconds at creation>`; stable across versions.
    pub id: String,
    pub name: FunctionName,
    pub current_version: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One immutable version of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub name: FunctionName,
    pub version: u32,
    pub lang: Lang,
    pub config: FunctionConfig,
    /// sha256 of the uploaded source, the key of its blob.
    pub source_sha256: String,
    pub source_size: u64,
    /// sha256 of the build artifact, the key of its blob.
    pub artifact_sha256: String,
    pub artifact_kind: ArtifactKind,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for ok in ["hello", "a", "0x", "my-fn_2", &"a".repeat(63)] {
            assert!(FunctionName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "x/y",
            "Hello",
            "-a",
            "_a",
            "a.b",
            "a b",
            &"a".repeat(64),
            "é",
        ] {
            let err = FunctionName::parse(bad).unwrap_err();
            assert_eq!(err.code, "invalid_name", "{bad}");
        }
    }

    #[test]
    fn languages_parse_with_aliases() {
        assert_eq!(Lang::parse("C").unwrap(), Lang::C);
        assert_eq!(Lang::parse("rs").unwrap(), Lang::Rust);
        assert_eq!(Lang::parse("js").unwrap(), Lang::JavaScript);
        assert_eq!(Lang::parse("node").unwrap(), Lang::JavaScript);
        assert_eq!(Lang::parse("cobol").unwrap_err().code, "invalid_lang");
        for lang in Lang::ALL {
            assert_eq!(Lang::parse(lang.as_str()).unwrap(), lang);
        }
    }
}
