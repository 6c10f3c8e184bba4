//! Line reading with a bound on memory.
//!
//! `BufRead::lines` buffers a whole line before handing it over, so a single multi-gigabyte line
//! (a corrupted log, a binary file passed by mistake) would exhaust memory. `BoundedLines` never
//! holds more than `max_line_bytes` of one line: it skips the rest of a longer line and reports it.

use std::io::{BufRead, BufReader, Cursor, ErrorKind};
use std::path::Path;

use super::rejection::{RejectKind, Rejection};

/// The default maximum line length: 1 MiB, far above any real record.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The least maximum line length a configuration may set: a shorter one would refuse even a
/// header or a minimal event, so it is a mistake, not a policy.
pub const MIN_MAX_LINE_BYTES: usize = 64;

/// The maximum line length of a configuration's `max_line_bytes`, or the default; the reason
/// for refusing one under [`MIN_MAX_LINE_BYTES`]. One check for `run` and `serve` alike.
pub fn line_limit(configured: Option<usize>) -> Result<usize, String> {
    match configured {
        Some(limit) if limit < MIN_MAX_LINE_BYTES => Err(format!(
            "must be at least {MIN_MAX_LINE_BYTES}, not {limit}"
        )),
        Some(limit) => Ok(limit),
        None => Ok(DEFAULT_MAX_LINE_BYTES),
    }
}

/// Why a line could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The line was longer than the maximum; it was skipped.
    Oversized {
        /// Its full length in bytes, without the line terminator.
        bytes: usize,
    },
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// Reading failed; no further lines follow.
    Io(String),
    /// The rest of a line that had no newline when the input was last read to its end (a log
    /// being written, cut mid-line), read on after a resume: the part before it was taken as
    /// it stood, so this part cannot be a record.
    Continuation {
        /// Its length in bytes, without the line terminator.
        bytes: usize,
    },
}

/// An iterator over the lines of a reader, each with its 1-based line number, with trailing
/// `\n` or `\r\n` removed.
#[derive(Debug)]
pub struct BoundedLines<R> {
    reader: R,
    max_line_bytes: usize,
    line_number: u64,
    buffer: Vec<u8>,
    finished: bool,
    /// Bytes consumed from the reader, so a checkpoint can say where reading resumes.
    offset: u64,
    /// Whether the last line handed over ended at the end of the input, with no newline.
    unterminated: bool,
    /// Whether the next bytes read go on a line already handed over (see
    /// [`LineError::Continuation`]).
    continuing: bool,
}

/// Where a [`BoundedLines`] stands: the byte offset just past the last line handed over, its
/// number, and whether the input has ended. A checkpoint keeps it; reading resumes from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinePosition {
    /// Bytes consumed.
    pub offset: u64,
    /// Lines handed over.
    pub line: u64,
    /// Whether the end (or a read error) was reached.
    pub finished: bool,
    /// Whether the last line handed over had no newline: the input ended in it. Where the
    /// input grows before a resume, what follows is the rest of that line.
    pub unterminated: bool,
}

impl<R: BufRead> BoundedLines<R> {
    /// Reads lines of at most `max_line_bytes` bytes (terminator excluded) from `reader`.
    pub fn new(reader: R, max_line_bytes: usize) -> BoundedLines<R> {
        BoundedLines {
            reader,
            max_line_bytes,
            line_number: 0,
            buffer: Vec::new(),
            finished: false,
            offset: 0,
            unterminated: false,
            continuing: false,
        }
    }

    /// Reads on from `position` of the same input; `reader` must already stand at its offset.
    /// An input that had ended is read on too: a log being appended to may have grown since
    /// (where it has not, its end is found again at once).
    pub fn resume(reader: R, max_line_bytes: usize, position: LinePosition) -> BoundedLines<R> {
        BoundedLines {
            reader,
            max_line_bytes,
            line_number: position.line,
            buffer: Vec::new(),
            finished: false,
            offset: position.offset,
            unterminated: position.unterminated,
            continuing: position.unterminated,
        }
    }

    /// Where reading stands.
    pub fn position(&self) -> LinePosition {
        LinePosition {
            offset: self.offset,
            line: self.line_number,
            finished: self.finished,
            unterminated: self.unterminated,
        }
    }

