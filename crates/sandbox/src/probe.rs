//! `minifaas __sandbox-probe`: tries each kernel primitive in a forked child of the
//! (single-threaded) helper and prints what works as JSON. The server runs it once at
//! start-up and `check-system` prints it as a table.

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use serde::{Deserialize, Serialize};

/// Which primitives this machine offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub user_namespace: bool,
    pub pid_namespace: bool,
    pub mount_namespace: bool,
    pub network_namespace: bool,
    pub ipc_namespace: bool,
    pub uts_namespace: bool,
    pub seccomp: bool,
    pub no_new_privs: bool,
    /// "fully enforced", "partially enforced", or empty when unusable.
    pub landlock: String,
}

/// Runs `check` in a forked child; true if it returned true.
fn in_child(check: impl FnOnce() -> bool) -> bool {
    // SAFETY: the helper is single-threaded, so the child may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = if check() { 0 } else { 1 };
            // SAFETY: leaving the child without running the parent's exit handlers.
            unsafe { nix::libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
        Err(_) => false,
    }
}

fn namespace(flag: CloneFlags) -> bool {
    in_child(|| nix::sched::unshare(CloneFlags::CLONE_NEWUSER | flag).is_ok())
}

pub(crate) fn probe_main() -> i32 {
    let result = ProbeResult {
        user_namespace: namespace(CloneFlags::empty()),
        pid_namespace: namespace(CloneFlags::CLONE_NEWPID),
        mount_namespace: namespace(CloneFlags::CLONE_NEWNS),
        network_namespace: namespace(CloneFlags::CLONE_NEWNET),
        ipc_namespace: namespace(CloneFlags::CLONE_NEWIPC),
        uts_namespace: namespace(CloneFlags::CLONE_NEWUTS),
        no_new_privs: in_child(|| nix::sys::prctl::set_no_new_privs().is_ok()),
        seccomp: in_child(|| {
            nix::sys::prctl::set_no_new_privs().is_ok() && crate::confine::apply_seccomp().is_ok()
        }),
        landlock: {
            let fully = in_child(|| {
                crate::confine::landlock_status() == Some(landlock::RulesetStatus::FullyEnforced)
            });
            let partly = fully || in_child(|| crate::confine::landlock_status().is_some());
            match (fully, partly) {
                (true, _) => "fully enforced".into(),
                (false, true) => "partially enforced".into(),
                _ => String::new(),
            }
        },
    };
    match serde_json::to_string(&result) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(_) => 1,
    }
}
