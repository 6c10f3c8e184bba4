//! Names of the files augur writes after its inputs (`anomalies`' results per series,
//! `simulate --trace-tasks`' traces per workflow): one path component each, in characters
//! every file system and shell take as they are, and short enough for any file system.

/// The longest name [`bounded`] leaves: file systems take 255 bytes, and a suffix or an
/// extension comes after it.
pub const MAX_STEM_BYTES: usize = 160;

/// `name` with every character other than ASCII letters, digits, `.`, `_` and `-` made `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `stem` (ASCII, as [`file_safe`] makes it) when it is at most [`MAX_STEM_BYTES`] long;
/// otherwise its beginning and a hash of the whole, so that long names sharing a beginning
/// stay apart (a 240-character device name failed the whole `anomalies` run).
pub fn bounded(stem: &str) -> String {
    if stem.len() <= MAX_STEM_BYTES {
        return stem.to_string();
    }
    let hash = crate::checkpoint::fnv1a(stem.as_bytes(), crate::checkpoint::FNV_OFFSET);
    let keep = stem
        .char_indices()
        .map(|(index, c)| index + c.len_utf8())
        .take_while(|&end| end <= MAX_STEM_BYTES - 17)
        .last()
        .unwrap_or(0);
    format!("{}-{hash:016x}", &stem[..keep])
}

#[cfg(test)]
mod tests {
    use super::{bounded, file_safe, MAX_STEM_BYTES};

    #[test]
    fn names_are_safe_and_bounded_and_long_ones_stay_apart() {
        assert_eq!(file_safe("m_1/x y.csv"), "m_1_x_y.csv");
        assert_eq!(bounded("short"), "short");
        let (a, b) = ("a".repeat(300), format!("{}b", "a".repeat(299)));
        let (a, b) = (bounded(&a), bounded(&b));
        assert!(a.len() <= MAX_STEM_BYTES && b.len() <= MAX_STEM_BYTES);
        assert_ne!(a, b);
        assert!(a.starts_with(&"a".repeat(100)));
        let exact = "c".repeat(MAX_STEM_BYTES);
        assert_eq!(bounded(&exact), exact);
        // Not ASCII: cut on a character boundary.
        let wide = "é".repeat(200);
        assert!(bounded(&wide).len() <= MAX_STEM_BYTES);
    }
}
