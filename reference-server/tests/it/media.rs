//! Media copying end to end: attachments and recordings downloaded into the blob store,
//! served back, with retries, refusals and failures visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use reference_server::alerts::AlertStore;
use reference_server::auth::Role;
use reference_server::media::MediaJobs;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

fn message_with_media(id: &str, urls: &[String]) -> Value {
    let media: Vec<Value> = urls
        .iter()
        .map(|url| json!({"url": url, "type": "image/jpeg"}))
        .collect();
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4", "createdAt": "2026-04-13T12:00:00Z",
        "type": "message.received", "data": {"object": {"id": id, "object": "message", "from": "+15550001111",
        "to": ["+15550000001"], "direction": "incoming", "text": "crack photos", "status": "received",
        "media": media, "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}})
}

/// `GET /api/v1/media/{id}` of the stored `bytes` answers byte ranges as players ask them
/// (seeking in a recording), and the whole file for anything else.
async fn ranges_are_served(app: &TestApp, token: &str, id: i64, bytes: &[u8]) {
    let size = bytes.len();
    let get = |range: String, if_range: Option<&'static str>| {
        let mut request = app
            .client
            .get(app.url(&format!("/api/v1/media/{id}")))
            .bearer_auth(token)
            .header("range", range);
        if let Some(tag) = if_range {
            request = request.header("if-range", tag);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let content_range = response
                .headers()
                .get("content-range")
                .map(|value| value.to_str().unwrap().to_owned());
            (
                status,
                content_range,
                response.bytes().await.unwrap().to_vec(),
            )
        }
    };
    for (range, first, end) in [
        ("bytes=0-3".to_owned(), 0, 4),
        ("bytes=2-".to_owned(), 2, size),
        ("bytes=-5".to_owned(), size - 5, size),
        (format!("bytes=1-{}", size + 100), 1, size),
    ] {
        let (status, content_range, body) = get(range.clone(), None).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            content_range.as_deref(),
            Some(format!("bytes {first}-{}/{size}", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(body, &bytes[first..end], "{range}");
    }
    // Not one range of bytes, or for another copy: the whole file.
    for (range, if_range) in [
        ("bytes=0-1,4-5", None),
        ("bytes=3-1", None),
        ("items=0-1", None),
        ("bytes=0-1", Some("\"another\"")),
    ] {
        let (status, _, body) = get(range.to_owned(), if_range).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert_eq!(body, bytes, "{range}");
    }
    let (status, content_range, _) = get(format!("bytes={size}-"), None).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(content_range, Some(format!("bytes */{size}")));
}

/// The first media job of `owner` once one is stored (within the wait of
/// [`TestApp::eventually`]).
async fn stored_media(app: &TestApp, owner: &str) -> reference_server::media::MediaRecord {
    TestApp::eventually(owner, || async {
        let jobs = app.store.media_of(owner).await.ok()?;
        jobs.into_iter().find(|job| job.status == "stored")
    })
    .await
}

/// Lets downloads fetch from the test server at `base` (`http://127.0.0.1:port`): its
/// `/opstatics/` path allowed, plain http allowed for 127.0.0.1.
fn fetch_from(config: &mut reference_server::Config, base: &str) {
    config.media_allowed_hosts = vec![format!("{}/opstatics/", base.trim_start_matches("http://"))];
    config.media_http_hosts = vec!["127.0.0.1".to_owned()];
}

fn recording(call: &str, url: &str) -> Value {
    json!({"id": format!("EV{call}r"), "object": "event", "apiVersion": "v3", "createdAt": "2026-04-13T12:05:00Z",
        "type": "call.recording.completed", "data": {"object": {"id": call, "object": "call",
        "from": "+15550001111", "to": "+15550000001", "direction": "incoming",
        "media": [{"url": url, "type": "audio/mpeg", "duration": 30}], "voicemail": null,
        "status": "completed", "createdAt": "2026-04-13T12:00:00Z", "answeredAt": "2026-04-13T12:00:05Z",
        "completedAt": "2026-04-13T12:00:35Z", "duration": 30, "userId": "US1", "phoneNumberId": "PN1"}}})
}

async fn media_is_copied_served_retried_and_refused(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    let photo = b"\xff\xd8\xff\xe0 a photo of a foundation crack".to_vec();
    Mock::given(method("GET"))
        .and(path("/opstatics/photo.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(photo.clone(), "image/jpeg"))
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .and(path("/opstatics/gone.jpg"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .and(path("/opstatics/flaky.mp3"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .and(path("/opstatics/flaky.mp3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"ID3 audio".to_vec(), "audio/mpeg"))
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .and(path("/opstatics/huge.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![7u8; 5000], "image/jpeg"))
        .mount(&storage)
        .await;
    let base = storage.uri();
    // The server's clock runs `offset` ms ahead of real time; the test moves it to skip backoff.
    let offset = Arc::new(AtomicI64::new(0));
    let clock_offset = offset.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(clock_offset.load(Ordering::SeqCst))
    });
    let app = TestApp::spawn_with_clock(&db, clock, |config| {
        fetch_from(config, &base);
        config.media_max_bytes = 1000;
    })
    .await;
    let urls: Vec<String> = ["photo.jpg", "gone.jpg", "huge.jpg"]
        .iter()
        .map(|name| format!("{base}/opstatics/{name}"))
        .collect();
    assert_eq!(
        app.webhook("m1", &message_with_media("ACm", &urls)).await,
        StatusCode::OK
    );
    assert_eq!(
        app.webhook(
            "r1",
            &recording("CAr", &format!("{base}/opstatics/flaky.mp3"))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        app.webhook(
            "r2",
            &recording("CAevil", &format!("{base}/elsewhere/x.mp3"))
        )
        .await,
        StatusCode::OK
    );

    let settled = |owner: &'static str, count: usize| {
        let store = app.store.clone();
        async move {
            TestApp::eventually(owner, || {
                let store = store.clone();
                async move {
                    let media = store.media_of(owner).await.unwrap();
                    (media.len() == count
                        && media
                            .iter()
                            .all(|m| m.status != "pending" || m.attempts > 0))
                    .then_some(media)
                }
            })
            .await
        }
    };
    let message_media = settled("ACm", 3).await;
    let by_url = |name: &str| {
        message_media
            .iter()
            .find(|m| m.url.ends_with(name))
            .unwrap()
            .clone()
    };
    let stored = by_url("photo.jpg");
    assert_eq!(stored.status, "stored");
    assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(stored.size_bytes, Some(photo.len() as i64));
    let expected_hash: String = Sha256::digest(&photo)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored.sha256.as_deref(), Some(expected_hash.as_str()));
    assert!(
        db.dir
            .join("blobs")
            .join(&expected_hash[..2])
            .join(&expected_hash)
            .exists()
    );
    let gone = by_url("gone.jpg");
    assert_eq!(
        (gone.status.as_str(), gone.last_error.as_deref()),
        ("failed", Some("HTTP 404 Not Found"))
    );
    let huge = by_url("huge.jpg");
    assert_eq!(huge.status, "failed");
    assert!(huge.last_error.unwrap().contains("MEDIA_MAX_BYTES"));
    let evil = settled("CAevil", 1).await;
    assert_eq!(evil[0].status, "failed");
    assert!(
        evil[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("MEDIA_ALLOWED_HOSTS")
    );

    // The flaky recording failed once (503) and waits for its retry; an hour later it is stored.
    let flaky = settled("CAr", 1).await;
    assert_eq!(
        (flaky[0].status.as_str(), flaky[0].attempts),
        ("pending", 1)
    );
    assert_eq!(
        flaky[0].last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    offset.store(3_600_000, Ordering::SeqCst);
    let retried = stored_media(&app, "CAr").await;
    assert_eq!(retried.attempts, 2);

    // Served back through the API, listed by status, counted.
    let support = app.token(Role::Support).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/media/{}", stored.id)))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(response.bytes().await.unwrap().to_vec(), photo);
    ranges_are_served(&app, &support, stored.id, &photo).await;
    // A client holding the bytes revalidates for nothing.
    for (if_none_match, expected) in [
        (
            headers["etag"].to_str().unwrap().to_owned(),
            StatusCode::NOT_MODIFIED,
        ),
        (
            format!("\"other\", {}", headers["etag"].to_str().unwrap()),
            StatusCode::NOT_MODIFIED,
        ),
        ("\"other\"".to_owned(), StatusCode::OK),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/media/{}", stored.id)))
            .bearer_auth(&support)
            .header("if-none-match", &if_none_match)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{if_none_match}");
        assert_eq!(response.headers()["etag"], headers["etag"]);
    }
    let (status, body) = app
        .get(&format!("/api/v1/media/{}", gone.id), &support)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("failed"), "{body}");
    assert_eq!(
        app.get("/api/v1/media?status=failed", &support).await.0,
        StatusCode::FORBIDDEN
    );
    let operator = app.token(Role::Operator).await;
    let (_, failed) = app.get("/api/v1/media?status=failed", &operator).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 3, "{failed}");
    let (_, call) = app.get("/api/v1/calls/CAr", &operator).await;
    assert_eq!(call["media"][0]["status"], "stored", "{call}");
    assert_eq!(
        call["media"][0]["href"],
        format!("/api/v1/media/{}", retried.id)
    );
    let (_, stats) = app.get("/api/v1/stats", &operator).await;
    assert_eq!(
        (
            stats["media_stored"].as_i64(),
            stats["media_failed"].as_i64()
        ),
        (Some(2), Some(3))
    );
    let metrics = app.metrics(&operator).await;
    assert!(
        metrics.contains("media_downloads_total{outcome=\"failed\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("media_downloads_total{outcome=\"retry\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("media_failed 3"), "{metrics}");
    // The three failures are one open alert.
    let alerts = app.store.alerts(true, None, 10).await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].kind.as_str(), alerts[0].count),
        ("media_download_failed", 3)
    );
    app.stop().await;
    db.cleanup().await;
}

/// With `BLOB_STORE_URL` (here the in-memory object store; `s3://` in production) blobs go to
/// the object store, not to the local disk, and are served from it.
async fn media_goes_to_the_configured_object_store(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/opstatics/plan.pdf"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"%PDF-1.7 plan".to_vec(), "application/pdf"),
        )
        .mount(&storage)
        .await;
    let base = storage.uri();
    let app = TestApp::spawn_with(&db, |config| {
        fetch_from(config, &base);
        config.blob_store_url = Some("memory:///".to_owned());
    })
    .await;
    let url = format!("{base}/opstatics/plan.pdf");
    assert_eq!(
        app.webhook("m1", &message_with_media("ACpdf", &[url]))
            .await,
        StatusCode::OK
    );
    let stored = stored_media(&app, "ACpdf").await;
    let hash = stored.sha256.unwrap();
    assert!(
        !db.dir.join("blobs").join(&hash[..2]).join(&hash).exists(),
        "not on local disk"
    );
    let token = app.token(Role::Support).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/media/{}", stored.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"%PDF-1.7 plan");
    ranges_are_served(&app, &token, stored.id, b"%PDF-1.7 plan").await;

    // A recording past the upload buffer (10 MB) goes up in parts, streamed from the staged
    // file, and comes back whole.
    let recording: Vec<u8> = (0..11 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    Mock::given(method("GET"))
        .and(path("/opstatics/long.mp3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(recording.clone(), "audio/mpeg"))
        .mount(&storage)
        .await;
    assert_eq!(
        app.webhook(
            "r1",
            &message_with_media("AClong", &[format!("{base}/opstatics/long.mp3")])
        )
        .await,
        StatusCode::OK
    );
    let long = stored_media(&app, "AClong").await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/media/{}", long.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().as_ref() == recording.as_slice());
    app.stop().await;
    db.cleanup().await;
}

/// Media jobs on this backend pass the suite the memory jobs pass.
async fn media_jobs_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::media::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    media_is_copied_served_retried_and_refused,
    media_goes_to_the_configured_object_store,
    media_jobs_pass_the_conformance_suite,
    the_position_migration_orders_earlier_media_by_their_message,
    a_shutdown_leaves_the_media_backlog_pending,
    a_download_past_the_timeout_is_retried_later,
    a_download_that_keeps_failing_gives_up_with_an_alert,
    a_chunked_download_over_the_cap_fails,
    downloads_refuse_plain_http_and_redirects_off_the_allowlist,
    a_stored_file_without_a_served_type_shows_the_merged_declared_one,
    a_delivery_whose_records_the_database_refuses_is_kept_raw,
    downloads_left_half_done_are_swept_at_start,
);

/// A download staged by a process that stopped mid-download is removed when the media worker
/// starts; one staged recently (another replica's, in progress) is left alone.
async fn downloads_left_half_done_are_swept_at_start(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let staging = db.dir.join("blobs").join("tmp");
    std::fs::create_dir_all(&staging).unwrap();
    let (old, recent) = (staging.join("left-by-a-crash"), staging.join("in-progress"));
    for path in [&old, &recent] {
        std::fs::write(path, b"half a photo").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600))
        .unwrap();
    let app = TestApp::spawn_with(&db, |_| {}).await;
    TestApp::eventually("the sweep", || async { (!old.exists()).then_some(()) }).await;
    assert!(
        recent.exists(),
        "a recent staged file is another download's"
    );
    app.stop().await;
    db.cleanup().await;
}

/// A delivery whose records the database refuses (here a media URL of 4,000 characters that do
/// not compress: PostgreSQL cannot index it) is not refused with it: its raw event is stored
/// without its records, acknowledged, marked and alerted; deliveries beside it are recorded
/// whole; a replay leaves it out and goes on. SQLite stores the same URL.
async fn a_delivery_whose_records_the_database_refuses_is_kept_raw(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let mut seed = 0x9e37_79b9_u32;
    let long: String = (0..4000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(seed % 62) as usize],
            )
        })
        .collect();
    let refused = message_with_media("ACtoolong", &[format!("https://files.openphone.co/{long}")]);
    let (ok1, ok2) = (
        message_with_media("ACok1", &[]),
        message_with_media("ACok2", &[]),
    );
    let (first, bad, second) = tokio::join!(
        app.webhook("ok1", &ok1),
        app.webhook("bad", &refused),
        app.webhook("ok2", &ok2),
    );
    assert_eq!(
        (first, bad, second),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    let operator = app.token(Role::Operator).await;
    let (_, events) = app.get("/api/v1/events", &operator).await;
    let parse_errors: Vec<(String, Option<String>)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["event_id"].as_str().unwrap_or_default().to_owned(),
                item["parse_error"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(parse_errors.len(), 3, "{events}");
    use reference_server::reads::Reads as _;
    let held = |id: &'static str| {
        let store = app.store.clone();
        async move { store.holds("message", id).await.unwrap() }
    };
    assert!(held("ACok1").await && held("ACok2").await);
    let alerts = app.store.alerts(true, None, 10).await.unwrap();
    let postgres = matches!(backend, Backend::Postgres);
    if postgres {
        let (_, error) = parse_errors
            .iter()
            .find(|(event, _)| event == "EVACtoolong")
            .unwrap();
        let error = error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not projected: "), "{error}");
        assert!(!held("ACtoolong").await);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, "projection_failed");
        let metrics = app.metrics(&operator).await;
        assert!(metrics.contains("outcome=\"stored_raw_only\""), "{metrics}");
    } else {
        assert!(
            parse_errors.iter().all(|(_, error)| error.is_none()),
            "{parse_errors:?}"
        );
        assert!(held("ACtoolong").await);
        assert!(alerts.is_empty(), "{alerts:?}");
    }
    let report = app.store.replay(None, false, &mut |_| {}).await.unwrap();
    assert_eq!(report.deliveries, 3);
    let refused: Vec<i64> = report.refused.iter().map(|(id, _)| *id).collect();
    assert_eq!(refused.len(), usize::from(postgres), "{:?}", report.refused);
    assert_eq!(report.projected, if postgres { 2 } else { 3 });
    assert!(held("ACok1").await && held("ACok2").await);
    app.stop().await;
    db.cleanup().await;
}

/// A download slower than `MEDIA_TIMEOUT_SECS` is given up as a transient failure, to be
/// tried again later, not waited for.
async fn a_download_past_the_timeout_is_retried_later(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(b"photo".to_vec(), "image/jpeg")
                .set_delay(std::time::Duration::from_secs(4)),
        )
        .mount(&storage)
        .await;
    let base = storage.uri();
    let app = TestApp::spawn_with(&db, |config| {
        fetch_from(config, &base);
        config.media_timeout_secs = 1;
    })
    .await;
    let urls = vec![format!("{base}/opstatics/slow.jpg")];
    assert_eq!(
        app.webhook("slow", &message_with_media("ACslow", &urls))
            .await,
        StatusCode::OK
    );
    let job = TestApp::eventually("the first attempt", || async {
        let jobs = app.store.media_of("ACslow").await.ok()?;
        jobs.into_iter().find(|job| job.last_error.is_some())
    })
    .await;
    assert_eq!(
        (job.status.as_str(), job.attempts),
        ("pending", 1),
        "{job:?}"
    );
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|error| error.starts_with("request failed") && error.contains("timed out")),
        "{job:?}"
    );
    // The reason (which alerts carry) names no URL: its path may be all that guards a file.
    assert!(
        !job.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("/opstatics/"),
        "{job:?}"
    );
    assert_eq!(storage.received_requests().await.unwrap().len(), 1);
    app.stop().await;
    db.cleanup().await;
}

/// A download that keeps failing with a transient error (here 503) is tried
/// `MAX_ATTEMPTS` times, each after its backoff, then given up: failed, counted, alerted.
async fn a_download_that_keeps_failing_gives_up_with_an_alert(backend: Backend) {
    use reference_server::media::MAX_ATTEMPTS;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&storage)
        .await;
    let base = storage.uri();
    // The server's clock runs `offset` ms ahead of real time; the test moves it past backoffs.
    let offset = Arc::new(AtomicI64::new(0));
    let clock_offset = offset.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(clock_offset.load(Ordering::SeqCst))
    });
    let app = TestApp::spawn_with_clock(&db, clock, |config| {
        fetch_from(config, &base);
    })
    .await;
    let urls = vec![format!("{base}/opstatics/busy.jpg")];
    assert_eq!(
        app.webhook("busy", &message_with_media("ACbusy", &urls))
            .await,
        StatusCode::OK
    );
    for attempt in 1..=MAX_ATTEMPTS {
        let job = TestApp::eventually("the next attempt", || async {
            let jobs = app.store.media_of("ACbusy").await.ok()?;
            jobs.into_iter().find(|job| job.attempts == attempt)
        })
        .await;
        let expected = if attempt < MAX_ATTEMPTS {
            "pending"
        } else {
            "failed"
        };
        assert_eq!(job.status, expected, "attempt {attempt}: {job:?}");
        assert_eq!(
            job.last_error.as_deref(),
            Some("HTTP 503 Service Unavailable")
        );
        // Past the longest backoff.
        offset.fetch_add(86_400_000, Ordering::SeqCst);
    }
    // The alert is raised after the job is marked failed.
    let alerts = TestApp::eventually("the alert", || async {
        let alerts = app.store.alerts(true, None, 10).await.ok()?;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(
        alerts
            .iter()
            .map(|alert| (alert.kind.as_str(), alert.count))
            .collect::<Vec<_>>(),
        [("media_download_failed", 1)]
    );
    // Never tried again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        storage.received_requests().await.unwrap().len(),
        usize::try_from(MAX_ATTEMPTS).unwrap()
    );
    // The storage recovers; an operator puts the job back to work, and it is stored.
    storage.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"jpeg".to_vec(), "image/jpeg"))
        .mount(&storage)
        .await;
    let job = app.store.media_of("ACbusy").await.unwrap().remove(0);
    let retry = format!("/api/v1/media/{}/retry", job.id);
    let post = |path: String, token: String| {
        let request = app.client.post(app.url(&path)).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let support = app.token(Role::Support).await;
    let operator = app.token(Role::Operator).await;
    assert_eq!(post(retry.clone(), support).await.0, StatusCode::FORBIDDEN);
    let (status, retried) = post(retry.clone(), operator.clone()).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(
        (retried["status"].as_str(), retried["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    stored_media(&app, "ACbusy").await;
    let (status, body) = post(retry, operator.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = post("/api/v1/media/retry".to_owned(), operator).await;
    assert_eq!(
        (status, body["retried"].as_u64()),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
    app.stop().await;
    db.cleanup().await;
}

/// A download that declares no length (a chunked answer) is cut off at `MEDIA_MAX_BYTES` as
/// it streams in: failed for good, nothing kept.
async fn a_chunked_download_over_the_cap_fails(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // A server that answers every request with 2,500 bytes in five chunks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let mut answer = b"HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\n\
                    transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    .to_vec();
                for _ in 0..5 {
                    answer.extend_from_slice(b"1f4\r\n");
                    answer.extend_from_slice(&[7u8; 500]);
                    answer.extend_from_slice(b"\r\n");
                }
                answer.extend_from_slice(b"0\r\n\r\n");
                let _ = stream.write_all(&answer).await;
            });
        }
    });
    let app = TestApp::spawn_with(&db, |config| {
        fetch_from(config, &format!("http://{address}"));
        config.media_max_bytes = 1000;
    })
    .await;
    let urls = vec![format!("http://{address}/opstatics/big.jpg")];
    assert_eq!(
        app.webhook("big", &message_with_media("ACbig", &urls))
            .await,
        StatusCode::OK
    );
    let job = TestApp::eventually("the failed download", || async {
        let jobs = app.store.media_of("ACbig").await.ok()?;
        jobs.into_iter().find(|job| job.status != "pending")
    })
    .await;
    assert_eq!(job.status, "failed", "{job:?}");
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|error| error.contains("MEDIA_MAX_BYTES")),
        "{job:?}"
    );
    assert!(job.sha256.is_none() && job.size_bytes.is_none(), "{job:?}");
    app.stop().await;
    db.cleanup().await;
}

