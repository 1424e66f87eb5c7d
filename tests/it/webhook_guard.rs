//! Webhook receivers and secrets: refused addresses at creation and at delivery, and
//! secrets sealed at rest and shown once (split from `webhooks`).

use leasehold_tests::mailbox::{Mailbox, create_raw};
use leasehold_tests::receiver::Receiver;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, checkpoint, test_webhooks};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

use crate::webhooks::deliveries;

backend_tests!(
    private_and_malformed_urls_are_refused_at_creation,
    delivery_rechecks_the_address_it_connects_to,
    secrets_are_sealed_at_rest_and_shown_once,
);

async fn private_and_malformed_urls_are_refused_at_creation(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let long = format!("https://93.184.216.34/{}", "a".repeat(3000));
    let refused = [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://192.168.1.10:8080/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        // Every non-global entry of the IANA special-purpose registries, and IPv4 inside
        // translation prefixes.
        "http://192.0.2.1/hook",
        "http://198.51.100.7/hook",
        "http://203.0.113.9/hook",
        "http://192.88.99.1/hook",
        "http://[2001:db8::1]/hook",
        "http://[100::1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[64:ff9b:1::7f00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://localhost:9/hook",
        "file:///etc/passwd",
        "ftp://93.184.216.34/x",
        long.as_str(),
    ];
    let before = app.balance(&key).await;
    for url in refused {
        let (status, body) = create_raw(&app, &key, 1024, 3600, &[("X-Webhook-Url", url)]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("webhook_url_forbidden")), "{url}: {body}");
        let mut upload = Upload::new(&key, "x.bin", &b"x"[..]).with("X-Webhook-Url", url);
        upload.duration = 3600;
        let (status, body) = upload.send(&app).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("webhook_url_forbidden")), "store {url}: {body}");
        let (status, body) = checkpoint::create(&app, &key, "wf-ssrf", "{}", &[("X-Webhook-Url", url)]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("webhook_url_forbidden")), "checkpoint {url}: {body}");
    }
    assert_eq!(app.balance(&key).await, before, "nothing was charged");
    assert!(app.blob_keys().await.is_empty(), "nothing was stored");
    let (status, body) = create_raw(&app, &key, 1024, 3600, &[("X-Webhook-Url", "https://93.184.216.34:8443/h")]).await;
    assert_eq!(status, 201, "a public address is accepted: {body}");

    // The operator's switches.
    let open = TestApp::spawn_with(&backend, |c| c.webhook.allow_private = true).await;
    let (_, key) = open.create_account(1_000_000).await;
    let (status, body) = create_raw(&open, &key, 1024, 3600, &[("X-Webhook-Url", "http://127.0.0.1:9/h")]).await;
    assert_eq!(status, 201, "allow-private: {body}");
    let listed = TestApp::spawn_with(&backend, |c| {
        c.webhook.allow_cidrs = vec!["10.0.0.0/8".parse().expect("cidr"), "192.0.2.0/24".parse().expect("cidr")]
    })
    .await;
    let (_, key) = listed.create_account(1_000_000).await;
    for url in ["http://10.1.2.3/h", "http://192.0.2.1/h"] {
        let (status, body) = create_raw(&listed, &key, 1024, 3600, &[("X-Webhook-Url", url)]).await;
        assert_eq!(status, 201, "allow-listed network {url}: {body}");
    }
    let (status, body) = create_raw(&listed, &key, 1024, 3600, &[("X-Webhook-Url", "http://127.0.0.1/h")]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("webhook_url_forbidden")), "outside the list: {body}");
    let (status, body) =
        create_raw(&listed, &key, 1024, 3600, &[("X-Webhook-Url", "http://10.1.2.3/h"), ("X-Webhook-Secret", "a b")])
            .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_header")), "{body}");
}

