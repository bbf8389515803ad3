//! minifaas-sandbox: the one place that creates child processes.
//!
//! Every child is started here: one-shot programs (compilers, installers, script-mode
//! functions) through [`SandboxedCommand`], long-lived language workers through
//! [`WorkerCommand`] (protocol on fds 3 and 4, stdout/stderr as the log). Each gets:
//! - an empty environment but for what the caller lists explicitly (no host secrets
//!   leak through the environment);
//! - its own process group, killed whole on timeout, so a compiler's helpers
//!   (`wasm-ld`, `rust-lld`, `go tool compile`) die with it;
//! - `PR_SET_PDEATHSIG(SIGKILL)`: a child never outlives the server;
//! - rlimits: CPU seconds, file size, open files, no core dumps;
//! - a wall-clock limit and a cap on the stdout/stderr it may return.
//!
//! Not yet applied here: namespaces, cgroups, seccomp and Landlock. [`isolation_report`]
//! says so, and the server logs it as a warning at start-up rather than pretend.

mod command;
mod worker;
mod zygote;

pub use command::{Limits, Outcome, SandboxedCommand};
pub use worker::{REQUEST_FD, RESPONSE_FD, WorkerCommand, WorkerProcess};
pub use zygote::{ForkedWorker, ZygoteProcess};

/// One isolation primitive and whether minifaas applies it.
#[derive(Debug, Clone)]
pub struct Primitive {
    pub name: &'static str,
    pub applied: bool,
    pub without_it: &'static str,
}

/// What isolation children get on this machine, for the start-up log.
pub fn isolation_report() -> Vec<Primitive> {
    vec![
        Primitive {
            name: "rlimits (cpu, fsize, nofile, core)",
            applied: true,
            without_it: "",
        },
        Primitive {
            name: "process group + parent-death signal",
            applied: true,
            without_it: "",
        },
        Primitive {
            name: "namespaces (user, pid, mount, net, ipc, uts)",
            applied: false,
            without_it: "compilers and functions see the host filesystem and network as the server's user",
        },
        Primitive {
            name: "cgroups (memory, cpu, pids)",
            applied: false,
            without_it: "memory is bounded only by the machine (wasm linear memory stays capped)",
        },
        Primitive {
            name: "seccomp + no_new_privs + Landlock",
            applied: false,
            without_it: "compilers and workers may make any system call the server's user may",
        },
    ]
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

/// Kills a child's whole process group (every child started here leads its own).
pub fn kill_process_group(pid: u32) {
    command::kill_group(pid);
}
