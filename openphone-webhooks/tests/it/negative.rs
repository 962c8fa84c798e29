//! Every way a delivery must fail, and that errors never echo secrets, headers or body.

use std::time::Duration;

use openphone_webhooks::{Error, Scheme, SigningSecret, WebhookVerifier};

use crate::vectors::{
    LEGACY_BODY, LEGACY_HEADER, LEGACY_TIMESTAMP_MS, STANDARD_BODY, STANDARD_ID,
    STANDARD_SIGNATURE, STANDARD_TIMESTAMP, standard_headers,
};
use crate::{LEGACY_SECRET, STANDARD_SECRET, at_millis, at_seconds, headers, verifier};

fn legacy(header: &str, body: &str) -> Result<openphone_webhooks::Verified, Error> {
    verifier(&[LEGACY_SECRET]).verify_at(
        &headers(&[("openphone-signature", header)]),
        body.as_bytes(),
        at_millis(LEGACY_TIMESTAMP_MS),
    )
}

fn standard(map: &http::HeaderMap, body: &str) -> Result<openphone_webhooks::Verified, Error> {
    verifier(&[STANDARD_SECRET]).verify_at(map, body.as_bytes(), at_seconds(STANDARD_TIMESTAMP))
}

#[test]
fn wrong_secret() {
    let wrong = verifier(&["d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXk="]);
    let err = wrong
        .verify_at(
            &headers(&[("openphone-signature", LEGACY_HEADER)]),
            LEGACY_BODY.as_bytes(),
            at_millis(LEGACY_TIMESTAMP_MS),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SignatureMismatch), "{err:?}");
    let wrong = verifier(&["whsec_d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXk="]);
    let err = wrong
        .verify_at(
            &standard_headers(STANDARD_SIGNATURE),
            STANDARD_BODY.as_bytes(),
            at_seconds(STANDARD_TIMESTAMP),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SignatureMismatch), "{err:?}");
}

#[test]
fn body_altered_by_one_byte() {
    let altered = LEGACY_BODY.replacen("\"af\"", "\"ag\"", 1);
    assert!(matches!(
        legacy(LEGACY_HEADER, &altered),
        Err(Error::SignatureMismatch)
    ));
    let altered = STANDARD_BODY.replacen('4', "5", 1);
    assert!(matches!(
        standard(&standard_headers(STANDARD_SIGNATURE), &altered),
        Err(Error::SignatureMismatch)
    ));
    // Re-serialized JSON (whitespace removed) is a different body.
    assert!(matches!(
        standard(
            &standard_headers(STANDARD_SIGNATURE),
            r#"{"test":2432232314}"#
        ),
        Err(Error::SignatureMismatch)
    ));
}

#[test]
fn truncated_or_empty_signatures() {
    let truncated = &LEGACY_HEADER[..LEGACY_HEADER.len() - 4];
    assert!(matches!(
        legacy(truncated, LEGACY_BODY),
        Err(Error::SignatureMismatch)
    ));
    let empty = format!("hmac;1;{LEGACY_TIMESTAMP_MS};");
    assert!(matches!(
        legacy(&empty, LEGACY_BODY),
        Err(Error::SignatureMismatch)
    ));
    // The Standard Webhooks reference library once accepted an empty `v1,` entry.
    for header in [
        "v1,",
        "v1, v1,",
        &STANDARD_SIGNATURE[..STANDARD_SIGNATURE.len() - 2],
    ] {
        let err = standard(&standard_headers(header), STANDARD_BODY).unwrap_err();
        assert!(
            matches!(err, Error::SignatureMismatch),
            "{header:?}: {err:?}"
        );
    }
    let err = standard(&standard_headers(""), STANDARD_BODY).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion), "{err:?}");
    let err = standard(&standard_headers("g0hM9SsE"), STANDARD_BODY).unwrap_err();
    assert!(matches!(err, Error::MalformedHeader { .. }), "{err:?}");
}

