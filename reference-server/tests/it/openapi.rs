//! The OpenAPI document against the routes: the served document is the checked-in
//! `docs/openapi.json`; every documented operation is routed; every operation declares the
//! bearer security requirement, a `401`, and its least role, which the server enforces.
//!
//! `UPDATE_OPENAPI=1 cargo test -p reference-server --test it openapi` rewrites the copy.

use std::collections::BTreeSet;
use std::path::PathBuf;

use reference_server::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb};

/// The checked-in copy.
fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p reference-server --test it openapi";

async fn spawn() -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(&db, None, None).await;
    (db, app)
}

/// `GET /api/v1/openapi.json` with `token`: the text served.
async fn fetch_document(app: &TestApp, token: &str) -> String {
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    response.text().await.unwrap()
}

/// Where `a` and `b` differ (at most `limit` places), as `paths["/api/v1/..."].get...`.
fn differences(a: &Value, b: &Value, at: &str, limit: usize, out: &mut Vec<String>) {
    if out.len() >= limit {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let pointer = if key.starts_with('/') || key.contains('.') {
                    format!("{at}[{key:?}]")
                } else if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match (x.get(key), y.get(key)) {
                    (Some(x), Some(y)) => differences(x, y, &pointer, limit, out),
                    (Some(_), None) => out.push(format!("{pointer}: only in the served document")),
                    (None, _) => out.push(format!("{pointer}: only in the checked-in copy")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (index, (x, y)) in x.iter().zip(y).enumerate() {
                differences(x, y, &format!("{at}[{index}]"), limit, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!(
            "{}: differs",
            if at.is_empty() { "the document" } else { at }
        )),
    }
}

#[tokio::test]
async fn openapi_document_is_served_and_matches_the_checked_in_copy() {
    let (db, app) = spawn().await;
    // Like every `/api/v1` route, the document needs a token; any role may read it.
    let anonymous = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let served = fetch_document(&app, &app.token(Role::Support).await).await;
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "rs_<id>_<secret>",
            "description": "A token made by `reference-server token create --role ROLE`."})
    );
    // The served document is the library's.
    assert_eq!(
        document,
        serde_json::to_value(reference_server::openapi::document()).unwrap()
    );

    let path = checked_in_path();
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, format!("{}\n", served.trim_end())).unwrap();
        println!("wrote {}", path.display());
    } else {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "cannot read {}: {error}; generate it with `{REGENERATE}`",
                path.display()
            )
        });
        let copy: Value = serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!(
                "{} is not JSON ({error}); regenerate it with `{REGENERATE}`",
                path.display()
            )
        });
        let mut found = Vec::new();
        differences(&document, &copy, "", 20, &mut found);
        assert!(
            found.is_empty(),
            "docs/openapi.json differs from the document the server generates; if the change \
             is intended, regenerate it with `{REGENERATE}` and commit it. Differences:\n{}",
            found.join("\n")
        );
        assert_eq!(
            text.trim_end(),
            served.trim_end(),
            "docs/openapi.json holds the same document in another layout; regenerate it with \
             `{REGENERATE}`"
        );
    }
    app.stop().await;
    db.cleanup().await;
}

/// Every `$ref` in `value`.
fn references<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                out.push(target);
            }
            map.values().for_each(|value| references(value, out));
        }
        Value::Array(items) => items.iter().for_each(|value| references(value, out)),
        _ => {}
    }
}

fn role(name: &str) -> Role {
    match name {
        "support" => Role::Support,
        "operator" => Role::Operator,
        "admin" => Role::Admin,
        other => panic!("unknown role {other:?}"),
    }
}

/// Sends `method url` with `token` (and `{}` as the body of writes): the status and the body
/// read as JSON (`null` when it is not JSON; a stream's body is not read).
async fn send(
    app: &TestApp,
    method: &Method,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method.clone(), app.url(url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if [Method::POST, Method::PATCH, Method::PUT].contains(method) {
        request = request.json(&json!({}));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if is_stream {
        return (status, Value::Null);
    }
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn openapi_every_documented_operation_is_routed_and_guarded() {
    let (db, app) = spawn().await;
    let admin = app.token(Role::Admin).await;
    let tokens = [
        (Role::Support, app.token(Role::Support).await),
        (Role::Operator, app.token(Role::Operator).await),
        (Role::Admin, admin.clone()),
    ];
    let token_of = |wanted: Role| {
        tokens
            .iter()
            .find(|(role, _)| *role == wanted)
            .map(|(_, token)| token.as_str())
            .unwrap()
    };
    let document: Value = serde_json::from_str(&fetch_document(&app, &admin).await).unwrap();

    // The fallback is live and tells an unknown route apart from a handler's 404.
    for unknown in ["/api/v1/no-such-thing", "/api/v1/conversations/x/y/z"] {
        let (status, body) = send(&app, &Method::GET, unknown, Some(&admin)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(body, json!({"error": "no such route"}), "{unknown}");
    }
    // A method no operation documents on a documented path is refused by the router.
    assert_eq!(
        send(&app, &Method::DELETE, "/api/v1/events", Some(&admin))
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // Every reference resolves.
    let mut targets = Vec::new();
    references(&document, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external reference {target}"));
        assert!(
            document.pointer(pointer).is_some(),
            "unresolved reference {target}"
        );
    }

    let paths = document["paths"].as_object().unwrap();
    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path} is outside /api/v1");
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            operations += 1;
            let what = format!("{method} {path}");

            // What the document declares.
            assert_eq!(
                operation["security"],
                json!([{"bearer": []}]),
                "{what}: the bearer security requirement"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{what}: no 401 response");
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "{what}: operation id {id} twice"
            );
            assert!(
                operation["tags"]
                    .as_array()
                    .is_some_and(|tags| !tags.is_empty()),
                "{what}: no tag"
            );
            let required = role(
                operation["x-required-role"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: no x-required-role")),
            );
            if required > Role::Support {
                assert!(responses.contains_key("403"), "{what}: no 403 response");
            }
            let mut url = path.clone();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        operation["parameters"]
                            .as_array()
                            .is_some_and(|parameters| parameters
                                .iter()
                                .any(|p| p["in"] == "path" && p["name"] == name)),
                        "{what}: path parameter {name} not declared"
                    );
                    url = url.replace(segment, "1");
                }
            }

            // The router matches it, and the answer is one the operation documents.
            let (status, body) = send(&app, &method, &url, Some(&admin)).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{what}: not routed (405)"
            );
            assert!(
                !(status == StatusCode::NOT_FOUND && body == json!({"error": "no such route"})),
                "{what}: documented but not routed"
            );
            assert!(
                responses.contains_key(status.as_str()),
                "{what}: answered {status} {body}, which it does not document"
            );

            // Without a token: 401.
            let (status, _) = send(&app, &method, &url, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a token");

            // The least role is enough, and the role below it is refused.
            let (status, _) = send(&app, &method, &url, Some(token_of(required))).await;
            assert_ne!(
                status,
                StatusCode::FORBIDDEN,
                "{what} with the {required} role"
            );
            let below = match required {
                Role::Support => None,
                Role::Operator => Some(Role::Support),
                Role::Admin => Some(Role::Operator),
            };
            if let Some(below) = below {
                let (status, _) = send(&app, &method, &url, Some(token_of(below))).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{what} with the {below} role"
                );
            }
        }
    }
    assert!(operations > 0, "the document has no operation");
    println!("{operations} operations checked against the routes");
    app.stop().await;
    db.cleanup().await;
}