/// The download guards end to end: plain http to a host not configured for it is refused
/// before any request, and a redirect off the allowlist is not followed; both fail for good.
async fn downloads_refuse_plain_http_and_redirects_off_the_allowlist(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    let base = storage.uri();
    Mock::given(method("GET"))
        .and(path("/opstatics/moved.jpg"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{base}/elsewhere/x.jpg")),
        )
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"photo".to_vec(), "image/jpeg"))
        .mount(&storage)
        .await;
    let app = TestApp::spawn_with(&db, |config| {
        // Plain http only for 127.0.0.1 (the mock), not for `localhost`.
        fetch_from(config, &base);
    })
    .await;
    let port = base.rsplit(':').next().unwrap();
    let urls = vec![
        format!("{base}/opstatics/moved.jpg"),
        format!("http://localhost:{port}/opstatics/plain.jpg"),
    ];
    assert_eq!(
        app.webhook("guards", &message_with_media("ACguard", &urls))
            .await,
        StatusCode::OK
    );
    let jobs = TestApp::eventually("both refused", || async {
        let jobs = app.store.media_of("ACguard").await.ok()?;
        jobs.iter()
            .all(|job| job.status == "failed")
            .then_some(jobs)
    })
    .await;
    let errors: Vec<&str> = jobs
        .iter()
        .map(|job| job.last_error.as_deref().unwrap_or_default())
        .collect();
    assert!(
        errors[0].contains("redirect") && errors[0].contains("MEDIA_ALLOWED_HOSTS"),
        "{errors:?}"
    );
    assert!(errors[1].contains("https only"), "{errors:?}");
    let paths: Vec<String> = storage
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| request.url.path().to_owned())
        .collect();
    assert_eq!(paths, ["/opstatics/moved.jpg"], "nothing else was fetched");
    app.stop().await;
    db.cleanup().await;
}

