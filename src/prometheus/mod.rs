//! Prometheus as a metric source: node_exporter's text exposition scraped live
//! ([`node_exporter`]), and history read back from a Prometheus server's HTTP API
//! ([`query_range`]), both turned into the utilisation records `augur run` reads.

pub mod exposition;
pub mod node_exporter;
pub mod query_range;

pub use exposition::{parse_exposition, Exposition, ExpositionSample, LineProblem};
pub use node_exporter::{NodeExporterScraper, NodeSnapshot};
pub use query_range::{parse_query_range, read_history, History, HistoryQuery};

use crate::http_client::HttpError;

/// Why a scrape or a query gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The URL is bad or the endpoint did not answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The endpoint answered with an error status and no API error in the body.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// What was asked.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Prometheus answered `"status": "error"`.
    #[error("Prometheus refused {query:?}: {error_type}: {error}")]
    Api {
        /// The PromQL query.
        query: String,
        /// `errorType` (`bad_data`, `execution`, `timeout`, ...).
        error_type: String,
        /// `error`, its explanation.
        error: String,
    },
    /// The body is not the JSON the API documents.
    #[error("unexpected answer to {query:?}: {reason}")]
    Response {
        /// The PromQL query.
        query: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The start of a body, for an error message.
fn clip_body(text: &str) -> String {
    const LIMIT: usize = 200;
    let text = text.trim();
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(LIMIT).collect();
        clipped.push('…');
        clipped
    }
}
