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

#[cfg(test)]
mod tests {
    use super::*;
    use augur_dataflows::contention_forecast::{ForecastConfig, SeriesState};

    #[test]
    fn a_series_restored_mid_bucket_goes_on_as_the_one_that_was_never_stopped() {
        // 1-ms samples are modelled in buckets (dynamic granularity): a checkpoint taken with a
        // bucket half full must carry it, or the resumed run's forecasts differ.
        let config = ForecastConfig::default();
        let mut series = SeriesState::new(&config);
        let value = |ms: i64| 0.3 + 0.1 * ((ms % 97) as f64 / 97.0);
        for ms in 0..10_300 {
            series.update(ms, value(ms));
        }
        let mut restored: SeriesState =
            decode(&encode(&series).expect("encodes")).expect("decodes");
        for ms in 10_300..20_000 {
            series.update(ms, value(ms));
            restored.update(ms, value(ms));
        }
        assert_eq!(restored.forecast(&config), series.forecast(&config));
        assert_eq!(encode(&restored), encode(&series));
    }

    #[test]
    fn a_series_restored_with_a_model_put_aside_takes_it_back_as_the_one_never_stopped() {
        // A collector alternating between 10-s and 1-minute samples: each turn puts the other
        // rate's model and scorer aside, and the checkpoint must carry them.
        let config = ForecastConfig::default();
        let value = |ms: i64| 0.3 + 0.1 * ((ms / 10_000 % 89) as f64 / 89.0);
        let mut times = Vec::new();
        let mut ms = 0;
        for turn in 0..8 {
            for _ in 0..30 {
                ms += if turn % 2 == 0 { 10_000 } else { 60_000 };
                times.push(ms);
            }
        }
        let (before, after) = times.split_at(100);
        let mut series = SeriesState::new(&config);
        for &ms in before {
            series.update(ms, value(ms));
        }
        let mut restored: SeriesState =
            decode(&encode(&series).expect("encodes")).expect("decodes");
        for &ms in after {
            series.update(ms, value(ms));
            restored.update(ms, value(ms));
        }
        assert_eq!(restored.forecast(&config), series.forecast(&config));
        assert_eq!(encode(&restored), encode(&series));
    }
}
