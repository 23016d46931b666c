//! Paths of Docker's overlay2 on-disk layout under a data root, in one place.

use std::path::{Path, PathBuf};

use crate::ids::hex_of;

/// Every path the store uses, derived from the data root (`/var/lib/berth`).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Layout under `root`.
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }
    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `image/overlay2`.
    pub fn image_dir(&self) -> PathBuf {
        self.root.join("image/overlay2")
    }
    /// `image/overlay2/repositories.json`.
    pub fn repositories_json(&self) -> PathBuf {
        self.image_dir().join("repositories.json")
    }
    /// `image/overlay2/imagedb/content/sha256`.
    pub fn imagedb_content(&self) -> PathBuf {
        self.image_dir().join("imagedb/content/sha256")
    }
    /// `image/overlay2/imagedb/content/sha256/<id hex>`.
    pub fn image_config(&self, id: &str) -> PathBuf {
        self.imagedb_content().join(hex_of(id))
    }
    /// `image/overlay2/imagedb/metadata/sha256`.
    pub fn imagedb_metadata(&self) -> PathBuf {
        self.image_dir().join("imagedb/metadata/sha256")
    }
    /// `image/overlay2/imagedb/metadata/sha256/<id hex>`.
    pub fn image_metadata(&self, id: &str) -> PathBuf {
        self.imagedb_metadata().join(hex_of(id))
    }
    /// `image/overlay2/layerdb/sha256`.
    pub fn layerdb(&self) -> PathBuf {
        self.image_dir().join("layerdb/sha256")
    }
    /// `image/overlay2/layerdb/sha256/<chain hex>`.
    pub fn layer_meta(&self, chain_id: &str) -> PathBuf {
        self.layerdb().join(hex_of(chain_id))
    }
    /// `image/overlay2/layerdb/mounts`.
    pub fn mounts_db(&self) -> PathBuf {
        self.image_dir().join("layerdb/mounts")
    }
    /// `image/overlay2/layerdb/mounts/<container id>`.
    pub fn mount_meta(&self, container_id: &str) -> PathBuf {
        self.mounts_db().join(container_id)
    }
    /// `image/overlay2/distribution`.
    pub fn distribution(&self) -> PathBuf {
        self.image_dir().join("distribution")
    }
    /// `overlay2`: the driver home holding one dir per layer.
    pub fn driver_home(&self) -> PathBuf {
        self.root.join("overlay2")
    }
    /// `overlay2/<cache id>`.
    pub fn cache_dir(&self, cache_id: &str) -> PathBuf {
        self.driver_home().join(cache_id)
    }
    /// `overlay2/l`.
    pub fn links_dir(&self) -> PathBuf {
        self.driver_home().join("l")
    }
    /// `tmp` under the data root: spool space for archives on the same filesystem.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// Create every directory the layout needs.
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for d in [
            self.imagedb_content(),
            self.imagedb_metadata(),
            self.layerdb(),
            self.mounts_db(),
            self.distribution().join("diffid-by-digest/sha256"),
            self.distribution().join("v2metadata-by-diffid/sha256"),
            self.links_dir(),
            self.tmp_dir(),
        ] {
            std::fs::create_dir_all(d)?;
        }
        spread_subdirs(&self.driver_home());
        Ok(())
    }
}

/// Mark `dir` as the top of unrelated directory trees (`chattr +T`, `FS_TOPDIR_FL`), so ext2/3/4
/// place each new subdirectory (a layer, a container layer) in a block group of its own choice
/// (Orlov) instead of next to its siblings. Why: on ext4 without a journal, a new inode is
/// never taken from one deleted in the last 5 s (305 s while its inode-table block is dirty)
/// and the allocator walks every such inode of the group for every new file; extracting a
/// layer right where the previous one was just removed (`rmi` then `pull`) then costs seconds
/// of kernel CPU (10k files: 0.2 s of system time in a fresh group, 2–4 s beside a deleted
/// copy). Best effort: other filesystems refuse or ignore the flag, which changes nothing else.
pub(crate) fn spread_subdirs(dir: &Path) {
    use rustix::fs::{IFlags, Mode, OFlags, ioctl_getflags, ioctl_setflags, open};
    let res = open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(|fd| {
        let flags = ioctl_getflags(&fd)?;
        if flags.contains(IFlags::TOPDIR) {
            return Ok(());
        }
        ioctl_setflags(&fd, flags | IFlags::TOPDIR)
    });
    if let Err(e) = res {
        tracing::debug!(dir = %dir.display(), error = %e, "layer dirs: FS_TOPDIR_FL not set");
    }
}

#[cfg(test)]
mod tests {
    use rustix::fs::{IFlags, Mode, OFlags, ioctl_getflags, open};

    use super::*;

    #[test]
    fn layer_dirs_parent_spreads_subdirs_where_the_fs_supports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path());
        layout.create_dirs().unwrap();
        let fd = open(
            layout.driver_home(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let flags = match ioctl_getflags(&fd) {
            Ok(f) => f,
            Err(e) => {
                println!("SKIP: the temp dir's filesystem has no inode flags ({e})");
                return;
            }
        };
        if !flags.contains(IFlags::TOPDIR) {
            // The flag is ext2/3/4's; elsewhere setting it is refused or ignored.
            let magic = rustix::fs::statfs(tmp.path()).unwrap().f_type;
            assert_ne!(magic, 0xEF53, "ext4 takes FS_TOPDIR_FL but it is not set");
            println!("SKIP: filesystem {magic:#x} does not keep FS_TOPDIR_FL");
            return;
        }
        // Idempotent: a second open of the store leaves it set.
        layout.create_dirs().unwrap();
        assert!(ioctl_getflags(&fd).unwrap().contains(IFlags::TOPDIR));
    }
}
