//! Known-answer vectors from the API notes (§6): one per scheme.

use openphone_webhooks::{Scheme, SigningSecret};

use crate::{LEGACY_SECRET, STANDARD_SECRET, at_millis, at_seconds, headers, verifier};

/// The legacy docs' sample event, compact, as OpenPhone sends it.
pub const LEGACY_BODY: &str = r#"{"id":"EVc67ec998b35c41d388af50799aeeba3e","object":"event","apiVersion":"v2","createdAt":"2022-01-23T16:55:52.557Z","type":"message.received","data":{"object":{"id":"AC24a8b8321c4f4cf2be110f4250793d51","object":"message","from":"+18005550100","to":"+18885550101","direction":"incoming","body":"af","media":[],"status":"received","createdAt":"2022-01-23T16:55:52.420Z","userId":"USu5AsEHuQ","phoneNumberId":"PNtoDbDhuz","conversationId":"CN78ba0373683c48fd8fd96bc836c51f79"}}}"#;
pub const LEGACY_HEADER: &str = "hmac;1;1639710054089;qZIeDlK3ukRvXnLPHFEp5eph892AyYdfUIruRyNTtaw=";
pub const LEGACY_TIMESTAMP_MS: i128 = 1_639_710_054_089;

pub const STANDARD_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
pub const STANDARD_TIMESTAMP: i64 = 1_614_265_330;
pub const STANDARD_BODY: &str = r#"{"test": 2432232314}"#;
pub const STANDARD_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

pub fn standard_headers(signature: &str) -> http::HeaderMap {
    headers(&[
        ("webhook-id", STANDARD_ID),
        ("webhook-timestamp", &STANDARD_TIMESTAMP.to_string()),
        ("webhook-signature", signature),
    ])
}

#[test]
fn legacy_vector_verifies() {
    let verified = verifier(&[LEGACY_SECRET])
        .verify_at(
            &headers(&[("openphone-signature", LEGACY_HEADER)]),
            LEGACY_BODY.as_bytes(),
            at_millis(LEGACY_TIMESTAMP_MS),
        )
        .expect("the documented vector verifies");
    assert_eq!(verified.scheme, Scheme::Legacy);
    assert_eq!(verified.delivery_id, None);
    assert_eq!(verified.signed_at, at_millis(LEGACY_TIMESTAMP_MS));
}

#[test]
fn legacy_header_name_is_case_insensitive() {
    verifier(&[LEGACY_SECRET])
        .verify_at(
            &headers(&[("OpenPhone-Signature", LEGACY_HEADER)]),
            LEGACY_BODY.as_bytes(),
            at_millis(LEGACY_TIMESTAMP_MS),
        )
        .expect("header names are case-insensitive");
}

#[test]
fn standard_vector_verifies() {
    let verified = verifier(&[STANDARD_SECRET])
        .verify_at(
            &standard_headers(STANDARD_SIGNATURE),
            STANDARD_BODY.as_bytes(),
            at_seconds(STANDARD_TIMESTAMP),
        )
        .expect("the published vector verifies");
    assert_eq!(verified.scheme, Scheme::Standard);
    assert_eq!(verified.delivery_id.as_deref(), Some(STANDARD_ID));
    assert_eq!(verified.signed_at, at_seconds(STANDARD_TIMESTAMP));
}

#[test]
fn sign_reproduces_both_vectors() {
    let legacy = SigningSecret::parse(LEGACY_SECRET).unwrap();
    let signed = legacy
        .sign(
            "ignored",
            at_millis(LEGACY_TIMESTAMP_MS),
            LEGACY_BODY.as_bytes(),
        )
        .unwrap();
    assert_eq!(signed["openphone-signature"], LEGACY_HEADER);

    let standard = SigningSecret::parse(STANDARD_SECRET).unwrap();
    let signed = standard
        .sign(
            STANDARD_ID,
            at_seconds(STANDARD_TIMESTAMP),
            STANDARD_BODY.as_bytes(),
        )
        .unwrap();
    assert_eq!(signed["webhook-signature"], STANDARD_SIGNATURE);
    assert_eq!(signed["webhook-id"], STANDARD_ID);
    assert_eq!(signed["webhook-timestamp"], "1614265330");
}

#[test]
fn rotation_accepts_any_configured_secret_and_any_signature_in_the_header() {
    let other = "whsec_dGhpcyBpcyBhIGRpZmZlcmVudCBrZXkgZm9yIHRlc3Rz";
    let both = verifier(&[other, STANDARD_SECRET, LEGACY_SECRET]);
    let now = at_seconds(STANDARD_TIMESTAMP);
    // Several signatures, the valid one last, in a header that also names an unknown version.
    let header =
        format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xyz {STANDARD_SIGNATURE}");
    both.verify_at(&standard_headers(&header), STANDARD_BODY.as_bytes(), now)
        .expect("any matching entry passes");
    // And the legacy scheme on the same verifier, with several comma-separated candidates.
    let header = format!("hmac;1;{LEGACY_TIMESTAMP_MS};AAAA, {LEGACY_HEADER}");
    both.verify_at(
        &headers(&[("openphone-signature", &header)]),
        LEGACY_BODY.as_bytes(),
        at_millis(LEGACY_TIMESTAMP_MS),
    )
    .expect("any matching legacy candidate passes");
}
