//! Memory, CPU and process limits through cgroups: v2 where the machine has the unified
//! hierarchy, v1 (memory, cpu, pids controllers) where that is what it has.
//!
//! The server creates one parent group, `minifaas-<pid>`, under its own group in each
//! hierarchy, and one [`CgroupBox`] per sandboxed child below it. The helper joins the
//! box before it clones the child, so every page and process the child ever has is
//! counted. A box is removed when dropped (or, if its processes are not reaped yet, on a
//! later drop).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::spec::Isolation;

#[derive(Debug, Clone)]
enum Layout {
    /// One directory per controller hierarchy (the server's parent group in each).
    V1 {
        memory: Option<PathBuf>,
        pids: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    /// The server's parent group in the unified hierarchy.
    V2 { parent: PathBuf },
}

/// The server's cgroups, found at start-up.
#[derive(Debug)]
pub struct Cgroups {
    layout: Layout,
    next: AtomicU64,
}

/// One sandboxed child's groups. Dropping it removes them.
#[derive(Debug)]
pub struct CgroupBox {
    dirs: Vec<PathBuf>,
    memory_dir: Option<PathBuf>,
    v2: bool,
}

/// Boxes whose removal failed because their processes were not reaped yet.
static LEFTOVERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// (mount point, filesystem type, super options) of every cgroup mount.
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            fs_type
                .starts_with("cgroup")
                .then(|| (PathBuf::from(mount_point), fs_type.into(), options.into()))
        })
        .collect()
}

/// This process's group in each hierarchy: (controllers, path).
fn own_groups() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_owned();
            let path = parts.next()?.to_owned();
            Some((controllers, path))
        })
        .collect()
}

