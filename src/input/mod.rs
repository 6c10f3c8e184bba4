//! Readers for every input format augur accepts. (Being written.)
