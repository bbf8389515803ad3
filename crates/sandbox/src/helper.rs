//! The helper: what `minifaas __sandbox-exec SPEC -- PROGRAM ARGS...` does.
//!
//! The server never sets up namespaces between `fork` and `exec` of its own
//! multi-threaded process (where only async-signal-safe calls are allowed). It starts its
//! own binary in this mode instead: a fresh, single-threaded process that may allocate,
//! use the `landlock` and `seccompiler` crates, and fork freely. It:
//!
//! 1. joins the child's cgroups (so everything it starts is counted from the first page);
//! 2. drops supplementary groups and `clone`s the child into new user, PID, mount, IPC,
//!    UTS and (unless the function may use the network) network namespaces;
//! 3. writes the child's uid/gid maps. As root: inside 0 is root (the child needs it to
//!    reach the paths it mounts, a toolchain under `/root` say) and inside 65534 is
//!    `nobody`, which the child becomes, with no capabilities, before it execs the
//!    program. So even a file the program could see by mistake is checked against an
//!    unprivileged owner. Not as root: inside 0 is the server's own uid, the only
//!    mapping the kernel allows;
//! 4. stays as the child's parent, mirrors its exit status, and dies with the server.
//!
//! The child, pid 1 of its namespace, builds its filesystem view (`mounts.rs`), then
//! applies Landlock, drops every capability, installs the seccomp filter
//! (`confine.rs`), and execs the program. A failure at any step is reported to the
//! helper over a pipe and the program never runs: exit status 125 and one line on stderr
//! saying which step failed.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt as _;

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};

use crate::spec::{EXEC_ARG, HelperSpec, PROBE_ARG};

/// The exit status of a helper whose sandbox could not be set up.
pub const SETUP_FAILED: i32 = 125;

/// If this process was started as the helper, runs it and returns the exit status to
/// end with; otherwise `None`. Call first thing in `main`, before any thread starts.
pub fn run_if_helper() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    let mode = args.next()?;
    if mode == PROBE_ARG {
        return Some(crate::probe::probe_main());
    }
    if mode != EXEC_ARG {
        return None;
    }
    let Some(spec) = args.next() else {
        eprintln!("minifaas sandbox: missing spec");
        return Some(SETUP_FAILED);
    };
    let spec: HelperSpec = match serde_json::from_str(&spec.to_string_lossy()) {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("minifaas sandbox: bad spec: {err}");
            return Some(SETUP_FAILED);
        }
    };
    if args.next().as_deref() != Some(std::ffi::OsStr::new("--")) {
        eprintln!("minifaas sandbox: expected -- before the program");
        return Some(SETUP_FAILED);
    }
    let argv: Vec<OsString> = args.collect();
    if argv.is_empty() {
        eprintln!("minifaas sandbox: no program to run");
        return Some(SETUP_FAILED);
    }
    Some(match exec_main(&spec, &argv) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("minifaas sandbox: {err}");
            SETUP_FAILED
        }
    })
}

fn step<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}"))
}

fn exec_main(spec: &HelperSpec, argv: &[OsString]) -> Result<i32, String> {
    let pid = std::process::id();
    for procs in &spec.cgroup_procs {
        step(
            &format!("joining cgroup {}", procs.display()),
            std::fs::write(procs, pid.to_string()),
        )?;
    }
    let is_root = Uid::effective().is_root();
    if is_root {
        // Supplementary groups (root's among them) would follow the child everywhere.
        step("dropping supplementary groups", nix::unistd::setgroups(&[]))?;
    }
    if !spec.features.namespaces {
        // No namespaces on this machine: the program keeps the server's user (it must
        // still reach runtimes under the server's home) but no capability, and Landlock
        // and seccomp (where present) are the walls.
        let err = confine_and_exec(spec, argv);
        return Err(err);
    }
    if is_root {
        for dir in &spec.isolation.writable {
            // The child is `nobody` outside: give it the directories it must write.
            step(
                &format!("handing {} to the sandbox user", dir.display()),
                nix::unistd::chown(
                    dir,
                    Some(Uid::from_raw(spec.outside_uid)),
                    Some(Gid::from_raw(spec.outside_gid)),
                ),
            )?;
        }
    }

    // Checked now, so a missing path fails before any namespace exists.
    let sources = if spec.features.filesystem {
        crate::mounts::open_sources(spec)?
    } else {
        Vec::new()
    };
    let (go_read, go_write) = step("creating a pipe", nix::unistd::pipe())?;
    let (err_read, err_write) = step(
        "creating a pipe",
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC),
    )?;
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if !spec.isolation.network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut stack = vec![0u8; 4 * 1024 * 1024];
    let go_read_fd = go_read.as_raw_fd();
    let err_write_fd = err_write.as_raw_fd();
    let go_write_fd = go_write.as_raw_fd();
    let err_read_fd = err_read.as_raw_fd();
    let child_main = Box::new(|| -> isize {
        // The child's copies of the helper's ends.
        let _ = nix::unistd::close(go_write_fd);
        let _ = nix::unistd::close(err_read_fd);
        let error = child(spec, &sources, argv, go_read_fd);
        // Only reached when something failed: tell the helper what.
        let mut pipe = unsafe_file(err_write_fd);
        let _ = pipe.write_all(error.as_bytes());
        std::mem::forget(pipe);
        SETUP_FAILED as isize
    });
    // SAFETY: this process is single-threaded (the helper starts no threads), so the
    // child may run arbitrary code, as after fork(); the stack outlives the call.
    let child_pid = step("clone into namespaces", unsafe {
        nix::sched::clone(
            child_main,
            &mut stack,
            flags,
            Some(nix::sys::signal::Signal::SIGCHLD as i32),
        )
    })?;
    drop(go_read);
    drop(err_write);

    let mapped = write_id_maps(child_pid, spec);
    let mut go = std::fs::File::from(go_write);
    if let Err(err) = mapped {
        let _ = nix::sys::signal::kill(child_pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(child_pid, None);
        return Err(err);
    }
    step("starting the child", go.write_all(b"g"))?;
    drop(go);

    // The error pipe closes on exec (CLOEXEC) with nothing in it, or carries the reason.
    let mut reason = String::new();
    let _ = std::fs::File::from(err_read).read_to_string(&mut reason);
    if !reason.is_empty() {
        let _ = waitpid(child_pid, None);
        return Err(reason);
    }
    close_inherited_fds();
    Ok(wait_and_mirror(child_pid))
}

