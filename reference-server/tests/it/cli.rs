//! The binary's operational commands, run as a user would.

use std::process::Command;

use reference_server::auth::{Role, TokenStore};

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

/// Runs the binary with `args` on `db`: whether it succeeded, its output and its errors.
pub(crate) fn run(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn token_commands_create_list_and_revoke(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (ok, token, stderr) = run(
        &db,
        &["token", "create", "--role", "operator", "--name", "crm"],
    );
    assert!(ok, "{stderr}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("rs_"), "{token}");
    assert!(stderr.contains("shown once"), "{stderr}");
    let store = db.store().await;
    let (id, role) = store.authenticate(&token).await.unwrap().unwrap();
    assert_eq!(role, Role::Operator);

    let (ok, list, _) = run(&db, &["token", "list"]);
    assert!(ok);
    assert!(
        list.contains(&id) && list.contains("operator") && list.contains("crm"),
        "{list}"
    );
    assert!(!list.contains(&token), "the secret is never listed");

    let (ok, out, stderr) = run(&db, &["token", "revoke", &id]);
    assert!(ok, "{stderr}");
    assert!(out.contains("revoked"), "{out}");
    assert!(store.authenticate(&token).await.unwrap().is_none());
    let (ok, _, stderr) = run(&db, &["token", "revoke", &id]);
    assert!(!ok, "revoking twice fails");
    assert!(stderr.contains("not found"), "{stderr}");

    let (ok, _, stderr) = run(&db, &["token", "create", "--role", "root"]);
    assert!(!ok);
    assert!(
        stderr.contains("admin") && stderr.contains("support"),
        "{stderr}"
    );
    store.close().await;
    db.cleanup().await;
}

/// `reference-server export`: a JSON Lines file of the resolved threads, once; a dry run
/// writes nothing; no destination, an unknown provider or a missing key is a clear error.
async fn export_command_writes_resolved_threads_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = time::macros::datetime!(2026-11-30 15:00 UTC);
    crate::helpers::resolved_thread(&store, "PN1|+14155550100", "AC1", "Open on Sunday?", at).await;
    let dir = db.dir.join("exports");
    let dir_arg = dir.display().to_string();
    let (ok, out, err) = run(&db, &["export", "--to", &dir_arg, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"file_threads\": 1") && out.contains("\"dry_run\": true"),
        "{out}"
    );
    assert!(
        !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(),
        "a dry run writes nothing"
    );
    let (ok, out, err) = run(&db, &["export", "--to", &dir_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("\"file_threads\": 1"), "{out}");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
    let (ok, out, _) = run(&db, &["export", "--to", &dir_arg]);
    assert!(
        ok && out.contains("\"file_threads\": 0"),
        "exported once: {out}"
    );
    let (ok, _, err) = run(&db, &["export"]);
    assert!(!ok && err.contains("--to DIR"), "{err}");
    let (ok, _, err) = run(&db, &["export", "--llm", "clippy"]);
    assert!(!ok && err.contains("LLM_MODEL"), "{err}");
    let (ok, _, err) = run(&db, &["export", "--llm", "anthropic", "--llm-model", "m"]);
    assert!(!ok && err.contains("ANTHROPIC_API_KEY"), "{err}");
    db.cleanup().await;
}

/// Ctrl-C during an export to the model: the batch in hand finishes and is kept, the run
/// stops before the next one, says so and exits non-zero; the next run sends the rest.
async fn an_interrupted_export_stops_between_batches(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = time::macros::datetime!(2026-11-30 15:00 UTC);
    // Two resolved threads, each too long to share a batch of 500 tokens with the other.
    for n in 0..2 {
        crate::helpers::resolved_thread(
            &store,
            &format!("PN1|+1415555010{n}"),
            &format!("AC{n}"),
            &"Can I book a bay for Sunday? ".repeat(60),
            at,
        )
        .await;
    }
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(std::time::Duration::from_secs(5))
                .set_body_json(serde_json::json!({
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                    "content": [{"type": "text", "text": "{\"insights\": []}"}],
                    "stop_reason": "end_turn", "usage": {"input_tokens": 100, "output_tokens": 5}})),
        )
        .mount(&model)
        .await;
    let export = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reference-server"));
        command
            .args(["export", "--llm", "anthropic", "--llm-model", "claude-test"])
            .env("DATABASE_URL", &db.url)
            .env("ANTHROPIC_API_KEY", "sk-ant-test")
            .env("LLM_BASE_URL", model.uri())
            .env("LLM_BATCH_TOKENS", "500")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let child = export().spawn().unwrap();
    // Once the first batch is at the model (answering in 5 s, time enough for the signal),
    // interrupt the command.
    crate::helpers::TestApp::eventually("the first batch at the model", || {
        let model = &model;
        async move {
            (!model
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty())
            .then_some(())
        }
    })
    .await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let (out, err) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert!(!output.status.success(), "{out}{err}");
    assert!(out.contains("\"stopped\": true"), "{out}{err}");
    assert!(err.contains("stopped before the end"), "{err}");
    assert_eq!(model.received_requests().await.unwrap().len(), 1);
    // The next run sends the other thread only.
    let output = export().output().unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{out}");
    assert!(out.contains("\"stopped\": false"), "{out}");
    assert_eq!(model.received_requests().await.unwrap().len(), 2);
    db.cleanup().await;
}

/// The settings go before or after a command's name: `--database-url` before `token create`
/// is the database the token goes in, not one left unused (with the token written to the
/// default SQLite file instead).
async fn settings_go_before_or_after_the_command(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .args(args)
            .env_remove("DATABASE_URL")
            // Where the default SQLite file would go, had the flag been left unused.
            .env("DATA_DIR", db.dir.join("default"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{args:?}: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    };
    let before = run(&[
        "--database-url",
        &db.url,
        "token",
        "create",
        "--role",
        "admin",
    ]);
    let between = run(&[
        "token",
        "--database-url",
        &db.url,
        "create",
        "--role",
        "support",
    ]);
    let after = run(&[
        "token",
        "create",
        "--role",
        "operator",
        "--database-url",
        &db.url,
    ]);
    let store = db.store().await;
    for (token, role) in [
        (before, Role::Admin),
        (between, Role::Support),
        (after, Role::Operator),
    ] {
        let (_, stored) = store
            .authenticate(token.trim())
            .await
            .unwrap()
            .expect("the token is in the database named");
        assert_eq!(stored, role);
    }
    assert!(!db.dir.join("default").exists(), "no default database made");
    let listed = run(&["--database-url", &db.url, "token", "list"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    db.cleanup().await;
}

backend_tests!(
    settings_go_before_or_after_the_command,
    token_commands_create_list_and_revoke,
    export_command_writes_resolved_threads_once,
    an_interrupted_export_stops_between_batches,
);

/// A database that cannot be opened is named by its variable at start, its password hidden,
/// each cause said once.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_at_start() {
    let run = |url: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .args(["token", "list"])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    let stderr = run("sqlite:/nonexistent-directory/openphone.db");
    assert!(
        stderr.starts_with(
            "error: DATABASE_URL: cannot open the database at sqlite:/nonexistent-directory/openphone.db"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("unable to open database file"), "{stderr}");
    assert_eq!(
        stderr.matches("database backend error").count(),
        1,
        "{stderr}"
    );
    if let Ok(server) = std::env::var("DATABASE_URL")
        && server.starts_with("postgres")
    {
        // A database that does not exist, on the test server, with a password to hide.
        let (scheme, rest) = server.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        let host = host.split_once('/').map_or(host, |(host, _)| host);
        let stderr = run(&format!(
            "{scheme}://postgres:hunter2@{host}/rs_missing_database"
        ));
        assert!(
            stderr.contains("DATABASE_URL: cannot open the database at")
                && stderr.contains("postgres:***@")
                && stderr.contains("rs_missing_database\" does not exist"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// A malformed setting stops the server at start with an error naming the variable, and
/// never printing its value.
#[tokio::test]
async fn a_malformed_setting_stops_the_start_naming_it() {
    let dir = std::env::temp_dir().join(format!(
        "reference-server-badconfig-{}",
        uuid::Uuid::new_v4().simple()
    ));
    for (variable, value, named) in [
        (
            "OPENPHONE_WEBHOOK_SECRETS",
            "whsec_%%%secret%%%",
            "OPENPHONE_WEBHOOK_SECRETS",
        ),
        ("LISTEN_ADDR", "not-an-address", "LISTEN_ADDR"),
        ("THREAD_IDLE_MINUTES", "0", "THREAD_IDLE_MINUTES"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .env_remove("DATABASE_URL")
            .env("DATA_DIR", &dir)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env(variable, value)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!output.status.success(), "{variable}: {stderr}");
        assert!(stderr.contains(named), "{variable}: {stderr}");
        if variable == "OPENPHONE_WEBHOOK_SECRETS" {
            assert!(!stderr.contains("%%%secret%%%"), "{stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
