//! The rejections of one request body, bounded: a refusal lists the first
//! [`LISTED_REJECTIONS`] in line order and counts the rest. A body of 33 million bad lines
//! (66 MB, under the default body limit) built a rejection for every line and then a reply of
//! them all, and the server ran out of memory; now a bad line costs a bit of a line set.

use crate::input::Rejection;

/// The most rejections one refusal lists in full (as many as `GET /v1/rejections` keeps).
pub const LISTED_REJECTIONS: usize = 1_000;

/// A body's rejections: the first [`LISTED_REJECTIONS`] by line, and counts of them all.
#[derive(Debug, Default)]
pub struct BodyRejections {
    /// Kept in full; may hold up to twice the limit between trims, unsorted.
    listed: Vec<Rejection>,
    /// Every rejection pushed, listed or not.
    problems: u64,
    /// The lines with a rejection, one bit each.
    lines: Vec<u64>,
    /// Whether a rejection of the whole body came (one without a line).
    whole_body: bool,
}

impl BodyRejections {
    pub fn new() -> BodyRejections {
        BodyRejections::default()
    }

    pub fn push(&mut self, rejection: Rejection) {
        self.problems += 1;
        match rejection.line {
            Some(line) => {
                let (word, bit) = ((line / 64) as usize, line % 64);
                if self.lines.len() <= word {
                    self.lines.resize(word + 1, 0);
                }
                self.lines[word] |= 1 << bit;
            }
            None => self.whole_body = true,
        }
        self.listed.push(rejection);
        // Trimmed at twice the limit, so that the sort is paid once per limit's worth.
        if self.listed.len() >= 2 * LISTED_REJECTIONS {
            self.trim();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.problems == 0
    }

    /// Every rejection pushed, listed or not.
    pub fn problems(&self) -> u64 {
        self.problems
    }

    /// The records refused: the lines with a rejection (a rejection of the whole body counts
    /// as one).
    pub fn records(&self) -> u64 {
        let lines: u64 = self
            .lines
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum();
        lines + u64::from(self.whole_body)
    }

    /// The first [`LISTED_REJECTIONS`] rejections in line order (one without a line first),
    /// those found first first among a line's.
    pub fn into_listed(mut self) -> Vec<Rejection> {
        self.trim();
        self.listed
    }

    /// The listed rejections as [`Self::into_listed`] gives them.
    pub fn listed(&mut self) -> &[Rejection] {
        self.trim();
        &self.listed
    }

    fn trim(&mut self) {
        // Stable: a line's rejections stay in the order they were found.
        self.listed.sort_by_key(|rejection| rejection.line);
        self.listed.truncate(LISTED_REJECTIONS);
    }
}

impl Extend<Rejection> for BodyRejections {
    fn extend<I: IntoIterator<Item = Rejection>>(&mut self, rejections: I) {
        for rejection in rejections {
            self.push(rejection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::RejectKind;

    fn at(line: u64) -> Rejection {
        Rejection::at_line("POST /v1/metrics", line, RejectKind::Parse, "bad")
    }

    #[test]
    fn lists_the_first_by_line_and_counts_them_all() {
        let mut rejections = BodyRejections::new();
        // Lines out of order, two problems on some lines, and a whole-body one.
        for line in (1..=5_000u64).rev() {
            rejections.push(at(line));
            if line % 2 == 0 {
                rejections.push(at(line));
            }
        }
        rejections.push(Rejection::whole_file(
            "POST /v1/metrics",
            RejectKind::Parse,
            "x",
        ));
        assert_eq!(rejections.problems(), 5_000 + 2_500 + 1);
        assert_eq!(rejections.records(), 5_000 + 1);
        let listed = rejections.into_listed();
        assert_eq!(listed.len(), LISTED_REJECTIONS);
        assert_eq!(listed[0].line, None);
        let lines: Vec<Option<u64>> = listed[1..5].iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![Some(1), Some(2), Some(2), Some(3)]);
        assert!(listed.windows(2).all(|w| w[0].line <= w[1].line));
    }
}
