//! The binary's operational commands, run as a user would.

use std::process::Command;

use reference_server::auth::Role;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

fn run(db: &TestDb, args: &[&str]) -> (bool, String, String) {
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

backend_tests!(token_commands_create_list_and_revoke);
