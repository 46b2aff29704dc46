//! The lazy disk layer under each node: a FUSE file system served by the harness (one
//! thread per node, in the harness' own cgroup, so freezing a node never freezes its file
//! system) over a backing directory, keeping what the node did not sync in its own cache
//! ([`lazy_fs`]) so that the `disk` fault kind can drop it.
//!
//! A node's data directory (`nodes/<node>/data`) is the mount point; the backing directory
//! (the "disk", what survives) is `nodes/<node>/disk/backing`, entries removed but not yet
//! synced are parked in `nodes/<node>/disk/parked`. Every mount is recorded in the run's
//! record before it is made, unmounted when its [`DiskLayer`] is dropped (normal end, error,
//! panic, signals: the run's guards drop the cluster), and by `splitbrain cleanup` (lazily)
//! after the harness was killed.

pub mod control;
pub mod corrupt;
pub mod fuse;
pub mod lazy_fs;

use lazy_fs::LazyFs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The mount's source name (`/proc/self/mountinfo`): cleanup unmounts only mounts that
/// carry it and that a run recorded.
pub const FS_NAME: &str = "splitbrain-disk";
/// How much unsynced file data one node's cache holds before it writes everything back.
pub const CACHE_LIMIT: u64 = 64 * 1024 * 1024;

/// One node's mounted layer; unmounted when dropped.
pub struct DiskLayer {
    state: Arc<Mutex<LazyFs>>,
    mountpoint: PathBuf,
    backing: PathBuf,
    /// Copies of backing files kept by `disk-corrupt` faults (path relative to the backing
    /// directory → bytes, the oldest kept), for `old-copy` to put back.
    kept_copies: Mutex<std::collections::BTreeMap<PathBuf, Vec<u8>>>,
    session: Option<::fuser::BackgroundSession>,
}

impl DiskLayer {
    /// Mounts a layer over `backing` at `mountpoint` (parking removed entries in `parking`).
    pub fn mount(
        mountpoint: &Path,
        backing: &Path,
        parking: &Path,
        limit: u64,
    ) -> io::Result<DiskLayer> {
        let state = Arc::new(Mutex::new(LazyFs::new(backing, parking, limit)?));
        std::fs::create_dir_all(mountpoint)?;
        let mut config = ::fuser::Config::default();
        // Nodes that run as their own user (PostgreSQL) use the mount too; the kernel
        // checks each access against the owners and modes the layer reports.
        config.acl = ::fuser::SessionACL::All;
        config.mount_options = vec![
            ::fuser::MountOption::FSName(FS_NAME.to_owned()),
            ::fuser::MountOption::Subtype(FS_NAME.to_owned()),
            ::fuser::MountOption::DefaultPermissions,
        ];
        let fs = fuse::LazyFuse {
            state: state.clone(),
            backing: backing.to_path_buf(),
        };
        let session = ::fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(DiskLayer {
            state,
            mountpoint: mountpoint.to_path_buf(),
            backing: backing.to_path_buf(),
            kept_copies: Mutex::default(),
            session: Some(session),
        })
    }

