//! The minimal filesystem view of a sandboxed child (run inside its new mount namespace).
//!
//! A tmpfs becomes the new root; on it, at the same paths as outside: the system
//! directories and a few `/etc` files read-only, the caller's read-only and writable
//! paths, a handful of device nodes, a fresh `/proc` for the child's PID namespace and a
//! private, size-limited `/tmp`. Then `pivot_root` into it, detach the old root, and make
//! the new root itself read-only. What is not listed does not exist for the child: not
//! the data dir, not another function's code, not `/etc/shadow`, not `/root`.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::spec::{ETC_FILES, ETC_NETWORK_FILES, HelperSpec, SYSTEM_PATHS};

/// Device nodes a program may expect.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

fn fail<E: std::fmt::Display>(what: String) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// `path` under `root` (both absolute).
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// A path to show in the sandbox, checked by the helper before the child starts.
pub(crate) struct Source {
    path: PathBuf,
    /// For a top-level symlink (`/bin -> usr/bin`): recreated, not mounted.
    link: Option<PathBuf>,
    is_dir: bool,
    read_only: bool,
}

/// Everything the view will show, in mount order (parents before children).
pub(crate) fn open_sources(spec: &HelperSpec) -> Result<Vec<Source>, String> {
    let mut sources = Vec::new();
    let open = |path: &Path, read_only: bool| -> Result<Source, String> {
        let meta =
            std::fs::metadata(path).map_err(fail(format!("sandbox path {}", path.display())))?;
        Ok(Source {
            path: path.to_owned(),
            link: None,
            is_dir: meta.is_dir(),
            read_only,
        })
    };
    for system in SYSTEM_PATHS {
        let path = Path::new(system);
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(path).map_err(fail(format!("reading the link {system}")))?;
                sources.push(Source {
                    path: path.to_owned(),
                    link: Some(target),
                    is_dir: false,
                    read_only: true,
                });
            }
            Ok(_) => sources.push(open(path, true)?),
            Err(_) => {}
        }
    }
    let network_files: &[&str] = if spec.isolation.network {
        ETC_NETWORK_FILES
    } else {
        &[]
    };
    for file in ETC_FILES.iter().chain(network_files) {
        if Path::new(file).exists() {
            sources.push(open(Path::new(file), true)?);
        }
    }
    let mut paths: Vec<(&PathBuf, bool)> = spec
        .isolation
        .read_only
        .iter()
        .map(|p| (p, true))
        .chain(spec.isolation.writable.iter().map(|p| (p, false)))
        .collect();
    paths.sort_by_key(|(p, _)| p.components().count());
    for (path, read_only) in paths {
        if !path.is_absolute() {
            return Err(format!("sandbox path {} is not absolute", path.display()));
        }
        sources.push(open(path, read_only)?);
    }
    Ok(sources)
}

/// Builds the view under `spec.staging_root` and pivots into it.
pub(crate) fn enter_minimal_root(spec: &HelperSpec, sources: &[Source]) -> Result<(), String> {
    let root = spec.staging_root.as_path();
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(fail("making mounts private".into()))?;
    tmpfs(root, MsFlags::empty(), "size=4m,mode=0755")?;

    // The private /tmp first: a path the caller lists under /tmp is mounted on it.
    let tmp = under(root, Path::new("/tmp"));
    std::fs::create_dir_all(&tmp).map_err(fail("creating /tmp".into()))?;
    let tmp_options = format!("size={},mode=1777", spec.isolation.tmp_bytes.max(4096));
    tmpfs(&tmp, MsFlags::empty(), &tmp_options)?;

    for source in sources {
        match &source.link {
            // Merged /usr: /bin -> usr/bin and the like stay symlinks.
            Some(target) => std::os::unix::fs::symlink(target, under(root, &source.path))
                .map_err(fail(format!("linking {}", source.path.display())))?,
            None => bind(root, source)?,
        }
    }

    let dev = under(root, Path::new("/dev"));
    std::fs::create_dir_all(&dev).map_err(fail("creating /dev".into()))?;
    for device in DEVICES {
        let source = Path::new("/dev").join(device);
        let target = dev.join(device);
        std::fs::write(&target, b"").map_err(fail(format!("creating /dev/{device}")))?;
        mount(Some(&source), &target, none, MsFlags::MS_BIND, none)
            .map_err(fail(format!("binding /dev/{device}")))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(fail(format!("linking /dev/{name}")))?;
    }
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).map_err(fail("creating /dev/shm".into()))?;
    tmpfs(&shm, MsFlags::MS_NOEXEC, "size=16m,mode=1777")?;

    let proc_dir = under(root, Path::new("/proc"));
    std::fs::create_dir_all(&proc_dir).map_err(fail("creating /proc".into()))?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(fail("mounting /proc".into()))?;

    std::env::set_current_dir(root).map_err(fail("entering the new root".into()))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root".into()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detaching the old root".into()))?;
    std::env::set_current_dir("/").map_err(fail("entering /".into()))?;
    mount(
        none,
        "/",
        none,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(fail("making the root read-only".into()))?;
    Ok(())
}

/// Mounts a fresh tmpfs on `target`: never set-uid programs or device nodes.
fn tmpfs(target: &Path, extra: MsFlags, options: &str) -> Result<(), String> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | extra,
        Some(options),
    )
    .map_err(fail(format!("mounting a tmpfs on {}", target.display())))
}

/// Bind-mounts a source at its own path under `root`, read-only or not, never with
/// set-uid programs or device nodes.
fn bind(root: &Path, source: &Source) -> Result<(), String> {
    let none: Option<&str> = None;
    let path = source.path.as_path();
    let target = under(root, path);
    if source.is_dir {
        std::fs::create_dir_all(&target)
            .map_err(fail(format!("creating the mount point {}", path.display())))?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(fail(format!("creating the mount point {}", path.display())))?;
        }
        std::fs::write(&target, b"")
            .map_err(fail(format!("creating the mount point {}", path.display())))?;
    }
    mount(Some(path), &target, none, MsFlags::MS_BIND, none)
        .map_err(fail(format!("binding {}", path.display())))?;
    // A remount may add restrictions but must keep those the source mount has locked.
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if source.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    if let Ok(stat) = nix::sys::statvfs::statvfs(&target) {
        use nix::sys::statvfs::FsFlags;
        let kept = stat.flags();
        for (fs_flag, ms_flag) in [
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if kept.contains(fs_flag) {
                flags |= ms_flag;
            }
        }
    }
    mount(none, &target, none, flags, none)
        .map_err(fail(format!("restricting the mount {}", path.display())))?;
    Ok(())
}
