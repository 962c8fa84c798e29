//! Integration tests of the simulator, driven through `openphone-client` and verified with
//! `openphone-webhooks`.

// Test cases unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod api;
mod faults;
mod helpers;
mod webhooks;
