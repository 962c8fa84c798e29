//! The NumVerify client against wiremock, with the API's documented answer shapes.

use openphone_types::E164;
use sms_campaigns::{Error, LineType, NumVerify, OfflineValidator, PhoneValidator};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn number() -> E164 {
    E164::parse("+14158586273").expect("valid")
}

#[tokio::test]
async fn a_valid_mobile_is_reported_with_its_carrier() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/validate"))
        .and(query_param("access_key", "KEY"))
        .and(query_param("number", "14158586273"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "valid": true,
            "number": "14158586273",
            "local_format": "4158586273",
            "international_format": "+14158586273",
            "country_prefix": "+1",
            "country_code": "US",
            "country_name": "United States of America",
            "location": "Novato",
            "carrier": "AT&T Mobility LLC",
            "line_type": "mobile"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = NumVerify::new(server.uri(), "KEY").expect("client");
    let validation = client.validate(&number()).await.expect("validated");
    assert!(validation.valid);
    assert_eq!(validation.line_type, LineType::Mobile);
    assert_eq!(validation.carrier.as_deref(), Some("AT&T Mobility LLC"));
    assert!(
        !format!("{client:?}").contains("KEY"),
        "the key is redacted"
    );
}

#[tokio::test]
async fn an_invalid_number_and_other_line_types_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("number", "14158586273"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "valid": false, "number": "14158586273", "local_format": "", "international_format": "",
            "country_prefix": "", "country_code": "", "country_name": "", "location": "",
            "carrier": "", "line_type": null
        })))
        .mount(&server)
        .await;
    let client = NumVerify::new(server.uri(), "KEY").expect("client");
    let validation = client.validate(&number()).await.expect("answered");
    assert!(!validation.valid);
    assert_eq!(
        (validation.line_type, validation.carrier.as_deref()),
        (LineType::Unknown, None)
    );
    assert!(!validation.keeps());
}

#[tokio::test]
async fn api_errors_are_errors_not_invalid_numbers() {
    let server = MockServer::start().await;
    // NumVerify answers errors with HTTP 200 and `success: false`.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": false,
            "error": {"code": 104, "type": "usage_limit_reached", "info": "Your monthly usage limit has been reached."}
        })))
        .mount(&server)
        .await;
    let client = NumVerify::new(server.uri(), "KEY").expect("client");
    let error = client.validate(&number()).await.expect_err("quota");
    assert!(matches!(error, Error::Validator { .. }));
    assert!(error.to_string().contains("usage_limit_reached"), "{error}");
}

#[tokio::test]
async fn http_failures_and_garbage_are_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let client = NumVerify::new(server.uri(), "KEY").expect("client");
    assert!(
        client
            .validate(&number())
            .await
            .expect_err("503")
            .to_string()
            .contains("503")
    );

    let garbage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&garbage)
        .await;
    let client = NumVerify::new(garbage.uri(), "KEY").expect("client");
    assert!(matches!(
        client.validate(&number()).await,
        Err(Error::Validator { .. })
    ));
}

#[tokio::test]
async fn the_offline_validator_checks_format_only() {
    let us = OfflineValidator.validate(&number()).await.expect("offline");
    assert!(us.valid);
    assert_eq!(
        us.line_type,
        LineType::Unknown,
        "the NANP does not tell mobiles apart"
    );
    let uk_mobile = OfflineValidator
        .validate(&E164::parse("+447400123456").expect("uk"))
        .await
        .expect("offline");
    assert_eq!(uk_mobile.line_type, LineType::Mobile);
    let uk_landline = OfflineValidator
        .validate(&E164::parse("+442079460958").expect("uk"))
        .await
        .expect("offline");
    assert_eq!(uk_landline.line_type, LineType::Landline);
}
