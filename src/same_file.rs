//! Whether two paths name one file, for the checks that refuse an input given twice (its
//! records would be counted twice) or an input that is one of the run's own outputs.
//!
//! Paths are compared three ways: by text, once resolved (`canonicalize`), and on Unix as two
//! hard links to one inode. [`FileIndex`] resolves each path once and looks the others up, so
//! checking N inputs costs N resolutions: pair by pair, 4,975 workflows (`augur bench soak`)
//! were 12 million pairs of `canonicalize` and `stat` calls, 90 seconds of a run's startup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Whether two paths name the same file: by text, once resolved, or (on Unix) as two hard
/// links to one file (read twice, its records counted twice).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (Identity::of(a), Identity::of(b));
    a.canonical.is_some() && a.canonical == b.canonical || a.inode.is_some() && a.inode == b.inode
}

/// What a path resolves to, each part `None` where it cannot be read (a missing file).
struct Identity {
    canonical: Option<PathBuf>,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Identity {
        Identity {
            canonical: path.canonicalize().ok(),
            inode: inode(path),
        }
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn inode(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Paths seen so far, each with a tag (the flag it came with, say), found again by any path
/// that [`same_file`] would match with it: the first one inserted under each key wins.
pub struct FileIndex<'a, T> {
    by_text: HashMap<&'a Path, T>,
    by_canonical: HashMap<PathBuf, T>,
    by_inode: HashMap<(u64, u64), T>,
    by_display: HashMap<String, (&'a Path, T)>,
}

impl<'a, T: Copy> FileIndex<'a, T> {
    pub fn new() -> FileIndex<'a, T> {
        FileIndex {
            by_text: HashMap::new(),
            by_canonical: HashMap::new(),
            by_inode: HashMap::new(),
            by_display: HashMap::new(),
        }
    }

    /// The tag of a path seen before that names the same file as `path`.
    pub fn same_as(&self, path: &Path) -> Option<T> {
        if let Some(tag) = self.by_text.get(path) {
            return Some(*tag);
        }
        let identity = Identity::of(path);
        identity
            .canonical
            .and_then(|canonical| self.by_canonical.get(&canonical))
            .or_else(|| identity.inode.and_then(|inode| self.by_inode.get(&inode)))
            .copied()
    }

    /// The tag of a path seen before that differs from `path` but reads the same once shown
    /// (bytes that are not UTF-8 shown as U+FFFD): the outputs name inputs by that text.
    pub fn reads_like(&self, path: &Path) -> Option<T> {
        self.by_display
            .get(&path.display().to_string())
            .filter(|(seen, _)| *seen != path)
            .map(|(_, tag)| *tag)
    }

    pub fn insert(&mut self, path: &'a Path, tag: T) {
        self.by_text.entry(path).or_insert(tag);
        let identity = Identity::of(path);
        if let Some(canonical) = identity.canonical {
            self.by_canonical.entry(canonical).or_insert(tag);
        }
        if let Some(inode) = identity.inode {
            self.by_inode.entry(inode).or_insert(tag);
        }
        self.by_display
            .entry(path.display().to_string())
            .or_insert((path, tag));
    }
}

impl<'a> FileIndex<'a, &'a Path> {
    /// An index of `paths`, each tagged by itself.
    pub fn of(paths: impl IntoIterator<Item = &'a Path>) -> FileIndex<'a, &'a Path> {
        let mut index = FileIndex::new();
        for path in paths {
            index.insert(path, path);
        }
        index
    }
}

impl<'a, T: Copy> Default for FileIndex<'a, T> {
    fn default() -> Self {
        FileIndex::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Scratch;

    #[test]
    fn the_index_finds_what_same_file_pairs_and_nothing_else() {
        let scratch = Scratch::new("same-file");
        let dir = scratch.path();
        std::fs::create_dir_all(dir.join("sub")).expect("a folder");
        let a = dir.join("a.csv");
        let b = dir.join("b.csv");
        std::fs::write(&a, "a").expect("a file");
        std::fs::write(&b, "b").expect("a file");
        let mut paths = vec![
            a.clone(),
            b.clone(),
            dir.join("sub/../a.csv"),
            dir.join("./b.csv"),
            dir.join("missing.csv"),
            dir.join("sub/../missing.csv"),
        ];
        #[cfg(unix)]
        {
            std::fs::hard_link(&a, dir.join("hard.csv")).expect("a hard link");
            std::os::unix::fs::symlink(&b, dir.join("soft.csv")).expect("a symbolic link");
            paths.push(dir.join("hard.csv"));
            paths.push(dir.join("soft.csv"));
        }
        // Pair by pair, the index agrees with `same_file` on which earlier path comes first.
        for (i, path) in paths.iter().enumerate() {
            let index = FileIndex::of(paths[..i].iter().map(PathBuf::as_path));
            let expected = paths[..i]
                .iter()
                .find(|earlier| same_file(earlier, path))
                .map(PathBuf::as_path);
            assert_eq!(index.same_as(path), expected, "{}", path.display());
        }
        // The ones that must match, and one that must not (a missing file is only itself).
        assert!(same_file(&a, &dir.join("sub/../a.csv")));
        assert!(!same_file(
            &dir.join("missing.csv"),
            &dir.join("sub/../missing.csv")
        ));
        assert!(!same_file(&a, &b));
        #[cfg(unix)]
        {
            assert!(same_file(&a, &dir.join("hard.csv")));
            assert!(same_file(&b, &dir.join("soft.csv")));
        }
    }

    #[cfg(unix)]
    #[test]
    fn paths_that_read_alike_are_found_and_a_path_is_not_alike_itself() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let one = Path::new(OsStr::from_bytes(b"log-\xff.csv"));
        let other = Path::new(OsStr::from_bytes(b"log-\xfe.csv"));
        let index = FileIndex::of([one]);
        assert_eq!(index.reads_like(other), Some(one));
        assert_eq!(index.reads_like(one), None);
        assert_eq!(index.reads_like(Path::new("log-x.csv")), None);
    }
}
