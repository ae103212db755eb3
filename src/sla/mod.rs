//! What outcomes mean and the SLA maths over them: pure code, no I/O and no clock (`now` is a
//! parameter). This is where most tests live.
//!
//! `tracker` is the per-service state machine (outcomes → incidents, blips, no-data);
//! `interval` the set algebra of time; `calendar` a contract's zone, coverage and recurring
//! windows; `maintenance` which windows apply; `availability` a period's numbers; `credit`,
//! `budget` and `burn` credits, error budgets and burn rates; `response` acknowledgement and
//! restore times against their targets; `quorum` several locations' views of a service combined
//! into the fleet's one verdict; `values` (exact percentages and
//! money) and `latency` (the histogram's bucket edges) are the value types the layers above
//! share.

pub mod availability;
pub mod budget;
pub mod burn;
pub mod calendar;
pub mod credit;
pub mod interval;
pub mod latency;
pub mod maintenance;
pub mod quorum;
pub mod response;
pub mod tracker;
pub mod values;

pub use interval::Intervals;
