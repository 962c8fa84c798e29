//! From simulated conversations to reviewed insights, in one process: a few conversations of
//! the simulated OpenPhone become threads (`thread-resolver`), the idle sweep resolves them,
//! and `knowledge-export` sends them, redacted, with the relevant SOP, to a model (here a
//! wiremock server answering like Anthropic's Messages API), then prints the insights.
//!
//! ```sh
//! cargo run -p examples --example insights-from-conversations
//! ```

use futures_util::TryStreamExt;
use knowledge_export::providers::{Anthropic, ModelSettings};
use knowledge_export::sop::{Sop, SopLibrary};
use knowledge_export::{ExportOptions, Exporter, ExporterConfig, InsightStore, MemoryInsightStore};
use openphone_client::model::conversation::ListConversations;
use openphone_client::model::message::ListMessages;
use openphone_client::types::E164;
use openphone_client::{Client, RateLimit};
use openphone_simulator::{SeedOptions, Simulator, SimulatorConfig};
use serde_json::json;
use thread_resolver::{Entry, EntryKind, MemoryThreadStore, Resolver, ThreadStore};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let simulator = Simulator::start(
        SimulatorConfig {
            seed: SeedOptions {
                conversations: 3,
                ..SeedOptions::default()
            },
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let client = Client::builder(simulator.api_key())
        .base_url(simulator.base_url())
        .rate_limit(RateLimit::per_second(10))
        .build()?;

    // Each conversation's messages join its thread.
    let threads = MemoryThreadStore::new();
    let mut latest = time::OffsetDateTime::UNIX_EPOCH;
    let conversations: Vec<_> = client
        .list_conversations(ListConversations::all())
        .try_collect()
        .await?;
    for conversation in &conversations {
        let participants: Vec<E164> = conversation
            .participants
            .iter()
            .filter_map(|p| p.as_e164().cloned())
            .collect();
        let key = format!(
            "{}|{}",
            conversation.phone_number_id,
            participants
                .iter()
                .map(E164::as_str)
                .collect::<Vec<_>>()
                .join(",")
        );
        let messages: Vec<_> = client
            .list_messages(ListMessages::new(
                conversation.phone_number_id.clone(),
                participants,
            ))
            .try_collect()
            .await?;
        for message in messages {
            latest = latest.max(message.created_at);
            let entry = Entry {
                id: message.id.to_string(),
                kind: EntryKind::Message,
                direction: message.direction.to_string(),
                from: Some(message.from.as_str().to_owned()),
                text: Some(message.text),
                at: message.created_at,
            };
            threads.append(&key, &entry).await?;
        }
    }
    let resolver = Resolver::new(threads.clone(), thread_resolver::DEFAULT_IDLE)?;
    let sweep = resolver.sweep(latest + time::Duration::hours(1)).await?;
    println!(
        "{} conversations, {} threads resolved",
        conversations.len(),
        sweep.resolved
    );

    // The model: wiremock answering in Anthropic's shape, with one insight for the first thread.
    let first = threads.resolved_log(None, 1).await?[0].1.thread.id.0;
    let model = MockServer::start().await;
    let answer = json!({"insights": [{"source": "a customer asked about weekend hours",
        "summary": "Weekend opening hours are not in the SOPs", "action": "Add weekend hours to the front-desk SOP",
        "category": "front-desk", "sop_target": "front-desk/hours.md", "confidence": "medium", "thread_ids": [first]}]});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-example",
            "content": [{"type": "text", "text": answer.to_string()}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}})))
        .mount(&model)
        .await;
    let provider = Anthropic::new(
        &model.uri(),
        "example-key",
        ModelSettings {
            model: "claude-example".into(),
            temperature: 0.2,
            max_output_tokens: 1024,
        },
    )?;
    let sops = SopLibrary::new(vec![Sop {
        category: "front-desk".into(),
        path: "front-desk/hours.md".into(),
        title: "Opening hours".into(),
        text: "Weekdays 9 to 9.".into(),
    }]);
    let insights = MemoryInsightStore::new();
    let exporter = Exporter::new(Some(provider), sops, ExporterConfig::default());
    let report = exporter
        .export(
            &threads,
            &insights,
            &ExportOptions {
                llm: true,
                ..ExportOptions::default()
            },
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    println!(
        "{} batch(es) sent, {} insight(s) kept",
        report.batches.len(),
        report.insights
    );
    for insight in insights.insights(None, None, 10).await? {
        println!(
            "- [{:?}] {} -> {} (SOP {}, threads {:?})",
            insight.insight.confidence,
            insight.insight.summary,
            insight.insight.action,
            insight.insight.sop_target.as_deref().unwrap_or("new"),
            insight.insight.thread_ids
        );
    }
    Ok(())
}