/// A file served without a content type shows the type the events declared, merged in any
/// order, also after it is stored: not the one declared when the download happened.
async fn a_stored_file_without_a_served_type_shows_the_merged_declared_one(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"untyped".to_vec()))
        .mount(&storage)
        .await;
    let base = storage.uri();
    let app = TestApp::spawn_with(&db, |config| {
        fetch_from(config, &base);
    })
    .await;
    let declaring = |id: &str, event: &str, declared: &str| {
        let mut event_body = message_with_media(id, &[format!("{base}/opstatics/{id}.bin")]);
        event_body["id"] = json!(event);
        event_body["data"]["object"]["media"][0]["type"] = json!(declared);
        event_body
    };
    for (id, first, second) in [
        ("ACtype1", "image/png", "image/jpeg"),
        ("ACtype2", "image/jpeg", "image/png"),
    ] {
        assert_eq!(
            app.webhook(
                &format!("{id}a"),
                &declaring(id, &format!("EV{id}a"), first)
            )
            .await,
            StatusCode::OK
        );
        stored_media(&app, id).await;
        assert_eq!(
            app.webhook(
                &format!("{id}b"),
                &declaring(id, &format!("EV{id}b"), second)
            )
            .await,
            StatusCode::OK
        );
        let job = app.store.media_of(id).await.unwrap().remove(0);
        assert_eq!(
            (job.status.as_str(), job.content_type.as_deref()),
            ("stored", Some("image/jpeg")),
            "{id}"
        );
    }
    // A declared type no header can carry is served as plain bytes, not refused with a 500.
    assert_eq!(
        app.webhook(
            "ACtype3a",
            &declaring("ACtype3", "EVACtype3a", "image/jpeg\nX-Evil: 1")
        )
        .await,
        StatusCode::OK
    );
    let job = stored_media(&app, "ACtype3").await;
    let support = app.token(reference_server::auth::Role::Support).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/media/{}", job.id)))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert!(response.headers().get("x-evil").is_none());
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"untyped");
    // A blob store that fails (here a file that cannot be read: a link to itself) is a 503 to
    // retry, not a 404 saying the file is gone.
    let hash = job.sha256.clone().unwrap();
    let blob = db.dir.join("blobs").join(&hash[..2]).join(&hash);
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(&blob, &blob).unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/media/{}", job.id), &support)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    std::fs::remove_file(&blob).unwrap();
    let (status, _) = app
        .get(&format!("/api/v1/media/{}", job.id), &support)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a file gone is a 404");
    app.stop().await;
    db.cleanup().await;
}

