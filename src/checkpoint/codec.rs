//! The checkpoint's byte encoding: bincode (exact for floats, compact for the placers' maps),
//! bounded so that a corrupt length prefix cannot ask for more memory than the file holds.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The encoding options, the same for writing and reading.
fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(limit)
}

/// Encodes `value`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    options(u64::MAX)
        .serialize(value)
        .map_err(|error| error.to_string())
}

/// Decodes a whole `bytes` as a `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options(bytes.len() as u64)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|error| error.to_string())
}
