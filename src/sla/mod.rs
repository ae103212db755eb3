//! SLA maths: pure functions of intervals and a period (no I/O, no clock: `now` is a parameter).
//!
//! `interval` is the set algebra, `availability` computes a period's numbers, `calendar` turns a contract's zone, coverage and recurring
//! windows into intervals, `credit` decides credits exactly.

pub mod availability;
pub mod budget;
pub mod burn;
pub mod calendar;
pub mod credit;
pub mod interval;
pub mod latency;
pub mod maintenance;
pub mod tracker;
pub mod values;

pub use interval::Intervals;
