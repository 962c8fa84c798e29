//! Runnable examples for the OpenPhone crate family: see the `[[example]]` targets in `Cargo.toml`.
