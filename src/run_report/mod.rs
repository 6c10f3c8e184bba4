//! `run --report` (and the demo): a bounded history of the run kept by the sink as it goes,
//! drawn at the end as `DIR/report.html`.

pub mod history;
pub mod page;
pub mod trace;

pub use history::RunHistory;
pub use page::html;