    /// Reads up to and including the next newline into `self.buffer` (bounded). Returns the
    /// length of the line's content (without its `\n` or `\r\n`), whether any byte (or
    /// newline) was seen at all, and an I/O error. Where the content is within the maximum,
    /// `self.buffer` holds it. Where a line was seen, `self.unterminated` says whether the input
    /// ended before its newline.
    fn read_raw_line(&mut self) -> Result<(usize, bool), String> {
        self.buffer.clear();
        let mut length = 0usize;
        let mut seen_anything = false;
        let mut ends_in_cr = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.to_string()),
            };
            if available.is_empty() {
                if seen_anything {
                    self.unterminated = true;
                }
                return Ok((self.content_length(length, ends_in_cr), seen_anything));
            }
            seen_anything = true;
            let newline = available.iter().position(|&byte| byte == b'\n');
            let chunk_end = newline.unwrap_or(available.len());
            let chunk = available.get(..chunk_end).unwrap_or_default();
            if let Some(&last) = chunk.last() {
                ends_in_cr = last == b'\r';
            }
            length = length.saturating_add(chunk.len());
            // One byte past the maximum may be the `\r` of a CRLF ending, which is not content:
            // keep it until the line's end tells.
            if length <= self.max_line_bytes.saturating_add(1) {
                self.buffer.extend_from_slice(chunk);
            } else {
                // Free what we hold: the line is lost anyway and memory must stay bounded.
                self.buffer.clear();
            }
            match newline {
                Some(position) => {
                    self.reader.consume(position + 1);
                    self.offset += position as u64 + 1;
                    self.unterminated = false;
                    return Ok((self.content_length(length, ends_in_cr), true));
                }
                None => {
                    let consumed = available.len();
                    self.reader.consume(consumed);
                    self.offset += consumed as u64;
                }
            }
        }
    }

    /// The content length of a line of `length` bytes read in full (its `\n` excluded): a
    /// final `\r` is part of the terminator, so the maximum applies alike to LF and CRLF files.
    /// Drops that `\r` from `self.buffer` where the buffer holds the line.
    fn content_length(&mut self, length: usize, ends_in_cr: bool) -> usize {
        let content = length - usize::from(ends_in_cr);
        if ends_in_cr && content <= self.max_line_bytes {
            self.buffer.pop();
        }
        content
    }
}

impl<R: BufRead> BoundedLines<R> {
    /// After a resume where the last line had no newline: reads the rest of that line, if the
    /// input grew. A bare newline only ends it (the writer had not yet written it); anything
    /// else is handed over as that line's [`LineError::Continuation`]. Nothing new: the input
    /// still ends in that line, and reading stops there.
    fn read_continuation(&mut self) -> Option<(u64, Result<String, LineError>)> {
        let line_number = self.line_number;
        let (length, seen_anything) = match self.read_raw_line() {
            Ok(read) => read,
            Err(message) => {
                self.finished = true;
                return Some((line_number + 1, Err(LineError::Io(message))));
            }
        };
        if !seen_anything {
            // Still the end of that line (still unterminated): a later resume goes on with it.
            self.finished = true;
            return None;
        }
        // The rest may itself end at the input's end, to be continued again.
        self.continuing = self.unterminated;
        if length == 0 {
            // The newline alone: the line was whole.
            return None;
        }
        Some((line_number, Err(LineError::Continuation { bytes: length })))
    }
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = (u64, Result<String, LineError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.continuing {
            if let Some(rest) = self.read_continuation() {
                return Some(rest);
            }
            if self.finished {
                return None;
            }
        }
        let line_number = self.line_number + 1;
        let (length, seen_anything) = match self.read_raw_line() {
            Ok(read) => read,
            Err(message) => {
                self.finished = true;
                return Some((line_number, Err(LineError::Io(message))));
            }
        };
        if !seen_anything {
            self.finished = true;
            return None;
        }
        self.line_number = line_number;
        if length > self.max_line_bytes {
            return Some((line_number, Err(LineError::Oversized { bytes: length })));
        }
        // Editors on some systems start UTF-8 files with a byte-order mark: it is not data.
        if line_number == 1 && self.buffer.starts_with(b"\xef\xbb\xbf") {
            self.buffer.drain(..3);
        }
        let bytes = std::mem::take(&mut self.buffer);
        let line = String::from_utf8(bytes).map_err(|_| LineError::InvalidUtf8);
        Some((line_number, line))
    }
}

