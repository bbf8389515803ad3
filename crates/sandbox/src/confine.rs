//! The last walls before `exec`: Landlock, `no_new_privs`, no capabilities, seccomp.

use std::collections::BTreeMap;

use nix::libc;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::spec::{ETC_FILES, ETC_NETWORK_FILES, Isolation, SYSTEM_PATHS};

/// The newest Landlock ABI this code asks for; older kernels get what they support.
const LANDLOCK_ABI: ABI = ABI::V6;

/// Restricts the filesystem to the sandbox's paths (a second wall around the mount
/// view, and the only one where namespaces are missing), TCP to nothing unless the
/// child may use the network, and signals and abstract sockets to its own domain.
/// `private_tmp`: `/tmp` and `/dev/shm` are the sandbox's own tmpfs (the filesystem
/// view is on); without the view they are the host's, holding anything, and stay shut.
pub(crate) fn apply_landlock(isolation: &Isolation, private_tmp: bool) -> Result<(), String> {
    let fail = |e: landlock::RulesetError| format!("Landlock: {e}");
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(fail)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(fail)?;
    if !isolation.network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(LANDLOCK_ABI))
            .map_err(fail)?;
    }
    let readable = SYSTEM_PATHS
        .iter()
        .chain(ETC_FILES)
        .chain(ETC_NETWORK_FILES)
        .map(std::path::PathBuf::from)
        .chain(isolation.read_only.iter().cloned())
        .chain(["/proc".into()]);
    let scratch: &[&str] = if private_tmp {
        &["/tmp", "/dev/shm"]
    } else {
        &[]
    };
    let writable = isolation
        .writable
        .iter()
        .cloned()
        .chain(scratch.iter().map(std::path::PathBuf::from));
    let devices = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
    ];
    let status = ruleset
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(readable, read))
        .map_err(fail)?
        .add_rules(path_beneath_rules(writable, all))
        .map_err(fail)?
        .add_rules(path_beneath_rules(
            devices,
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("Landlock: the kernel enforced nothing".into());
    }
    Ok(())
}

/// What the Landlock probe finds: `None` if Landlock is unusable here.
pub(crate) fn landlock_status() -> Option<RulesetStatus> {
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .ok()?
        .create()
        .ok()?;
    let status = ruleset.restrict_self().ok()?;
    Some(status.ruleset)
}

pub(crate) fn set_no_new_privs() -> Result<(), String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))
}

/// Empties the bounding, inheritable and ambient sets (needs CAP_SETPCAP, so before
/// the child gives up root): no later `exec` can bring a capability back.
pub(crate) fn drop_bounding_set() -> Result<(), String> {
    use caps::CapSet;
    for set in [CapSet::Ambient, CapSet::Bounding, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| format!("dropping capabilities ({set:?}): {e}"))?;
    }
    Ok(())
}

/// Empties every capability set, the bounding set included, so that after `exec`
/// root of the user namespace has no capability at all.
pub(crate) fn drop_capabilities() -> Result<(), String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Bounding,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("dropping capabilities ({set:?}): {e}"))?;
    }
    Ok(())
}

/// System calls a function or a compiler never needs: changing mounts or namespaces,
/// debugging other processes, loading kernel code, the kernel keyring, BPF, raw clock
/// and I/O port access, io_uring. They fail with EPERM.
const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// `clone` flags that would create namespaces (a way back to capabilities).
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))
}

/// The deny-list filter.
pub(crate) fn deny_filter() -> Result<BpfProgram, String> {
    let fail = |e: seccompiler::BackendError| format!("seccomp: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED_SYSCALLS
        .iter()
        .map(|&syscall| (syscall, Vec::new()))
        .collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .map_err(fail)?,
            ])
            .map_err(fail)
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        target_arch()?,
    )
    .map_err(fail)?;
    filter.try_into().map_err(fail)
}

/// `clone3` passes its flags in memory a filter cannot read: answer ENOSYS, so libc
/// falls back to `clone`, whose flags the deny filter checks.
fn clone3_filter() -> Result<BpfProgram, String> {
    let fail = |e: seccompiler::BackendError| format!("seccomp: {e}");
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        target_arch()?,
    )
    .map_err(fail)?
    .try_into()
    .map_err(fail)
}

pub(crate) fn apply_seccomp() -> Result<(), String> {
    for program in [deny_filter()?, clone3_filter()?] {
        seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_this_machine() {
        assert!(!deny_filter().unwrap().is_empty());
        assert!(!clone3_filter().unwrap().is_empty());
    }
}
