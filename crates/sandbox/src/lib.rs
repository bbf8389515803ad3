//! minifaas-sandbox: the one place that creates child processes.
//!
//! Every child is started here: one-shot programs (compilers, installers, script-mode
//! functions) through [`SandboxedCommand`], long-lived language workers through
//! [`WorkerCommand`] (protocol on fds 3 and 4, stdout/stderr as the log), forked workers
//! through a [`ZygoteProcess`]. Each gets:
//! - an empty environment but for what the caller lists explicitly;
//! - its own process group, killed whole on timeout, and `PR_SET_PDEATHSIG(SIGKILL)`:
//!   a child never outlives the server;
//! - rlimits (CPU seconds, file size, open files, no core dumps), a wall-clock limit and
//!   a cap on the output it may return;
//! - when the caller gives an [`Isolation`] and [`init`] has run: its own user, PID,
//!   mount, IPC, UTS and network namespaces with a minimal read-only filesystem view
//!   (`mounts.rs`), a cgroup with its memory, process and CPU limits (`cgroup.rs`),
//!   Landlock, no capabilities, `no_new_privs` and a seccomp deny-list (`confine.rs`).
//!   These are set up by the helper (`helper.rs`), the server's own binary started in a
//!   special mode, because a multi-threaded server cannot do it between fork and exec.
//!
//! A primitive the machine lacks is left out and said so: [`Sandbox::report`] is what the
//! server logs as warnings at start-up and what `minifaas check-system` prints.

mod cgroup;
mod command;
mod confine;
mod helper;
mod mounts;
mod probe;
mod spec;
mod worker;
mod zygote;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use cgroup::{CgroupBox, Cgroups};
pub use command::{Limits, Outcome, SandboxedCommand};
pub use helper::{SETUP_FAILED, run_if_helper};
pub use probe::ProbeResult;
pub use spec::{Features, Isolation};
pub use worker::{REQUEST_FD, RESPONSE_FD, WorkerCommand, WorkerProcess};
pub use zygote::{ForkedWorker, ZygoteProcess};

use spec::{EXEC_ARG, HelperSpec, PROBE_ARG};

/// One isolation primitive and whether this machine gives it.
#[derive(Debug, Clone)]
pub struct Primitive {
    pub name: &'static str,
    pub available: bool,
    /// What was found (a version, a reason it is missing).
    pub detail: String,
    /// What minifaas does without it.
    pub without_it: &'static str,
}

/// The machine's sandbox: which primitives work, and how to start a child with them.
pub struct Sandbox {
    helper: PathBuf,
    staging_root: PathBuf,
    features: Features,
    cgroups: Option<Cgroups>,
    outside_uid: u32,
    outside_gid: u32,
    report: Vec<Primitive>,
}

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

/// `MINIFAAS_SANDBOX_WITHOUT=namespaces,cgroups,landlock,seccomp`: primitives to leave
/// out even where the machine has them.
pub const WITHOUT_ENV: &str = "MINIFAAS_SANDBOX_WITHOUT";

/// The sandbox, once [`init`] has run. Without it, children get rlimits only (unit
/// tests of other crates, which have no helper binary).
pub fn active() -> Option<&'static Sandbox> {
    SANDBOX.get()
}

/// Probes the machine with `helper` (the server's own binary, which calls
/// [`run_if_helper`] first thing in `main`), creates the staging dir under `scratch`,
/// and makes the sandbox the one every later child goes through. Blocking (tens of
/// milliseconds); call once at start-up.
pub fn init(helper: PathBuf, scratch: &Path) -> &'static Sandbox {
    SANDBOX.get_or_init(|| Sandbox::probe(helper, scratch))
}