impl LineError {
    /// The rejection of the line this error stands for.
    pub fn to_rejection(&self, file: &str, line: u64, max_line_bytes: usize) -> Rejection {
        match self {
            LineError::Oversized { bytes } => Rejection::at_line(
                file,
                line,
                RejectKind::OversizedLine,
                format!("line of {bytes} bytes exceeds the maximum of {max_line_bytes}"),
            ),
            LineError::InvalidUtf8 => {
                Rejection::at_line(file, line, RejectKind::Parse, "line is not valid UTF-8")
            }
            LineError::Io(message) => Rejection::at_line(
                file,
                line,
                RejectKind::Io,
                format!("read failed, rest of file skipped: {message}"),
            ),
            LineError::Continuation { bytes } => Rejection::at_line(
                file,
                line,
                RejectKind::Parse,
                format!(
                    "the rest of line {line} ({bytes} bytes): the line had no newline when the \
                     run before the resume read the log to its end, and was read as it stood"
                ),
            ),
        }
    }
}

/// The lines of a file or of an in-memory text, behind one type so that readers can be built
/// from either (text for tests and fuzzing). `Send`, so a reader can move to its own thread.
pub(crate) type LineSource = BoundedLines<Box<dyn BufRead + Send>>;

/// Opens `path` for bounded line reading.
pub(crate) fn file_lines(path: &Path, max_line_bytes: usize) -> Result<LineSource, Rejection> {
    let file = super::regular::open_regular(path).map_err(|error| {
        Rejection::whole_file(
            path.display().to_string(),
            RejectKind::Io,
            error.to_string(),
        )
    })?;
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(file));
    Ok(BoundedLines::new(reader, max_line_bytes))
}

/// Opens `path` for bounded line reading from `position` (a checkpoint's). A file now shorter
/// than the offset is refused: it is not the file the checkpoint read.
pub(crate) fn file_lines_at(
    path: &Path,
    max_line_bytes: usize,
    position: LinePosition,
) -> Result<LineSource, Rejection> {
    use std::io::{Seek, SeekFrom};
    let refuse =
        |reason: String| Rejection::whole_file(path.display().to_string(), RejectKind::Io, reason);
    let mut file = super::regular::open_regular(path).map_err(|error| refuse(error.to_string()))?;
    let length = file
        .metadata()
        .map_err(|error| refuse(error.to_string()))?
        .len();
    if length < position.offset {
        return Err(refuse(format!(
            "the file has {length} bytes, fewer than the {} the checkpoint had read",
            position.offset
        )));
    }
    // The checkpoint stopped after a whole line (unless the file then ended in a line without
    // its newline): a byte there other than a newline means the file changed before that point,
    // past the head the fingerprint hashes, and reading on would start mid-line.
    if position.offset > 0 && !position.unterminated {
        file.seek(SeekFrom::Start(position.offset - 1))
            .map_err(|error| refuse(error.to_string()))?;
        let mut last = [0u8; 1];
        std::io::Read::read_exact(&mut file, &mut last)
            .map_err(|error| refuse(error.to_string()))?;
        if last[0] != b'\n' {
            return Err(refuse(format!(
                "byte {} is not the end of a line, where the checkpoint stopped reading: the \
                 file changed before that point since",
                position.offset
            )));
        }
    }
    file.seek(SeekFrom::Start(position.offset))
        .map_err(|error| refuse(error.to_string()))?;
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(file));
    Ok(BoundedLines::resume(reader, max_line_bytes, position))
}

/// Bounded line reading over a copy of `text`.
pub(crate) fn text_lines(text: &str, max_line_bytes: usize) -> LineSource {
    let reader: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.as_bytes().to_vec()));
    BoundedLines::new(reader, max_line_bytes)
}

