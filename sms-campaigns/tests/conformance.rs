//! The store conformance suite on the in-memory store.

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    sms_campaigns::conformance::run(sms_campaigns::MemoryStore::new()).await;
}