/// Removes the groups of earlier servers that died without cleaning up (their pid is
/// gone): empty boxes first, then their parent. Groups still holding processes stay.
fn remove_stale_parents(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("minifaas-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let parent = entry.path();
        if let Ok(boxes) = std::fs::read_dir(&parent) {
            for group in boxes.flatten() {
                if group.file_name().to_string_lossy().starts_with("box-") {
                    let _ = std::fs::remove_dir(group.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&parent);
    }
}

fn relative(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}

impl Cgroups {
    /// Finds the hierarchies and creates the server's parent groups in them.
    pub fn detect() -> Result<Self, String> {
        let mounts = cgroup_mounts();
        let own = own_groups();
        let parent_name = format!("minifaas-{}", std::process::id());
        let v1_controller = |name: &str| -> Option<PathBuf> {
            let (mount, _, _) = mounts
                .iter()
                .find(|(_, fs, options)| fs == "cgroup" && options.split(',').any(|o| o == name))?;
            let (_, path) = own
                .iter()
                .find(|(controllers, _)| controllers.split(',').any(|c| c == name))?;
            let own_dir = mount.join(relative(path));
            remove_stale_parents(&own_dir);
            let dir = own_dir.join(&parent_name);
            std::fs::create_dir_all(&dir).ok()?;
            Some(dir)
        };
        let memory = v1_controller("memory");
        let pids = v1_controller("pids");
        let cpu = v1_controller("cpu");
        if memory.is_some() || pids.is_some() {
            return Ok(Self {
                layout: Layout::V1 { memory, pids, cpu },
                next: AtomicU64::new(1),
            });
        }
        let Some((mount, _, _)) = mounts.iter().find(|(_, fs, _)| fs == "cgroup2") else {
            return Err("no cgroup hierarchy with the memory or pids controller".into());
        };
        let Some((_, path)) = own.iter().find(|(controllers, _)| controllers.is_empty()) else {
            return Err("this process is in no cgroup v2 group".into());
        };
        let own_dir = mount.join(relative(path));
        remove_stale_parents(&own_dir);
        let parent = own_dir.join(&parent_name);
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        // Controllers must be enabled from the root down to the boxes' parent.
        let enable = "+memory +pids +cpu";
        for dir in [&own_dir, &parent] {
            std::fs::write(dir.join("cgroup.subtree_control"), enable).map_err(|e| {
                format!(
                    "enabling memory, pids and cpu in {} (the group must be delegated, \
                     e.g. systemd Delegate=yes): {e}",
                    dir.display()
                )
            })?;
        }
        Ok(Self {
            layout: Layout::V2 { parent },
            next: AtomicU64::new(1),
        })
    }

    /// "v1 (memory, pids, cpu)" or "v2".
    pub fn describe(&self) -> String {
        match &self.layout {
            Layout::V1 { memory, pids, cpu } => {
                let present: Vec<&str> = [("memory", memory), ("pids", pids), ("cpu", cpu)]
                    .iter()
                    .filter(|(_, dir)| dir.is_some())
                    .map(|(name, _)| *name)
                    .collect();
                format!("v1 ({})", present.join(", "))
            }
            Layout::V2 { .. } => "v2 (memory, pids, cpu)".into(),
        }
    }

    /// A new box with the isolation's limits.
    pub fn create_box(&self, isolation: &Isolation) -> std::io::Result<CgroupBox> {
        retry_leftovers();
        let name = format!("box-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut group = CgroupBox {
            dirs: Vec::new(),
            memory_dir: None,
            v2: matches!(self.layout, Layout::V2 { .. }),
        };
        match &self.layout {
            Layout::V1 { memory, pids, cpu } => {
                if let Some(parent) = memory {
                    let dir = group.make(parent.join(&name))?;
                    if let Some(bytes) = isolation.memory_bytes {
                        std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                        // Without swap accounting this file is absent; with it, swap
                        // must not extend the limit.
                        let _ = std::fs::write(
                            dir.join("memory.memsw.limit_in_bytes"),
                            bytes.to_string(),
                        );
                    }
                    group.memory_dir = Some(dir);
                }
                if let Some(parent) = pids {
                    let dir = group.make(parent.join(&name))?;
                    if let Some(max) = isolation.max_processes {
                        std::fs::write(dir.join("pids.max"), max.to_string())?;
                    }
                }
                if let (Some(parent), Some(cores)) = (cpu, isolation.cpu_cores) {
                    let dir = group.make(parent.join(&name))?;
                    let period = 100_000u64;
                    std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())?;
                    let quota = ((cores * period as f64) as u64).max(1000);
                    std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                }
            }
            Layout::V2 { parent } => {
                let dir = group.make(parent.join(&name))?;
                if let Some(bytes) = isolation.memory_bytes {
                    std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(max) = isolation.max_processes {
                    std::fs::write(dir.join("pids.max"), max.to_string())?;
                }
                if let Some(cores) = isolation.cpu_cores {
                    let period = 100_000u64;
                    let quota = ((cores * period as f64) as u64).max(1000);
                    std::fs::write(dir.join("cpu.max"), format!("{quota} {period}"))?;
                }
                group.memory_dir = Some(dir);
            }
        }
        Ok(group)
    }
}

impl CgroupBox {
    fn make(&mut self, dir: PathBuf) -> std::io::Result<PathBuf> {
        std::fs::create_dir(&dir)?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    /// The `cgroup.procs` files a process writes its pid to, to join this box.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Moves a running process (and, on v2, all its threads) into this box.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        for procs in self.procs_files() {
            std::fs::write(procs, pid.to_string())?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer has killed a process of this box.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = &self.memory_dir else {
            return false;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        text.lines().any(|line| {
            line.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
    }
}

impl Drop for CgroupBox {
    fn drop(&mut self) {
        for dir in self.dirs.drain(..) {
            if std::fs::remove_dir(&dir).is_err() && dir.exists() {
                LEFTOVERS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(dir);
            }
        }
    }
}

fn retry_leftovers() {
    let mut leftovers = LEFTOVERS.lock().unwrap_or_else(|p| p.into_inner());
    leftovers.retain(|dir| std::fs::remove_dir(dir).is_err() && dir.exists());
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        retry_leftovers();
        let parents: Vec<&PathBuf> = match &self.layout {
            Layout::V1 { memory, pids, cpu } => [memory, pids, cpu]
                .into_iter()
                .filter_map(Option::as_ref)
                .collect(),
            Layout::V2 { parent } => vec![parent],
        };
        for parent in parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_groups_parse() {
        // Whatever the machine, every line has a path.
        for (_, path) in own_groups() {
            assert!(path.starts_with('/'));
        }
    }
}
