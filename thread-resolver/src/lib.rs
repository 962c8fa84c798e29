#![doc = include_str!("../README.md")]

pub mod conformance;
mod error;
mod memory;
mod model;
mod resolver;
mod store;

pub use error::Error;
pub use memory::MemoryThreadStore;
pub use model::{
    Entry, EntryKind, Resolution, Snapshot, Thread, ThreadFilter, ThreadId, ThreadKey, ThreadState,
};
pub use resolver::{DEFAULT_IDLE, Resolver, Sweep};
pub use store::{Appended, IdleThread, ThreadStore};
