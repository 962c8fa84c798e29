//! Campaigns on the server's database: the store conformance suite, the engine racing on
//! PostgreSQL, and the campaign API end to end.

use crate::backend_tests;
use crate::helpers::*;

/// The `sms_campaigns` store conformance suite, which the memory store also passes.
async fn the_campaign_store_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    sms_campaigns::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(the_campaign_store_conformance_suite_passes,);