async fn delivery_rechecks_the_address_it_connects_to(backend: Backend) {
    // The API allows private receivers, the worker (another pod's settings) does not: the
    // name "localhost" passed the check at creation and is refused at connect time.
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(&backend, |c| {
        test_webhooks(c);
        c.worker.embedded = false;
    })
    .await;
    let (_, key) = app.create_account(1_000_000).await;
    let port = receiver.base.rsplit(':').next().expect("port");
    let nat64 = format!("http://[64:ff9b:1::7f00:1]:{port}/hook");
    for url in [format!("http://localhost:{port}/hook"), receiver.url(), nat64] {
        let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &url)]).await;
        mailbox.drop_into(&app, "text/plain", "x").await;
        let event_id = deliveries(&app, &key, &mailbox.lease_id).await[0]["event_id"].as_str().expect("id").to_owned();
        let mut ctx = app.worker_context();
        let mut strict = (*ctx.config).clone();
        strict.webhook.allow_private = false;
        ctx.webhooks = leasehold_worker::delivery::Sender::new(&strict.webhook).expect("sender");
        ctx.config = std::sync::Arc::new(strict);
        let (guard, logs) = leasehold_tests::log_capture::capture();
        let outcome = leasehold_worker::jobs::deliver::deliver(&ctx, &event_id).await.expect("attempt");
        drop(guard);
        assert_eq!(outcome, leasehold_worker::jobs::deliver::Outcome::Retrying, "{url}");
        let line = logs.text();
        assert!(
            line.contains("refused by the SSRF guard") && line.contains(&format!("lease.id={}", mailbox.lease_id)),
            "the refusal is logged with the lease id: {line}"
        );
        let e = deliveries(&app, &key, &mailbox.lease_id).await[0].clone();
        assert_eq!((e["state"].as_str(), e["attempts"].as_i64()), (Some("pending"), Some(1)), "{e}");
        assert!(e["last_error"].as_str().is_some_and(|m| m.contains("SSRF guard")), "{url}: {e}");
        assert_eq!(e["last_status_code"], Value::Null);
    }
    assert!(receiver.received().is_empty(), "nothing reached the private receiver");
}

async fn secrets_are_sealed_at_rest_and_shown_once(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.webhook.allow_private = true).await;
    let (_, key) = app.create_account(1_000_000).await;
    let given = "my-own-webhook-secret-4711";
    let mine =
        Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", "http://127.0.0.1:9/h"), ("X-Webhook-Secret", given)])
            .await;
    let (status, minted) = create_raw(
        &app,
        &key,
        4096,
        3600,
        &[("X-Webhook-Url", "http://127.0.0.1:9/h"), ("Idempotency-Key", "create-with-minted-secret")],
    )
    .await;
    assert_eq!(status, 201);
    let secret = minted["webhook_secret"].as_str().expect("minted").to_owned();
    let lease_id = minted["lease_id"].as_str().expect("id").to_owned();
    for path in
        [format!("/api/leases/{lease_id}"), "/api/leases".to_owned(), format!("/api/leases/{lease_id}/deliveries")]
    {
        let (_, body) = app.get_json(&key, &path).await;
        assert!(!body.to_string().contains(&secret), "{path} does not show the secret again");
    }
    mine.drop_into(&app, "text/plain", "x").await;
    let dump = database_dump(&app).await;
    assert!(dump.len() > 1000, "the dump has content");
    for s in [given, secret.as_str(), &secret["whsec_".len()..]] {
        assert!(!dump.contains(s), "the database holds {s} in plaintext");
    }
}

/// Everything the database holds, as text: the SQLite files' bytes (with the WAL), or
/// every row of every table on PostgreSQL.
async fn database_dump(app: &TestApp) -> String {
    let db = &app.state.db;
    if db.get_database_backend() == DbBackend::Sqlite {
        let dir = &app.state.config.data_dir;
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).expect("data dir").flatten() {
            if entry.file_name().to_string_lossy().contains(".db") {
                all.extend(std::fs::read(entry.path()).unwrap_or_default());
            }
        }
        return String::from_utf8_lossy(&all).into_owned();
    }
    let tables = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables \
             WHERE table_schema IN ('public', 'apalis') AND table_type = 'BASE TABLE'",
        ))
        .await
        .expect("tables");
    let mut out = String::new();
    for row in tables {
        let table: String = row.try_get("", "t").expect("name");
        let (schema, name) = table.split_once('.').expect("qualified");
        let sql = format!("SELECT COALESCE(string_agg(r::text, E'\\n'), '') AS dump FROM \"{schema}\".\"{name}\" r");
        let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("dump");
        for r in rows {
            out.push_str(&r.try_get::<String>("", "dump").unwrap_or_default());
            out.push('\n');
        }
    }
    out
}