#[test]
fn unknown_scheme_or_version() {
    let signature = LEGACY_HEADER.rsplit(';').next().unwrap();
    let sha512 = format!("sha512;1;{LEGACY_TIMESTAMP_MS};{signature}");
    assert!(matches!(
        legacy(&sha512, LEGACY_BODY),
        Err(Error::UnsupportedScheme)
    ));
    let version2 = format!("hmac;2;{LEGACY_TIMESTAMP_MS};{signature}");
    assert!(matches!(
        legacy(&version2, LEGACY_BODY),
        Err(Error::UnsupportedVersion)
    ));
    assert!(matches!(
        legacy("hmac;1;1639710054089", LEGACY_BODY),
        Err(Error::MalformedHeader { .. })
    ));
    assert!(matches!(
        legacy(&format!("{LEGACY_HEADER};extra"), LEGACY_BODY),
        Err(Error::MalformedHeader { .. })
    ));
    let v2 = STANDARD_SIGNATURE.replace("v1,", "v2,");
    assert!(matches!(
        standard(&standard_headers(&v2), STANDARD_BODY),
        Err(Error::UnsupportedVersion)
    ));
}

#[test]
fn stale_and_future_timestamps() {
    let five_minutes = 5 * 60;
    let check = |now: time::OffsetDateTime| {
        verifier(&[STANDARD_SECRET]).verify_at(
            &standard_headers(STANDARD_SIGNATURE),
            STANDARD_BODY.as_bytes(),
            now,
        )
    };
    assert!(check(at_seconds(STANDARD_TIMESTAMP + five_minutes)).is_ok());
    assert!(check(at_seconds(STANDARD_TIMESTAMP - five_minutes)).is_ok());
    assert!(matches!(
        check(at_seconds(STANDARD_TIMESTAMP + five_minutes + 1)),
        Err(Error::TimestampTooOld)
    ));
    assert!(matches!(
        check(at_seconds(STANDARD_TIMESTAMP - five_minutes - 1)),
        Err(Error::TimestampInFuture)
    ));
    // Legacy, in milliseconds.
    let legacy_check = |now| {
        verifier(&[LEGACY_SECRET]).verify_at(
            &headers(&[("openphone-signature", LEGACY_HEADER)]),
            LEGACY_BODY.as_bytes(),
            now,
        )
    };
    assert!(matches!(
        legacy_check(at_millis(LEGACY_TIMESTAMP_MS + 300_001)),
        Err(Error::TimestampTooOld)
    ));
    assert!(matches!(
        legacy_check(at_millis(LEGACY_TIMESTAMP_MS - 300_001)),
        Err(Error::TimestampInFuture)
    ));
    // The tolerance is configurable.
    let lenient = verifier(&[STANDARD_SECRET]).with_tolerance(Duration::from_secs(3600));
    assert!(
        lenient
            .verify_at(
                &standard_headers(STANDARD_SIGNATURE),
                STANDARD_BODY.as_bytes(),
                at_seconds(STANDARD_TIMESTAMP + 3000),
            )
            .is_ok()
    );
    // Garbage and millisecond timestamps in the Standard scheme.
    for timestamp in ["", "abc", "-1614265330", "1614265330000", "1614265330.5"] {
        let map = headers(&[
            ("webhook-id", STANDARD_ID),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", STANDARD_SIGNATURE),
        ]);
        let err = standard(&map, STANDARD_BODY).unwrap_err();
        assert!(
            matches!(err, Error::MalformedHeader { .. }),
            "{timestamp:?}: {err:?}"
        );
    }
}

#[test]
fn missing_headers() {
    let err = standard(&headers(&[]), STANDARD_BODY).unwrap_err();
    assert!(matches!(err, Error::MissingSignature), "{err:?}");
    for missing in ["webhook-id", "webhook-timestamp"] {
        let mut map = standard_headers(STANDARD_SIGNATURE);
        map.remove(missing);
        let err = standard(&map, STANDARD_BODY).unwrap_err();
        assert!(
            matches!(err, Error::MissingHeader(name) if name == missing),
            "{err:?}"
        );
    }
    let mut map = standard_headers(STANDARD_SIGNATURE);
    map.insert("webhook-id", http::HeaderValue::from_static(""));
    assert!(matches!(
        standard(&map, STANDARD_BODY),
        Err(Error::MalformedHeader { .. })
    ));
}

#[test]
fn duplicated_headers() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut map = standard_headers(STANDARD_SIGNATURE);
        let value = map[name].clone();
        map.append(name, value);
        let err = standard(&map, STANDARD_BODY).unwrap_err();
        assert!(
            matches!(err, Error::DuplicateHeader(header) if header == name),
            "{err:?}"
        );
    }
    let map = headers(&[
        ("openphone-signature", LEGACY_HEADER),
        ("openphone-signature", LEGACY_HEADER),
    ]);
    let err = verifier(&[LEGACY_SECRET])
        .verify_at(&map, LEGACY_BODY.as_bytes(), at_millis(LEGACY_TIMESTAMP_MS))
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateHeader(_)), "{err:?}");
}

