//! The store conformance suite on the memory store.

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    knowledge_export::conformance::run(knowledge_export::MemoryInsightStore::new()).await;
}