/// A `File` over a raw fd the caller keeps ownership of (`mem::forget` it after use).
fn unsafe_file(fd: i32) -> std::fs::File {
    use std::os::fd::FromRawFd as _;
    // SAFETY: fd is open in this process; the caller forgets the File instead of
    // closing it twice.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

/// The inside uid/gid the program runs as: `nobody` when the helper is root (it maps
/// both 0 and 65534) and the filesystem view shows it what it needs, else 0 (the
/// server's own uid: the only one it may map, or the one that reaches the runtimes).
fn program_ids(spec: &HelperSpec) -> (u32, u32) {
    if Uid::effective().is_root() && spec.features.filesystem {
        (spec.outside_uid, spec.outside_gid)
    } else {
        (0, 0)
    }
}

fn write_id_maps(child: Pid, spec: &HelperSpec) -> Result<(), String> {
    let proc_dir = format!("/proc/{child}");
    let (uid_map, gid_map) = if Uid::effective().is_root() {
        (
            format!("0 0 1\n{0} {0} 1\n", spec.outside_uid),
            format!("0 0 1\n{0} {0} 1\n", spec.outside_gid),
        )
    } else {
        (
            format!("0 {} 1\n", Uid::effective()),
            format!("0 {} 1\n", Gid::effective()),
        )
    };
    step(
        "writing setgroups",
        std::fs::write(format!("{proc_dir}/setgroups"), "deny"),
    )?;
    step(
        "writing uid_map",
        std::fs::write(format!("{proc_dir}/uid_map"), uid_map),
    )?;
    step(
        "writing gid_map",
        std::fs::write(format!("{proc_dir}/gid_map"), gid_map),
    )
}

/// The child, pid 1 of its namespaces. Returns only on failure, with the reason.
fn child(
    spec: &HelperSpec,
    sources: &[crate::mounts::Source],
    argv: &[OsString],
    go_read: i32,
) -> String {
    if let Err(err) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return format!("setting the parent-death signal: {err}");
    }
    let mut byte = [0u8; 1];
    let mut go = unsafe_file(go_read);
    let started = go.read_exact(&mut byte);
    drop(go);
    if let Err(err) = started {
        return format!("waiting for the id maps: {err}");
    }
    // Root of the user namespace while the view is built.
    if let Err(err) = become_user(0, 0) {
        return format!("becoming root of the user namespace: {err}");
    }
    if let Err(err) = nix::unistd::sethostname("minifaas") {
        return format!("setting the hostname: {err}");
    }
    if spec.features.filesystem
        && let Err(err) = crate::mounts::enter_minimal_root(spec, sources)
    {
        return err;
    }
    if let Err(err) = crate::confine::drop_bounding_set() {
        return err;
    }
    let (uid, gid) = program_ids(spec);
    if let Err(err) = become_user(uid, gid) {
        return format!("becoming the sandbox user: {err}");
    }
    confine_and_exec(spec, argv)
}

fn become_user(uid: u32, gid: u32) -> nix::Result<()> {
    let gid = Gid::from_raw(gid);
    let uid = Uid::from_raw(uid);
    nix::unistd::setresgid(gid, gid, gid)?;
    nix::unistd::setresuid(uid, uid, uid)
}

/// Working directory, Landlock, capabilities, seccomp, exec. Returns only on failure.
fn confine_and_exec(spec: &HelperSpec, argv: &[OsString]) -> String {
    if let Err(err) = std::env::set_current_dir(&spec.cwd) {
        return format!("entering {}: {err}", spec.cwd.display());
    }
    if spec.features.landlock
        && let Err(err) = crate::confine::apply_landlock(&spec.isolation, spec.features.filesystem)
    {
        return err;
    }
    if let Err(err) = crate::confine::set_no_new_privs() {
        return err;
    }
    if let Err(err) = crate::confine::drop_capabilities() {
        return err;
    }
    if spec.features.seccomp
        && let Err(err) = crate::confine::apply_seccomp()
    {
        return err;
    }
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]);
    if !spec.features.filesystem
        && let Some(dir) = spec.isolation.writable.first()
    {
        // The host's /tmp is shut (it holds anything); temporary files go to the
        // child's own writable directory.
        command.env("TMPDIR", dir);
    }
    let err = command.exec();
    format!("running {}: {err}", argv[0].to_string_lossy())
}

/// The helper keeps only stdin/stdout/stderr: the child alone holds the worker's pipes,
/// so the server sees them close when the child ends.
fn close_inherited_fds() {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // Descriptors no Rust object wraps (the directory stream above is closed).
        let _ = nix::unistd::close(fd);
    }
}

/// Waits for the child and ends the way it ended (same code, or same signal).
fn wait_and_mirror(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                // SAFETY: resetting a handler to the default in a single-threaded process.
                unsafe {
                    let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
                }
                let _ = nix::sys::signal::raise(signal);
                return 128 + signal as i32;
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
    }
}