#[test]
fn both_schemes_at_once_are_refused() {
    let mut map = standard_headers(STANDARD_SIGNATURE);
    map.insert(
        "openphone-signature",
        http::HeaderValue::from_static(LEGACY_HEADER),
    );
    let err = verifier(&[STANDARD_SECRET, LEGACY_SECRET])
        .verify_at(
            &map,
            STANDARD_BODY.as_bytes(),
            at_seconds(STANDARD_TIMESTAMP),
        )
        .unwrap_err();
    assert!(matches!(err, Error::ConflictingSchemes), "{err:?}");
}

#[test]
fn a_scheme_without_a_secret_fails_closed() {
    let err = verifier(&[LEGACY_SECRET])
        .verify_at(
            &standard_headers(STANDARD_SIGNATURE),
            STANDARD_BODY.as_bytes(),
            at_seconds(STANDARD_TIMESTAMP),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::NoSecretForScheme(Scheme::Standard)),
        "{err:?}"
    );
    // A legacy key used as a Standard key is not accepted either: schemes keep their secrets.
    let bytes = base64_decode(STANDARD_SECRET.trim_start_matches("whsec_"));
    let as_legacy =
        WebhookVerifier::new([SigningSecret::from_bytes(Scheme::Legacy, &bytes).unwrap()]).unwrap();
    assert!(
        as_legacy
            .verify_at(
                &standard_headers(STANDARD_SIGNATURE),
                STANDARD_BODY.as_bytes(),
                at_seconds(STANDARD_TIMESTAMP),
            )
            .is_err()
    );
    assert!(matches!(WebhookVerifier::new([]), Err(Error::NoSecrets)));
}

#[test]
fn oversized_bodies_are_refused_before_hashing() {
    let small = verifier(&[STANDARD_SECRET]).with_max_body_size(8);
    let err = small
        .verify_at(
            &standard_headers(STANDARD_SIGNATURE),
            STANDARD_BODY.as_bytes(),
            at_seconds(STANDARD_TIMESTAMP),
        )
        .unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { limit: 8 }), "{err:?}");
}

#[test]
fn errors_never_echo_secrets_headers_or_body() {
    let body = r#"{"secret-body-marker": true}"#;
    let cases = [
        headers(&[(
            "openphone-signature",
            "hmac;1;1639710054089;c2VjcmV0LWhlYWRlci1tYXJrZXI=",
        )]),
        headers(&[("openphone-signature", "secret-header-marker")]),
        headers(&[
            ("webhook-id", "secret-id-marker"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,secret-header-marker"),
        ]),
        headers(&[
            ("webhook-id", "secret-id-marker"),
            ("webhook-timestamp", "secret-ts-marker"),
            ("webhook-signature", "v1,x"),
        ]),
    ];
    let both = verifier(&[STANDARD_SECRET, LEGACY_SECRET]);
    for map in cases {
        let err = both
            .verify_at(&map, body.as_bytes(), at_seconds(STANDARD_TIMESTAMP))
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        for marker in ["secret", "MfKQ9r8G", "R2ZLM2o0", "c2VjcmV0"] {
            assert!(!shown.contains(marker), "{shown}");
        }
    }
    let shown = format!("{both:?}");
    assert!(
        !shown.contains("MfKQ9r8G") && !shown.contains("R2ZLM2o0"),
        "{shown}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn long_signature_lists_are_refused_before_hashing() {
    let candidate = format!("hmac;1;{LEGACY_TIMESTAMP_MS};x");
    let header = [candidate.as_str(); openphone_webhooks::MAX_SIGNATURES + 1].join(",");
    let err = legacy(&header, LEGACY_BODY).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MalformedHeader {
                reason: "too many signatures",
                ..
            }
        ),
        "{err:?}"
    );
    // At the limit, with the valid signature last, it still verifies.
    let mut list = vec![candidate.as_str(); openphone_webhooks::MAX_SIGNATURES - 1];
    list.push(LEGACY_HEADER);
    assert!(legacy(&list.join(","), LEGACY_BODY).is_ok());
    let entries = ["v1,AAAA"; openphone_webhooks::MAX_SIGNATURES + 1].join(" ");
    let err = standard(&standard_headers(&entries), STANDARD_BODY).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MalformedHeader {
                reason: "too many signatures",
                ..
            }
        ),
        "{err:?}"
    );
}
