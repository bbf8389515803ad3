//! What a sandboxed child may see and use ([`Isolation`], chosen by the caller), and the
//! wire form the server hands the helper process ([`HelperSpec`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The system directories every sandboxed program gets read-only: enough to load
/// dynamically linked programs and their shared libraries, nothing of the host's data.
/// `/etc` is not among them; [`ETC_FILES`] lists the few files of it that are shown.
pub const SYSTEM_PATHS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"];

/// The files of `/etc` a program may need to start (the loader's cache, `alternatives`
/// symlinks, time zone, TLS roots for dependency installs, the PHP configuration).
/// Never `passwd`, `shadow`, `hosts` of the machine's users, or anything with secrets.
pub const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/php",
    "/etc/mime.types",
];

/// Files of `/etc` shown only to children with network access (name resolution).
pub const ETC_NETWORK_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
];

/// The isolation of one child: which paths it sees, whether it has a network, and the
/// resources it may use. Paths appear inside the sandbox at the same place as outside,
/// so working directories and environment variables need no translation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Isolation {
    /// Shown read-only (and executable): runtimes, toolchains, the function's code.
    pub read_only: Vec<PathBuf>,
    /// Shown writable: a build's own directory, a cache it fills.
    pub writable: Vec<PathBuf>,
    /// Share the host's network (dependency installs). Otherwise a new, empty network
    /// namespace: no route anywhere, not even to the server's own port.
    pub network: bool,
    /// Memory the whole child (and its descendants) may use; past it, the kernel kills it.
    pub memory_bytes: Option<u64>,
    /// Processes and threads it may have at once (fork bombs stop here).
    pub max_processes: Option<u64>,
    /// CPU time per wall-clock second, in cores.
    pub cpu_cores: Option<f64>,
    /// Size of its private `/tmp`.
    pub tmp_bytes: u64,
}

impl Isolation {
    /// Nothing but the system directories, no network, a 64 MiB `/tmp`.
    pub fn new() -> Self {
        Self {
            tmp_bytes: 64 * 1024 * 1024,
            ..Self::default()
        }
    }

    pub fn read_only(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_only.push(path.into());
        self
    }

    pub fn writable(mut self, path: impl Into<PathBuf>) -> Self {
        self.writable.push(path.into());
        self
    }

    pub fn network(mut self, allowed: bool) -> Self {
        self.network = allowed;
        self
    }

    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory_bytes = Some(bytes);
        self
    }

    pub fn processes(mut self, max: u64) -> Self {
        self.max_processes = Some(max);
        self
    }

    /// Shows the installation a program belongs to, read-only: for a program outside
    /// the system directories (`/root/.pyenv/versions/3.11.7/bin/python3.11`, a rustup
    /// toolchain's `bin/rustc`), the directory above its `bin`.
    pub fn runtime(self, program: &Path) -> Self {
        match runtime_root(program) {
            Some(root) => self.read_only(root),
            None => self,
        }
    }
}

/// The installation directory of `program`, if it is outside the system directories.
pub(crate) fn runtime_root(program: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_owned());
    if SYSTEM_PATHS.iter().any(|system| real.starts_with(system)) {
        return None;
    }
    let bin = real.parent()?;
    if bin.file_name().is_some_and(|n| n == "bin") {
        bin.parent().map(Path::to_owned)
    } else {
        Some(bin.to_owned())
    }
}

/// Which primitives the helper applies (all, unless the machine lacks one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// User, PID, mount, IPC, UTS (and network) namespaces.
    pub namespaces: bool,
    /// The minimal filesystem view with `pivot_root` (needs `namespaces`).
    pub filesystem: bool,
    pub landlock: bool,
    pub seccomp: bool,
}

impl Features {
    pub const NONE: Features = Features {
        namespaces: false,
        filesystem: false,
        landlock: false,
        seccomp: false,
    };
}

/// Everything the helper needs, passed as one JSON argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelperSpec {
    pub isolation: Isolation,
    pub features: Features,
    /// An empty directory the helper mounts the new root's tmpfs on.
    pub staging_root: PathBuf,
    /// The working directory inside the sandbox.
    pub cwd: PathBuf,
    /// Host uid and gid that root inside the user namespace maps to.
    pub outside_uid: u32,
    pub outside_gid: u32,
    /// `cgroup.procs` files the helper writes its pid to before anything else.
    pub cgroup_procs: Vec<PathBuf>,
}

/// The helper's first argument: `minifaas __sandbox-exec SPEC -- PROGRAM ARGS...`.
pub const EXEC_ARG: &str = "__sandbox-exec";
/// `minifaas __sandbox-probe`: prints which primitives work here, as JSON.
pub const PROBE_ARG: &str = "__sandbox-probe";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_outside_the_system_dirs_are_shown_by_their_root() {
        assert_eq!(runtime_root(Path::new("/usr/bin/clang")), None);
        assert_eq!(
            runtime_root(Path::new("/opt/py/3.11/bin/python3")),
            Some(PathBuf::from("/opt/py/3.11"))
        );
        assert_eq!(
            runtime_root(Path::new("/opt/tool/run")),
            Some(PathBuf::from("/opt/tool"))
        );
    }

    const ALL: Features = Features {
        namespaces: true,
        filesystem: true,
        landlock: true,
        seccomp: true,
    };

    #[test]
    fn specs_round_trip_as_json() {
        let spec = HelperSpec {
            isolation: Isolation::new().read_only("/code").memory(1 << 20),
            features: ALL,
            staging_root: "/stage".into(),
            cwd: "/code".into(),
            outside_uid: 65534,
            outside_gid: 65534,
            cgroup_procs: vec!["/sys/fs/cgroup/pids/x/cgroup.procs".into()],
        };
        let json = serde_json::to_string(&spec).unwrap();
        let back: HelperSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back.isolation, spec.isolation);
        assert_eq!(back.features, ALL);
    }
}