/// Runs `helper __sandbox-probe`.
pub fn probe_primitives(helper: &Path) -> Result<ProbeResult, String> {
    let output = std::process::Command::new(helper)
        .arg(PROBE_ARG)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running the sandbox probe: {e}"))?;
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "the sandbox probe said nothing usable ({e}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

impl Sandbox {
    fn probe(helper: PathBuf, scratch: &Path) -> Self {
        // Children start in other directories: every path handed to the helper is
        // absolute.
        let scratch = std::path::absolute(scratch).unwrap_or_else(|_| scratch.to_owned());
        let helper = std::path::absolute(&helper).unwrap_or(helper);
        let staging_root = scratch.join("sandbox-root");
        let staging_ok = std::fs::create_dir_all(&staging_root).is_ok();
        let probe = probe_primitives(&helper);
        let mut found = probe.clone().unwrap_or_default();
        let mut probe_error = probe.err().unwrap_or_default();
        // An operator may turn primitives off (to debug, or where one misbehaves); they
        // are then reported missing like any other.
        let turned_off = std::env::var(WITHOUT_ENV).unwrap_or_default();
        let off = |name: &str| turned_off.split(',').any(|p| p.trim() == name);
        if off("namespaces") {
            found.user_namespace = false;
            probe_error = format!("turned off by {WITHOUT_ENV}");
        }
        if off("landlock") {
            found.landlock.clear();
        }
        if off("seccomp") {
            found.seccomp = false;
        }
        let namespaces = found.user_namespace
            && found.pid_namespace
            && found.mount_namespace
            && found.network_namespace
            && found.ipc_namespace
            && found.uts_namespace;
        let cgroups = if off("cgroups") {
            Err(format!("turned off by {WITHOUT_ENV}"))
        } else {
            Cgroups::detect()
        };
        let is_root = nix::unistd::Uid::effective().is_root();
        let (outside_uid, outside_gid) = if is_root {
            (65534, 65534)
        } else {
            (
                nix::unistd::Uid::effective().as_raw(),
                nix::unistd::Gid::effective().as_raw(),
            )
        };
        let mut sandbox = Self {
            helper,
            staging_root,
            features: Features {
                namespaces,
                filesystem: namespaces && staging_ok,
                landlock: !found.landlock.is_empty(),
                seccomp: found.seccomp,
            },
            cgroups: None,
            outside_uid,
            outside_gid,
            report: Vec::new(),
        };
        let cgroup_detail = match &cgroups {
            Ok(c) => c.describe(),
            Err(e) => e.clone(),
        };
        sandbox.cgroups = cgroups.ok();
        // The whole view, once, on a real program: a machine where pivot_root or a
        // mount fails still serves, without the filesystem view.
        let mut view_detail = String::from("pivot_root into a tmpfs root, read-only");
        if sandbox.features.filesystem
            && let Err(err) = sandbox.smoke_test()
        {
            sandbox.features.filesystem = false;
            view_detail = err;
        }
        let ns = |flag: bool, name: &str| {
            if flag {
                name.to_owned()
            } else {
                format!("no {name}")
            }
        };
        sandbox.report = vec![
            Primitive {
                name: "namespaces (user, pid, mount, net, ipc, uts)",
                available: namespaces,
                detail: if probe_error.is_empty() {
                    [
                        ns(found.user_namespace, "user"),
                        ns(found.pid_namespace, "pid"),
                        ns(found.mount_namespace, "mount"),
                        ns(found.network_namespace, "net"),
                        ns(found.ipc_namespace, "ipc"),
                        ns(found.uts_namespace, "uts"),
                    ]
                    .join(", ")
                } else {
                    probe_error.clone()
                },
                without_it: "children run as the server's user without capabilities, see the host's filesystem through Landlock only (if present), and share its network (Landlock still refuses TCP)",
            },
            Primitive {
                name: "minimal filesystem view (pivot_root)",
                available: sandbox.features.filesystem,
                detail: view_detail,
                without_it: "only Landlock (if present) keeps children out of the data dir and other functions' files",
            },
            Primitive {
                name: "cgroups (memory, pids, cpu)",
                available: sandbox.cgroups.is_some(),
                detail: cgroup_detail,
                without_it: "the memory config is not enforced on process workers and fork bombs are bounded only by rlimits",
            },
            Primitive {
                name: "seccomp deny-list",
                available: found.seccomp,
                detail: if found.seccomp {
                    "mount, ptrace, kexec, modules, keyctl, bpf, namespaces, io_uring, ... denied"
                        .into()
                } else {
                    "seccomp filters cannot be installed".into()
                },
                without_it: "children may make any system call their user may",
            },
            Primitive {
                name: "no_new_privs + no capabilities",
                available: found.no_new_privs,
                detail: "set-uid programs and file capabilities give nothing".into(),
                without_it: "a set-uid program could raise a child's privileges",
            },
            Primitive {
                name: "Landlock",
                available: sandbox.features.landlock,
                detail: if found.landlock.is_empty() {
                    "not supported by this kernel".into()
                } else {
                    found.landlock.clone()
                },
                without_it: "the filesystem view is the only wall around the filesystem",
            },
            Primitive {
                name: "rlimits (cpu, fsize, nofile, core), process group, parent-death signal",
                available: true,
                detail: "always".into(),
                without_it: "",
            },
        ];
        sandbox
    }

    /// Runs `/bin/true` through the whole sandbox.
    fn smoke_test(&self) -> Result<(), String> {
        let (program, args) = self.wrap_with(
            Path::new("/bin/true"),
            &[],
            Path::new("/"),
            &Isolation::new(),
            &[],
            self.features,
        );
        let output =
            run_plainly(&program, &args).map_err(|e| format!("starting the helper: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// What this machine gives, primitive by primitive.
    pub fn report(&self) -> &[Primitive] {
        &self.report
    }

    /// The helper's program and arguments to run `program args` with `isolation` and
    /// the given primitives.
    fn wrap_with(
        &self,
        program: &Path,
        args: &[OsString],
        cwd: &Path,
        isolation: &Isolation,
        cgroup_procs: &[PathBuf],
        features: Features,
    ) -> (PathBuf, Vec<OsString>) {
        let spec = HelperSpec {
            isolation: isolation.clone(),
            features,
            staging_root: self.staging_root.clone(),
            cwd: cwd.to_owned(),
            outside_uid: self.outside_uid,
            outside_gid: self.outside_gid,
            cgroup_procs: cgroup_procs.to_vec(),
        };
        let mut wrapped: Vec<OsString> = vec![
            EXEC_ARG.into(),
            serde_json::to_string(&spec).unwrap_or_default().into(),
            "--".into(),
            program.as_os_str().to_owned(),
        ];
        wrapped.extend(args.iter().cloned());
        (self.helper.clone(), wrapped)
    }

    /// Creates the child's cgroup (if the machine has cgroups and the isolation sets a
    /// limit) and the helper invocation that joins it.
    pub(crate) fn wrap(
        &self,
        program: &Path,
        args: &[OsString],
        cwd: &Path,
        isolation: &Isolation,
    ) -> std::io::Result<Wrapped> {
        let cgroup = match &self.cgroups {
            Some(cgroups)
                if isolation.memory_bytes.is_some()
                    || isolation.max_processes.is_some()
                    || isolation.cpu_cores.is_some() =>
            {
                Some(cgroups.create_box(isolation)?)
            }
            _ => None,
        };
        let procs = cgroup
            .as_ref()
            .map(CgroupBox::procs_files)
            .unwrap_or_default();
        let (program, args) = self.wrap_with(program, args, cwd, isolation, &procs, self.features);
        Ok(Wrapped {
            program,
            args,
            cgroup,
        })
    }

    /// A new cgroup with the isolation's limits (for a process forked by a zygote).
    pub(crate) fn cgroup_for(&self, isolation: &Isolation) -> std::io::Result<Option<CgroupBox>> {
        match &self.cgroups {
            Some(cgroups) => cgroups.create_box(isolation).map(Some),
            None => Ok(None),
        }
    }

    /// Cold-start cost of each layer: the mean time to run `/bin/true` `rounds` times
    /// plainly, then through the helper with more and more primitives. For
    /// `check-system`.
    pub fn measure_costs(&self, rounds: u32) -> Vec<(&'static str, Duration)> {
        let run = |program: &Path, args: &[OsString]| -> Duration {
            let started = Instant::now();
            for _ in 0..rounds {
                let _ = run_plainly(program, args);
            }
            started.elapsed() / rounds.max(1)
        };
        let truth = Path::new("/bin/true");
        let isolation = Isolation::new();
        let mut costs = vec![("plain fork + exec of /bin/true", run(truth, &[]))];
        let f = self.features;
        let layers = [
            ("+ helper (re-exec, no primitives)", Features::NONE),
            (
                "+ namespaces (user, pid, mount, net, ipc, uts)",
                Features {
                    namespaces: f.namespaces,
                    ..Features::NONE
                },
            ),
            (
                "+ filesystem view (binds, pivot_root)",
                Features {
                    namespaces: f.namespaces,
                    filesystem: f.filesystem,
                    ..Features::NONE
                },
            ),
            (
                "+ Landlock",
                Features {
                    namespaces: f.namespaces,
                    filesystem: f.filesystem,
                    landlock: f.landlock,
                    seccomp: false,
                },
            ),
            ("+ seccomp, caps dropped (everything)", f),
        ];
        for (name, features) in layers {
            let (program, args) =
                self.wrap_with(truth, &[], Path::new("/"), &isolation, &[], features);
            costs.push((name, run(&program, &args)));
        }
        if let Some(cgroups) = &self.cgroups {
            let limited = isolation.clone().memory(64 << 20).processes(64);
            let started = Instant::now();
            for _ in 0..rounds {
                if let Ok(group) = cgroups.create_box(&limited) {
                    let (program, args) = self.wrap_with(
                        truth,
                        &[],
                        Path::new("/"),
                        &limited,
                        &group.procs_files(),
                        f,
                    );
                    let _ = run_plainly(&program, &args);
                }
            }
            costs.push((
                "+ cgroup (create, limit, join, remove)",
                started.elapsed() / rounds.max(1),
            ));
        }
        costs
    }
}

/// Runs one of the sandbox's own probes to completion: empty environment, no stdin.
fn run_plainly(program: &Path, args: &[OsString]) -> std::io::Result<std::process::Output> {
    std::process::Command::new(program)
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
}

/// A child's command line through the helper, and its cgroup.
pub(crate) struct Wrapped {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cgroup: Option<CgroupBox>,
}

/// Runs one of the platform's own tools (not user code) to read its first line of output,
/// e.g. `rustc --print sysroot`. Blocking; for start-up discovery only.
pub fn probe_first_line(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// Bytes waiting to be read in a pipe (`FIONREAD`); 0 if it cannot be asked.
pub fn pipe_pending(fd: std::os::fd::RawFd) -> usize {
    let mut pending: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid.
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::FIONREAD, &mut pending) };
    if rc < 0 { 0 } else { pending.max(0) as usize }
}

/// Kills a child's whole process group (every child started here leads its own).
pub fn kill_process_group(pid: u32) {
    command::kill_group(pid);
}
