//! Checkpoint folders: `OUTPUT/checkpoint-N/`, each written whole into a temporary
//! folder and renamed into place, then `OUTPUT/latest` (a one-line file naming it) is
//! replaced atomically. A run killed at any instant leaves every earlier checkpoint and
//! the pointer intact; leftovers of an interrupted write are removed on resume.
//! `OUTPUT/best-model/` (the weights of the best evaluation so far, with
//! `--metric-for-best-model`) is written the same way, without a pointer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub const LATEST: &str = "latest";
/// The folder of the best evaluation's weights.
pub const BEST: &str = "best-model";
const PREFIX: &str = "checkpoint-";

#[derive(Debug, Clone)]
pub struct Checkpoints {
    root: PathBuf,
}

impl Checkpoints {
    pub fn new(output: &Path) -> Self {
        Self {
            root: output.to_path_buf(),
        }
    }

    pub fn dir(&self, step: u64) -> PathBuf {
        self.root.join(format!("{PREFIX}{step}"))
    }

    /// Write checkpoint `step`: `write` fills an empty folder; only if it succeeds is the
    /// folder renamed to `checkpoint-{step}` and `latest` pointed at it.
    pub fn save(&self, step: u64, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let final_dir = self
            .replace_dir(&format!("{PREFIX}{step}"), write)
            .with_context(|| format!("writing checkpoint {step}"))?;
        let name = format!("{PREFIX}{step}\n");
        crate::util::write_atomic(&self.root.join(LATEST), name.as_bytes())
            .with_context(|| format!("updating {}", self.root.join(LATEST).display()))?;
        sync_dir(&self.root);
        Ok(final_dir)
    }

    /// The folder of the best evaluation's weights.
    pub fn best(&self) -> PathBuf {
        self.root.join(BEST)
    }

    /// Replace `best-model/` with what `write` puts in an empty folder, atomically.
    pub fn save_best(&self, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        self.replace_dir(BEST, write)
            .context("writing the best model so far")
    }

    /// Fill a temporary folder with `write` and, only if it succeeds, rename it to
    /// `name` (replacing a folder of that name).
    fn replace_dir(&self, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let final_dir = self.root.join(name);
        let tmp = self
            .root
            .join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        if let Err(err) = write(&tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
        sync_dir(&tmp);
        // A checkpoint of this step from an earlier, abandoned attempt is replaced (its
        // pointer never reached it, or it was made past the checkpoint resumed from).
        if final_dir.exists() {
            let old = self
                .root
                .join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(&final_dir, &old)
                .with_context(|| format!("moving aside {}", final_dir.display()))?;
            let _ = std::fs::remove_dir_all(&old);
        }
        std::fs::rename(&tmp, &final_dir)
            .with_context(|| format!("renaming {} to {}", tmp.display(), final_dir.display()))?;
        sync_dir(&self.root);
        Ok(final_dir)
    }

    /// The checkpoint `latest` names, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let pointer = self.root.join(LATEST);
        if !pointer.exists() {
            return Ok(None);
        }
        let name = std::fs::read_to_string(&pointer)
            .with_context(|| format!("reading {}", pointer.display()))?;
        let name = name.trim();
        if !name.starts_with(PREFIX) || name.contains('/') {
            bail!("{}: `{name}` does not name a checkpoint", pointer.display());
        }
        let dir = self.root.join(name);
        if !dir.is_dir() {
            bail!(
                "{} names {}, which does not exist",
                pointer.display(),
                dir.display()
            );
        }
        Ok(Some(dir))
    }

    /// Steps of the complete checkpoints present, ascending.
    pub fn steps(&self) -> Vec<u64> {
        let mut steps: Vec<u64> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(PREFIX))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        steps.sort_unstable();
        steps
    }

    /// Remove what interrupted writes left behind (`.checkpoint-N.tmp-*`,
    /// `.best-model.tmp-*`, `.old-*`).
    pub fn clean_partial(&self) {
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Killed between moving the old best model aside and renaming the new one in:
            // the old one is still the best.
            if name.starts_with(&format!(".{BEST}.old-")) && !self.best().exists() {
                let _ = std::fs::rename(entry.path(), self.best());
                continue;
            }
            if (name.starts_with(&format!(".{PREFIX}")) || name.starts_with(&format!(".{BEST}")))
                && (name.contains(".tmp-") || name.contains(".old-"))
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Keep the newest `keep` checkpoints (never the one `latest` names).
    pub fn prune(&self, keep: usize) -> Result<()> {
        let latest = self.latest()?;
        let steps = self.steps();
        if steps.len() <= keep {
            return Ok(());
        }
        for step in &steps[..steps.len() - keep] {
            let dir = self.dir(*step);
            if Some(&dir) == latest.as_ref() {
                continue;
            }
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Ok(())
    }
}

/// Flush a folder's entries to disk (best effort: not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rmtk-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_failed_write_leaves_earlier_checkpoints_and_the_pointer_alone() {
        let root = tmp("fail");
        let ck = Checkpoints::new(&root);
        assert!(ck.latest().unwrap().is_none());
        ck.save(2, |d| Ok(std::fs::write(d.join("w"), "two")?))
            .unwrap();
        let err = ck
            .save(4, |d| {
                std::fs::write(d.join("w"), "half")?;
                bail!("disk full")
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        assert_eq!(ck.latest().unwrap().unwrap(), root.join("checkpoint-2"));
        assert_eq!(ck.steps(), vec![2]);
        assert_eq!(
            std::fs::read_to_string(root.join("checkpoint-2/w")).unwrap(),
            "two"
        );
        // No temporary folder is left behind.
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn resaving_a_step_replaces_it_and_prune_keeps_the_newest() {
        let root = tmp("prune");
        let ck = Checkpoints::new(&root);
        for s in [1, 2, 3] {
            ck.save(s, |d| Ok(std::fs::write(d.join("w"), s.to_string())?))
                .unwrap();
        }
        ck.save(3, |d| Ok(std::fs::write(d.join("w"), "again")?))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("checkpoint-3/w")).unwrap(),
            "again"
        );
        std::fs::create_dir_all(root.join(".checkpoint-9.tmp-1")).unwrap();
        ck.clean_partial();
        assert!(!root.join(".checkpoint-9.tmp-1").exists());
        ck.prune(2).unwrap();
        assert_eq!(ck.steps(), vec![2, 3]);
    }
}
