//! Each provider against wiremock with the API's request and response shapes, including

#![allow(clippy::unwrap_used)]
//! its error and rate-limit answers.

use knowledge_export::Error;
use knowledge_export::providers::{
    Anthropic, Completion, Gemini, LlmProvider, ModelSettings, OpenAiCompatible,
};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn settings(model: &str) -> ModelSettings {
    ModelSettings {
        model: model.into(),
        temperature: 0.2,
        max_output_tokens: 1024,
    }
}

fn request() -> Completion {
    Completion {
        system: "Find new questions.".into(),
        user: "threads...".into(),
    }
}

#[tokio::test]
async fn anthropic_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant"))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(
            json!({"model": "claude-test", "max_tokens": 1024, "system": "Find new questions.",
            "messages": [{"role": "user", "content": "threads..."}]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": "{\"insights\": []}"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5}})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Anthropic::new(&server.uri(), "sk-ant", settings("claude-test")).unwrap();
    assert_eq!(
        client.complete(&request()).await.unwrap(),
        "{\"insights\": []}"
    );
    assert_eq!(client.name(), "anthropic/claude-test");
    assert!(!format!("{client:?}").contains("sk-ant"));
}

#[tokio::test]
async fn anthropic_errors_and_rate_limits() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "20").set_body_json(json!({
            "type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be positive"}})))
        .mount(&server)
        .await;
    let client = Anthropic::new(&server.uri(), "k", settings("m")).unwrap();
    match client.complete(&request()).await {
        Err(Error::RateLimited {
            provider: "anthropic",
            retry_after,
        }) => assert_eq!(retry_after.unwrap().as_secs(), 20),
        other => panic!("{other:?}"),
    }
    let error = client.complete(&request()).await.unwrap_err().to_string();
    assert!(
        error.contains("400") && error.contains("max_tokens"),
        "{error}"
    );
}

#[tokio::test]
async fn openai_compatible_chat_completions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-oa"))
        .and(body_partial_json(json!({"model": "gpt-test", "messages": [
            {"role": "system", "content": "Find new questions."}, {"role": "user", "content": "threads..."}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000, "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"insights\": []}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})))
        .mount(&server)
        .await;
    let client = OpenAiCompatible::new(
        &format!("{}/v1", server.uri()),
        Some("sk-oa"),
        settings("gpt-test"),
    )
    .unwrap();
    assert_eq!(
        client.complete(&request()).await.unwrap(),
        "{\"insights\": []}"
    );

    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})))
        .mount(&limited)
        .await;
    let local = OpenAiCompatible::new(&limited.uri(), None, settings("llama")).unwrap();
    assert!(matches!(
        local.complete(&request()).await,
        Err(Error::RateLimited {
            retry_after: None,
            ..
        })
    ));

    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})))
        .mount(&broken)
        .await;
    let client = OpenAiCompatible::new(&broken.uri(), Some("bad"), settings("m")).unwrap();
    assert!(
        client
            .complete(&request())
            .await
            .unwrap_err()
            .to_string()
            .contains("Incorrect API key")
    );
}

#[tokio::test]
async fn gemini_generate_content() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-test:generateContent"))
        .and(header("x-goog-api-key", "g-key"))
        .and(body_partial_json(json!({"systemInstruction": {"parts": [{"text": "Find new questions."}]},
            "contents": [{"role": "user", "parts": [{"text": "threads..."}]}],
            "generationConfig": {"maxOutputTokens": 1024}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "candidates": [{"content": {"parts": [{"text": "{\"insights\": "}, {"text": "[]}"}], "role": "model"},
                "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}})))
        .mount(&server)
        .await;
    let client = Gemini::new(&server.uri(), "g-key", settings("gemini-test")).unwrap();
    assert_eq!(
        client.complete(&request()).await.unwrap(),
        "{\"insights\": []}"
    );

    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}})))
        .mount(&limited)
        .await;
    let client = Gemini::new(&limited.uri(), "g-key", settings("gemini-test")).unwrap();
    assert!(matches!(
        client.complete(&request()).await,
        Err(Error::RateLimited {
            provider: "gemini",
            ..
        })
    ));

    let blocked = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "candidates": [{"finishReason": "SAFETY", "index": 0}]})))
        .mount(&blocked)
        .await;
    let client = Gemini::new(&blocked.uri(), "g-key", settings("gemini-test")).unwrap();
    assert!(
        client
            .complete(&request())
            .await
            .unwrap_err()
            .to_string()
            .contains("SAFETY")
    );
}
