//! Batches: many apps launched from one manifest (a Rork batch of 21 Expo apps), with a
//! cost forecast before launch, their own concurrency inside the global limit, retry of the
//! failed apps and cancel as one.

pub mod forecast;
pub mod manifest;