/// A shutdown does not wait for a backlog of downloads: the ones in hand finish, no new ones
/// start, and the rest stay pending for the next start.
async fn a_shutdown_leaves_the_media_backlog_pending(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(b"photo".to_vec(), "image/jpeg")
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .mount(&storage)
        .await;
    let base = storage.uri();
    let app = TestApp::spawn_with(&db, |config| {
        fetch_from(config, &base);
    })
    .await;
    // Twelve rounds of four downloads, 300 ms each: about 3.6 s to download them all.
    let backlog = 48;
    for message in 0..2 {
        let urls: Vec<String> = (0..backlog / 2)
            .map(|n| format!("{base}/opstatics/{message}-{n}.jpg"))
            .collect();
        let id = format!("ACbacklog{message}");
        assert_eq!(
            app.webhook(&id, &message_with_media(&id, &urls)).await,
            StatusCode::OK
        );
    }
    TestApp::eventually("a download under way", || async {
        (!storage.received_requests().await?.is_empty()).then_some(())
    })
    .await;
    app.stop().await;

    let store = db.store().await;
    let stored = store.media_list(Some("stored"), None, 100).await.unwrap();
    let pending = store.media_list(Some("pending"), None, 100).await.unwrap();
    assert!(!stored.is_empty(), "the downloads in hand finished");
    assert_eq!(stored.len() + pending.len(), backlog);
    assert!(
        !pending.is_empty(),
        "the stop did not wait for the backlog: {} stored",
        stored.len()
    );
    assert_eq!(
        storage.received_requests().await.unwrap().len(),
        stored.len(),
        "no download was cut off"
    );
    db.cleanup().await;
}