    /// The layer's state (its cache, its faults, its counters).
    pub fn state(&self) -> MutexGuard<'_, LazyFs> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The backing directory: the node's disk, what survives it.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The copies of backing files kept so far (see [`corrupt`]).
    pub fn kept_copies(&self) -> MutexGuard<'_, std::collections::BTreeMap<PathBuf, Vec<u8>>> {
        self.kept_copies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes everything written through the layer so far durable (every file's data and
    /// every directory entry), as `sync(2)` would.
    pub fn sync_all(&self) -> io::Result<()> {
        self.state().sync_all()
    }

    /// Unmounts (idempotent): what the node wrote is written back first; a busy mount is
    /// detached (lazy unmount).
    pub fn unmount(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let _ = self.state().sync_all();
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                if is_our_mount(&self.mountpoint) {
                    nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH)
                        .map_err(io::Error::from)?;
                }
                if is_our_mount(&self.mountpoint) {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Drop for DiskLayer {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            crate::stderr_line!(
                "splitbrain: unmounting the disk layer at {}: {e}",
                self.mountpoint.display()
            );
        }
    }
}

/// The layers of a cluster's nodes, by node name. Dropping it unmounts them all.
#[derive(Default)]
pub struct NodeDisks {
    /// Boxed: a cluster without layers carries one pointer.
    layers: Box<Layers>,
}

#[derive(Default)]
struct Layers(Vec<(String, DiskLayer)>);

impl NodeDisks {
    /// The layer under `node`, if the cluster has layers.
    pub fn get(&self, node: &str) -> Option<&DiskLayer> {
        self.layers
            .0
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, l)| l)
    }

    pub fn is_empty(&self) -> bool {
        self.layers.0.is_empty()
    }

    /// Mounts the layer of `node` at its data directory `data_dir` (the backing directory
    /// beside it, in `<data_dir>/../disk/`). `record` is given the mount point first, so
    /// that the mount is on the run's record before it exists (cleanup after a crash).
    pub fn mount_node(
        &mut self,
        node: &str,
        data_dir: &Path,
        record: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let node_dir = data_dir.parent().unwrap_or(data_dir);
        let disk = node_dir.join("disk");
        std::fs::create_dir_all(data_dir)?;
        let mountpoint = data_dir.canonicalize()?;
        record(&mountpoint)?;
        let layer = DiskLayer::mount(
            &mountpoint,
            &disk.join("backing"),
            &disk.join("parked"),
            CACHE_LIMIT,
        )?;
        self.layers.0.push((node.to_owned(), layer));
        Ok(())
    }

    /// Unmounts every layer, reporting the first error.
    pub fn unmount_all(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for (_, layer) in &mut self.layers.0 {
            if let Err(e) = layer.unmount() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        self.layers.0.clear();
        first
    }
}

/// Whether `path` is a mount point of this layer (per `/proc/self/mountinfo`).
pub fn is_our_mount(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| mount_line_is_ours(line, path))
}

/// One mountinfo line: `id parent maj:min root mountpoint options... - fstype source ...`.
fn mount_line_is_ours(line: &str, path: &Path) -> bool {
    let fields: Vec<&str> = line.split(' ').collect();
    let Some(dash) = fields.iter().position(|f| *f == "-") else {
        return false;
    };
    let mountpoint = fields.get(4).map(|m| unescape_mountinfo(m));
    let fstype = fields.get(dash + 1).copied().unwrap_or("");
    let source = fields.get(dash + 2).copied().unwrap_or("");
    mountpoint.as_deref() == Some(path.as_os_str().to_str().unwrap_or("\0"))
        && fstype.starts_with("fuse")
        && source == FS_NAME
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lazily unmounts `path` if it is one of our mounts (cleanup after a killed harness).
/// Returns whether something was unmounted.
pub fn detach_if_ours(path: &Path) -> io::Result<bool> {
    if !is_our_mount(path) {
        return Ok(false);
    }
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mounts_of_ours_at_that_path_match() {
        let ours = "36 25 0:45 / /tmp/run\\040x/nodes/n1/data rw,nosuid - fuse.splitbrain-disk splitbrain-disk rw";
        assert!(mount_line_is_ours(
            ours,
            Path::new("/tmp/run x/nodes/n1/data")
        ));
        assert!(!mount_line_is_ours(
            ours,
            Path::new("/tmp/run x/nodes/n2/data")
        ));
        let other = "36 25 0:45 / /tmp/data rw - fuse.sshfs host:/x rw";
        assert!(!mount_line_is_ours(other, Path::new("/tmp/data")));
        let tmpfs = "36 25 0:45 / /tmp/data rw - tmpfs splitbrain-disk rw";
        assert!(!mount_line_is_ours(tmpfs, Path::new("/tmp/data")));
    }
}
