//! `file://` vaults: objects are files under a folder.
//!
//! A put writes `.NAME.tmp-RANDOM` beside the final file, fsyncs it, renames
//! it into place and fsyncs the folder: after a crash the key holds either
//! the old object, the whole new one, or nothing. Temporary files are never
//! listed, and a failed or cancelled put removes its own.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};

use super::{check_key, ObjectInfo, ObjectReader, VaultError};

const COPY_BUFFER: usize = 1 << 20;

/// A `file://PATH` vault: each key is a file under `PATH`.
#[derive(Debug, Clone)]
pub struct FileVault {
    root: PathBuf,
}

/// Removes a temporary file unless the write it belongs to succeeded, so a
/// failed or cancelled put leaves nothing behind.
struct TempFileGuard {
    path: Option<PathBuf>,
}

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl FileVault {
    /// A vault rooted at `root` (created on the first put).
    pub fn new(root: PathBuf) -> FileVault {
        FileVault { root }
    }

    /// The folder holding the vault's objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, VaultError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// The `file://` URL of an object.
    pub fn location(&self, key: &str) -> String {
        format!("file://{}", self.root.join(key).display())
    }

    fn io(&self, op: &'static str, key: &str) -> impl FnOnce(std::io::Error) -> VaultError + '_ {
        let location = self.location(key);
        move |source| {
            if source.kind() == std::io::ErrorKind::NotFound && op == "open" {
                VaultError::NotFound { location }
            } else {
                VaultError::Io {
                    op,
                    location,
                    source,
                }
            }
        }
    }

    /// Stores the whole stream under `key`: written beside it, then
    /// renamed into place. Returns the size.
    pub async fn put(
        &self,
        key: &str,
        reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        let path = self.path_for(key)?;
        // check_key guarantees at least one segment, so there is a parent.
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(self.io("create folder", key))?;
        let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
        let mut guard = TempFileGuard {
            path: Some(tmp.clone()),
        };
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(self.io("create", key))?;
        let mut reader = BufReader::with_capacity(COPY_BUFFER, reader);
        let size = tokio::io::copy_buf(&mut reader, &mut file)
            .await
            .map_err(self.io("write", key))?;
        file.flush().await.map_err(self.io("write", key))?;
        file.sync_all().await.map_err(self.io("fsync", key))?;
        drop(file);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(self.io("rename", key))?;
        guard.path = None;
        // fsync the folder and its ancestors up to the vault root, so a
        // folder created for this object survives a power loss too.
        let dir_for_sync = dir.clone();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut cur = Some(dir_for_sync.as_path());
            while let Some(d) = cur {
                std::fs::File::open(d)?.sync_all()?;
                if d == root {
                    break;
                }
                cur = d.parent().filter(|p| p.starts_with(&root));
            }
            Ok(())
        })
        .await
        .map_err(|e| VaultError::Io {
            op: "fsync folder",
            location: self.location(key),
            source: std::io::Error::other(e),
        })?
        .map_err(self.io("fsync folder", key))?;
        Ok(size)
    }

    /// The object's bytes, buffered.
    pub async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        let path = self.path_for(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(self.io("open", key))?;
        Ok(Box::pin(BufReader::with_capacity(COPY_BUFFER, file)))
    }

    /// The object's size in bytes.
    pub async fn size(&self, key: &str) -> Result<u64, VaultError> {
        let path = self.path_for(key)?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(self.io("open", key))?;
        Ok(meta.len())
    }

    /// Every object whose key starts with `prefix`, sorted by key,
    /// temporary files left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let location = self.location(&prefix);
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            // Only the prefix's folder can hold its keys: a vault holding
            // many plans is not walked whole for one of them.
            let start = match prefix.rsplit_once('/') {
                Some((folder, _)) => root.join(folder),
                None => root.clone(),
            };
            if !start.exists() {
                return Ok(out);
            }
            for entry in walkdir::WalkDir::new(&start).sort_by_file_name() {
                let entry = entry.map_err(|e| VaultError::Io {
                    op: "list",
                    location: location.clone(),
                    source: e.into(),
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp-") {
                    continue;
                }
                let Ok(rel) = entry.path().strip_prefix(&root) else {
                    continue;
                };
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(&prefix) {
                    let meta = entry.metadata().ok();
                    out.push(ObjectInfo {
                        key,
                        size: meta.as_ref().map_or(0, |m| m.len()),
                        modified: meta
                            .and_then(|m| m.modified().ok())
                            .map(crate::time::from_system_time),
                    });
                }
            }
            // The walk goes folder by folder, which is not key order when
            // a name holds a character sorting before `/` (`a/b` is walked
            // before `a-b`, but `a-b` < `a/b`).
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| VaultError::Io {
            op: "list",
            location: self.location(""),
            source: std::io::Error::other(e),
        })?
    }

    /// Deletes an object; deleting a missing object succeeds.
    ///
    /// The key's temporary files go too: a put killed with its process
    /// (kill -9, power loss) leaves `.NAME.tmp-RANDOM`, which no guard
    /// removes. Keys carry their point's id, so whatever is written beside
    /// a key being deleted belongs to a point that is going (prune deletes a
    /// failed backup's leftovers this way).
    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        let path = self.path_for(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("delete", key)(e)),
        }
        self.delete_temporaries(&path)
            .await
            .map_err(self.io("delete", key))
    }

    /// Removes the `.NAME.tmp-*` files a put of `path` left.
    async fn delete_temporaries(&self, path: &Path) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(());
        };
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                match tokio::fs::remove_file(entry.path()).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listing_is_in_key_order_across_folders() {
        let dir = tempfile::tempdir().unwrap();
        let v = FileVault::new(dir.path().join("v"));
        for key in ["p/r/b", "p/r-2/a", "p/r/a", "p/r.x"] {
            v.put(key, &b"x"[..]).await.unwrap();
        }
        let keys: Vec<String> = v
            .list("p/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["p/r-2/a", "p/r.x", "p/r/a", "p/r/b"]);
    }

    #[tokio::test]
    async fn deleting_a_key_removes_what_a_killed_put_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let v = FileVault::new(dir.path().join("v"));
        v.put("p/r/a.tar.zst", &b"x"[..]).await.unwrap();
        v.put("p/r/b.tar.zst", &b"y"[..]).await.unwrap();
        // What a put killed with its process leaves: no guard ran.
        let folder = dir.path().join("v/p/r");
        std::fs::write(folder.join(".a.tar.zst.tmp-0123456789abcdef"), b"half").unwrap();
        std::fs::write(folder.join(".b.tar.zst.tmp-0123456789abcdef"), b"half").unwrap();
        v.delete("p/r/a.tar.zst").await.unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".b.tar.zst.tmp-0123456789abcdef", "b.tar.zst"]);
        // A key whose object never landed: only its temporary is there.
        std::fs::write(folder.join(".c.tar.zst.tmp-00000000000000ff"), b"half").unwrap();
        v.delete("p/r/c.tar.zst").await.unwrap();
        assert!(!folder.join(".c.tar.zst.tmp-00000000000000ff").exists());
        // Nothing at all under a folder that does not exist.
        v.delete("q/none").await.unwrap();
    }
}
