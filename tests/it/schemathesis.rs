//! Schemathesis (the pinned CLI that `.ci/run` installs) against a running embedded
//! server: every operation of `GET /api/openapi.json`, with real resources for the path
//! parameters and the right credentials per route, must pass `not_a_server_error`,
//! `status_code_conformance`, `content_type_conformance`, `response_schema_conformance`
//! and `response_headers_conformance` with zero failures.
//!
//! `LEASEHOLD_TEST_SCHEMATHESIS` names the `st` executable; without it the test is skipped
//! (and fails with `LEASEHOLD_TEST_REQUIRE_ALL=1`).

use std::fmt::Write as _;

use leasehold_tests::{ADMIN_TOKEN, Backend, TestApp};
use serde_json::{Value, json};

const METHODS: [&str; 8] = ["get", "head", "post", "put", "patch", "delete", "options", "trace"];

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// Test cases per operation and phase: enough to reach every documented status, small
/// enough for a couple of minutes on two cores.
const MAX_EXAMPLES: &str = "25";

fn executable() -> Option<String> {
    let st = std::env::var("LEASEHOLD_TEST_SCHEMATHESIS").ok().filter(|v| !v.is_empty());
    if st.is_none() {
        let required = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
        assert!(!required, "LEASEHOLD_TEST_REQUIRE_ALL=1 but LEASEHOLD_TEST_SCHEMATHESIS is not set");
        eprintln!("skipped: set LEASEHOLD_TEST_SCHEMATHESIS to the schemathesis `st` executable");
    }
    st
}

/// POSTs with the key and headers; returns the JSON body (asserting a 2xx).
async fn post(app: &TestApp, key: &str, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = app.client.post(app.url(path)).bearer_auth(key);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req = match body {
        Value::Null => req,
        Value::String(s) => req.body(s),
        other => req.json(&other),
    };
    let res = req.send().await.expect("request");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}")).to_owned()
}

async fn lease(app: &TestApp, key: &str) -> String {
    let headers = [("X-Duration-Seconds", "3600"), ("X-Size-Bytes", "5"), ("X-File-Name", "a.txt")];
    text(&post(app, key, "/api/store", &headers, json!("hello")).await, "lease_id")
}

async fn mailbox(app: &TestApp, key: &str) -> Value {
    post(app, key, "/api/mailbox", &[("X-Duration-Seconds", "3600"), ("X-Capacity-Bytes", "100000")], Value::Null).await
}

async fn checkpoint(app: &TestApp, key: &str, workflow: &str) {
    let headers = [("X-Duration-Seconds", "3600"), ("X-Workflow-Id", workflow)];
    post(app, key, "/api/checkpoint", &headers, json!("{\"v\":1}")).await;
}