#[cfg(test)]
mod tests {
    /// A resume whose offset no longer follows a newline is refused: the file changed before
    /// it (an edit past the hashed head shifted the lines), and reading on would start mid-line.
    #[test]
    fn a_resume_offset_not_after_a_newline_is_refused() {
        let dir = crate::testing::Scratch::new("lines-resume");
        let path = dir.join("m.csv");
        let at = |offset, unterminated| super::LinePosition {
            offset,
            line: 2,
            finished: false,
            unterminated,
        };
        std::fs::write(&path, "a\nb\nc\n").expect("write");
        let lines: Vec<String> = super::file_lines_at(&path, 100, at(4, false))
            .expect("a line boundary")
            .filter_map(|(_, line)| line.ok())
            .collect();
        assert_eq!(lines, ["c"]);
        std::fs::write(&path, "a\nbX\nc\n").expect("write");
        let refused = super::file_lines_at(&path, 100, at(4, false))
            .err()
            .expect("refused");
        assert!(
            refused.reason.contains("not the end of a line"),
            "{}",
            refused.reason
        );
        // After a last line without its newline, the rest of that line follows: no check.
        std::fs::write(&path, "a\nbc\n").expect("write");
        assert!(super::file_lines_at(&path, 100, at(3, true)).is_ok());
    }

    #[test]
    fn byte_order_mark_is_not_part_of_the_first_line() {
        let text = "\u{feff}time,value\n\u{feff}x\n";
        let lines: Vec<String> = super::BoundedLines::new(text.as_bytes(), 1024)
            .filter_map(|(_, line)| line.ok())
            .collect();
        assert_eq!(
            lines,
            vec!["time,value".to_string(), "\u{feff}x".to_string()]
        );
    }

    use super::*;
    use std::io::Read;

    fn collect(text: &[u8], max: usize) -> Vec<(u64, Result<String, LineError>)> {
        // A tiny buffer makes lines span many `fill_buf` calls, the case that needs care.
        BoundedLines::new(BufReader::with_capacity(3, Cursor::new(text.to_vec())), max).collect()
    }

