//! Opening input files, refusing what is not a regular file before it is opened: opening a
//! named pipe blocks until something writes to it (a command given one would hang), and a
//! folder or a device is no input either.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symbolic links followed).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file_type = std::fs::metadata(path)?.file_type();
    if !file_type.is_file() {
        let what = if file_type.is_dir() {
            "a folder"
        } else if is_fifo(&file_type) {
            "a named pipe"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: augur reads regular files only"),
        ));
    }
    File::open(path)
}

/// The whole of a regular file.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The whole of a regular file, as UTF-8.
pub fn read_regular_string(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    open_regular(path)?.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(unix)]
fn is_fifo(file_type: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(file_type)
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_pipes_are_refused_before_opening() {
        let dir = crate::testing::Scratch::new("regular");
        let error = read_regular(&dir).expect_err("a folder");
        assert!(error.to_string().starts_with("a folder"), "{error}");
        let file = dir.join("f.txt");
        std::fs::write(&file, "x").expect("write");
        assert_eq!(read_regular_string(&file).expect("a file"), "x");
        #[cfg(unix)]
        {
            let fifo = dir.join("pipe");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|status| status.success()) {
                // Without the check this would block until a writer opened the pipe.
                let error = read_regular(&fifo).expect_err("a pipe");
                assert!(error.to_string().starts_with("a named pipe"), "{error}");
            }
        }
    }
}