/// The `schemathesis.toml`: the API key on every request, the admin token on `/admin/*`,
/// and for each operation with path parameters a live resource (a separate one for each
/// operation that deletes, so the others keep theirs).
async fn config(app: &TestApp, account: &str, key: &str) -> String {
    let kept = lease(app, key).await;
    let handoff = post(app, key, &format!("/api/handoff/{kept}"), &[], json!({})).await;
    let handoff_gone = text(&post(app, key, &format!("/api/handoff/{kept}"), &[], json!({})).await, "handoff_id");
    let mbox = mailbox(app, key).await;
    let drop = text(&mbox, "drop_url").rsplit('/').nth(1).expect("drop token").to_owned();
    let mut messages = Vec::new();
    for _ in 0..2 {
        let res = app.client.post(app.url(&format!("/api/mailbox/{drop}/drop"))).body("hi").send().await.expect("drop");
        messages.push(text(&res.json().await.expect("json"), "message_id"));
    }
    checkpoint(app, key, "st-kept").await;
    checkpoint(app, key, "st-deleted").await;
    let spare_key = text(&post(app, key, "/v1/account/api-keys", &[], Value::Null).await, "prefix");
    let mbox_id = text(&mbox, "lease_id");
    let operations: Vec<(&str, String)> = vec![
        (
            "GET /api/leases/{lease_id}\", \"GET /api/leases/{lease_id}/deliveries\", \"GET /api/download/{lease_id}\", \"HEAD /api/download/{lease_id}\", \"POST /api/handoff/{lease_id}",
            format!("lease_id = \"{kept}\""),
        ),
        ("DELETE /api/store/{lease_id}", format!("lease_id = \"{}\"", lease(app, key).await)),
        ("DELETE /api/leases/{lease_id}", format!("lease_id = \"{}\"", lease(app, key).await)),
        ("GET /api/handoffs/{id}", format!("id = \"{}\"", text(&handoff, "handoff_id"))),
        ("DELETE /api/handoffs/{id}", format!("id = \"{handoff_gone}\"")),
        (
            "GET /api/claim/{token}\", \"HEAD /api/claim/{token}",
            format!("token = \"{}\"", text(&handoff, "handoff_token")),
        ),
        ("GET /api/mailbox/{id}/messages\", \"GET /api/mailbox/{id}/events", format!("id = \"{mbox_id}\"")),
        (
            "GET /api/mailbox/{id}/messages/{message_id}",
            format!("id = \"{mbox_id}\", message_id = \"{}\"", messages[0]),
        ),
        (
            "DELETE /api/mailbox/{id}/messages/{message_id}",
            format!("id = \"{mbox_id}\", message_id = \"{}\"", messages[1]),
        ),
        ("POST /api/mailbox/{id}/drop", format!("id = \"{drop}\"")),
        ("DELETE /api/mailbox/{id}", format!("id = \"{}\"", text(&mailbox(app, key).await, "lease_id"))),
        (
            "GET /api/checkpoint/{workflow_id}\", \"PUT /api/checkpoint/{workflow_id}\", \"GET /api/checkpoint/{workflow_id}/versions\", \"GET /api/checkpoint/{workflow_id}/versions/{n}",
            "workflow_id = \"st-kept\", n = \"1\"".to_owned(),
        ),
        ("DELETE /api/checkpoint/{workflow_id}", "workflow_id = \"st-deleted\"".to_owned()),
        ("DELETE /v1/account/api-keys/{prefix}", format!("prefix = \"{spare_key}\"")),
    ];
    let mut toml = format!("headers = {{ Authorization = \"Bearer {key}\" }}\nrequest-timeout = 10.0\n");
    let _ = write!(
        toml,
        "\n[[operations]]\ninclude-path-regex = \"^/admin/\"\nheaders = {{ Authorization = \"Bearer {ADMIN_TOKEN}\" }}\nparameters = {{ account_id = \"{account}\" }}\n"
    );
    for (names, parameters) in operations {
        let _ = write!(toml, "\n[[operations]]\ninclude-name = [\"{names}\"]\nparameters = {{ {parameters} }}\n");
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_failure_on_any_operation() {
    let Some(st) = executable() else { return };
    let backend = Backend::embedded().expect("embedded");
    // Long polls are bounded so fuzzed `wait` values do not stretch the run.
    let app = TestApp::spawn_with(&backend, |c| c.limits.long_poll_max_seconds = 2).await;
    let (account, key) = app.create_account(1_000_000_000_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&app, &account, &key).await).expect("write config");
    let output = tokio::process::Command::new(&st)
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        .args(["--checks", CHECKS, "--phases", "examples,coverage,fuzzing", "--max-examples", MAX_EXAMPLES])
        .args(["--workers", "2", "--generation-database", "none", "--no-color"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {st}: {e}"));
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found failures (report above): {}", output.status);
    let doc: Value =
        app.client.get(app.url("/api/openapi.json")).send().await.expect("doc").json().await.expect("json");
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|i| i.as_object().into_iter().flat_map(|o| o.keys()))
        .filter(|m| METHODS.contains(&m.as_str()))
        .count();
    // Schemathesis leaves out the operation it loaded the document from (`GET /api/openapi.json`).
    let tested = operations - 1;
    assert!(report.contains(&format!("Tested: {tested}")), "not all {tested} operations were tested");
}