    #[test]
    fn strips_terminators_and_numbers_lines() {
        let lines = collect(b"a\r\nbc\n\nlast", 100);
        assert_eq!(
            lines,
            vec![
                (1, Ok("a".to_string())),
                (2, Ok("bc".to_string())),
                (3, Ok(String::new())),
                (4, Ok("last".to_string())),
            ]
        );
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 10).is_empty());
        assert_eq!(collect(b"\n", 10), vec![(1, Ok(String::new()))]);
    }

    #[test]
    fn oversized_line_is_skipped_and_reported_once() {
        let lines = collect(b"ok\n0123456789abcdef\nnext", 8);
        assert_eq!(
            lines,
            vec![
                (1, Ok("ok".to_string())),
                (2, Err(LineError::Oversized { bytes: 16 })),
                (3, Ok("next".to_string())),
            ]
        );
    }

    #[test]
    fn line_of_exactly_the_maximum_is_kept() {
        assert_eq!(
            collect(b"12345678\n", 8),
            vec![(1, Ok("12345678".to_string()))]
        );
    }

    #[test]
    fn the_maximum_applies_to_a_crlf_line_without_its_terminator() {
        // The same 8 bytes of content in LF and CRLF files, whatever the buffer's chunks.
        for capacity in [1, 3, 9, 64] {
            let read = |text: &[u8]| -> Lines {
                let reader = BufReader::with_capacity(capacity, Cursor::new(text.to_vec()));
                BoundedLines::new(reader, 8).collect()
            };
            let kept = vec![(1, Ok("12345678".to_string())), (2, Ok("x".to_string()))];
            assert_eq!(read(b"12345678\nx\n"), kept);
            assert_eq!(read(b"12345678\r\nx\r\n"), kept);
            assert_eq!(read(b"12345678\r"), vec![(1, Ok("12345678".to_string()))]);
            // One byte more is over in both, and the count is the content's.
            let over = vec![(1, Err(LineError::Oversized { bytes: 9 }))];
            assert_eq!(read(b"123456789\n"), over);
            assert_eq!(read(b"123456789\r\n"), over);
            // A `\r` inside the content is content.
            assert_eq!(read(b"1234567\r9\n"), over);
        }
    }

    #[test]
    fn invalid_utf8_is_reported_and_reading_continues() {
        let lines = collect(b"\xff\xfe\nfine\n", 100);
        assert_eq!(
            lines,
            vec![
                (1, Err(LineError::InvalidUtf8)),
                (2, Ok("fine".to_string()))
            ]
        );
    }

    type Lines = Vec<(u64, Result<String, LineError>)>;

    /// Reads `first` to its end, then resumes from where it stood over `grown` (which starts
    /// with `first`), as a checkpointed run resumed on a log that grew.
    fn read_then_resume(first: &[u8], grown: &[u8]) -> (LinePosition, Lines, LinePosition) {
        let mut lines = BoundedLines::new(Cursor::new(first.to_vec()), 100);
        lines.by_ref().for_each(drop);
        let position = lines.position();
        let rest = grown.get(position.offset as usize..).unwrap_or_default();
        let reader = BufReader::with_capacity(3, Cursor::new(rest.to_vec()));
        let mut resumed = BoundedLines::resume(reader, 100, position);
        let read: Vec<_> = resumed.by_ref().collect();
        (position, read, resumed.position())
    }

    #[test]
    fn the_rest_of_a_line_cut_off_at_the_end_is_that_line_continued_not_a_line_of_its_own() {
        // A log being written, read to its end mid-line ("b" of "bc"): the resumed run reads
        // "c" as the rest of line 2, refused for what it is, and line 3 is line 3.
        let (at_end, read, _) = read_then_resume(b"a\nb", b"a\nbc\nd\n");
        assert!(at_end.unterminated);
        assert_eq!(at_end.line, 2);
        assert_eq!(
            read,
            vec![
                (2, Err(LineError::Continuation { bytes: 1 })),
                (3, Ok("d".to_string())),
            ]
        );
        let rejection = LineError::Continuation { bytes: 1 }.to_rejection("m.csv", 2, 100);
        assert!(
            rejection.reason.contains("the rest of line 2"),
            "{rejection:?}"
        );
    }

    #[test]
    fn a_newline_written_after_the_end_only_ends_the_line() {
        let (_, read, _) = read_then_resume(b"a\nb", b"a\nb\r\nd\n");
        assert_eq!(read, vec![(3, Ok("d".to_string()))]);
    }

    #[test]
    fn a_line_still_cut_off_is_continued_again_at_the_next_resume() {
        let (_, read, again) = read_then_resume(b"a\nb", b"a\nb");
        assert!(read.is_empty());
        assert!(again.unterminated && again.line == 2 && again.offset == 3);
        let (_, read, later) = read_then_resume(b"a\nb", b"a\nbc");
        assert_eq!(read, vec![(2, Err(LineError::Continuation { bytes: 1 }))]);
        assert!(later.unterminated && later.line == 2 && later.offset == 4);
        let reader = Cursor::new(b"\nd\n".to_vec());
        let read: Vec<_> = BoundedLines::resume(reader, 100, later).collect();
        assert_eq!(read, vec![(3, Ok("d".to_string()))]);
    }

    #[test]
    fn a_log_ending_in_a_newline_has_no_line_to_continue() {
        let (at_end, read, _) = read_then_resume(b"a\nb\n", b"a\nb\nc\n");
        assert!(!at_end.unterminated);
        assert_eq!(read, vec![(3, Ok("c".to_string()))]);
    }

    struct FailAfter {
        data: Cursor<Vec<u8>>,
    }

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let read = self.data.read(buf)?;
            if read == 0 {
                Err(std::io::Error::other("disk on fire"))
            } else {
                Ok(read)
            }
        }
    }

    #[test]
    fn io_error_is_reported_and_ends_the_lines() {
        let reader = BufReader::new(FailAfter {
            data: Cursor::new(b"one\ntwo".to_vec()),
        });
        let lines: Vec<_> = BoundedLines::new(reader, 100).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], (1, Ok("one".to_string())));
        assert!(matches!(lines[1], (2, Err(LineError::Io(_)))));
    }
}
