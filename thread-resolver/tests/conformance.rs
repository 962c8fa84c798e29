//! The store conformance suite on the memory store.

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    thread_resolver::conformance::run(thread_resolver::MemoryThreadStore::new()).await;
}