/// Media stored before migration 0018 (which added each row's position) take their place in
/// their message: a batch on PostgreSQL had numbered them by URL.
async fn the_position_migration_orders_earlier_media_by_their_message(backend: Backend) {
    use sqlx::migrate::Migrator;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let statements = [
        r#"INSERT INTO messages (id, media) VALUES ('ACold', '[{"url":"https://s.example/z.jpg","type":"image/jpeg"},{"url":"https://s.example/m.jpg","type":null},{"url":"https://s.example/a.jpg","type":null}]')"#,
        "INSERT INTO media (owner_kind, owner_id, url) VALUES \
         ('message', 'ACold', 'https://s.example/a.jpg'), \
         ('message', 'ACold', 'https://s.example/m.jpg'), \
         ('message', 'ACold', 'https://s.example/z.jpg'), \
         ('message', 'ACgone', 'https://s.example/b.jpg'), \
         ('recording', 'ACcall', 'https://s.example/r.mp3')",
    ];
    let migrations = |folder: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder)
    };
    // The schema as it was before 0018, with rows written then.
    macro_rules! before_0018 {
        ($pool:expr, $folder:expr) => {{
            let pool = $pool.expect("connect");
            let migrator = Migrator::new(migrations($folder))
                .await
                .expect("migrations");
            migrator.run_to(17, &pool).await.expect("migrate to 0017");
            for statement in statements {
                sqlx::query(statement)
                    .execute(&pool)
                    .await
                    .expect("old rows");
            }
            pool.close().await;
        }};
    }
    match backend {
        Backend::Sqlite => {
            let options =
                <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&db.url)
                    .expect("url")
                    .create_if_missing(true);
            before_0018!(sqlx::SqlitePool::connect_with(options).await, "sqlite");
        }
        Backend::Postgres => before_0018!(sqlx::PgPool::connect(&db.url).await, "postgres"),
    }

    let store = db.store().await;
    let urls = |media: Vec<reference_server::media::MediaRecord>| {
        media.into_iter().map(|m| m.url).collect::<Vec<_>>()
    };
    assert_eq!(
        urls(store.media_of("ACold").await.unwrap()),
        [
            "https://s.example/z.jpg",
            "https://s.example/m.jpg",
            "https://s.example/a.jpg"
        ]
    );
    // Rows without their message, and a call's, keep position 0.
    assert_eq!(
        urls(store.media_of("ACgone").await.unwrap()),
        ["https://s.example/b.jpg"]
    );
    assert_eq!(
        urls(store.media_of("ACcall").await.unwrap()),
        ["https://s.example/r.mp3"]
    );
    db.cleanup().await;
}
