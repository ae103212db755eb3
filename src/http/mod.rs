//! The HTTP face of the daemon: the endpoint's routes, the JSON API, the status page and the
//! `/metrics` exposition, plus the daemon's own counters they show.

pub mod api;
pub mod audience;
pub mod duration_histogram;
pub mod endpoint;
pub mod exposition;
pub mod metrics;
pub mod service_series;
pub mod status_page;
