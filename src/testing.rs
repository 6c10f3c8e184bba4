//! What augur's tests share: the shared data set (`../shared/data`) and scratch folders.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `$AUGUR_SHARED_DATA`, else `../shared/data` beside the source tree, if it is there. When it
/// is not, says so on the real standard error: the test harness captures `eprintln!` of passing
/// tests, and a skipped check must not pass silently.
pub fn shared_data() -> Option<PathBuf> {
    let path = std::env::var_os("AUGUR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if path.is_dir() {
        Some(path)
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: shared data not found at {} (set AUGUR_SHARED_DATA); the tests that read it pass without checking",
            path.display()
        );
        None
    }
}

/// A scratch folder for one test: `$TMPDIR/augur-<name>-<pid>`, emptied when made and removed
/// when dropped, unless the test is failing, when it is kept (and named on standard error) to be
/// looked at. It derefs to its path.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Makes (or empties) the folder.
    ///
    /// # Panics
    /// If the folder cannot be made: a test cannot go on without it.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("augur-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(error) = std::fs::create_dir_all(&dir) {
            panic!("make the scratch folder {}: {error}", dir.display());
        }
        Scratch(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(
                std::io::stderr(),
                "kept the failing test's folder {}",
                self.0.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scratch;

    #[test]
    fn a_scratch_folder_is_made_empty_and_removed_when_dropped() {
        let path = {
            let scratch = Scratch::new("scratch-self-test");
            std::fs::write(scratch.join("f"), "x").expect("write into it");
            assert!(scratch.join("f").is_file());
            scratch.to_path_buf()
        };
        assert!(!path.exists());
        // Made again, it starts empty.
        std::fs::create_dir_all(&path).expect("stale folder");
        std::fs::write(path.join("stale"), "x").expect("stale file");
        let scratch = Scratch::new("scratch-self-test");
        assert_eq!(std::fs::read_dir(scratch.path()).expect("list").count(), 0);
    }
}
