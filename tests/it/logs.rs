//! Secrets stay out of logs (SPEC §10): tokens in paths are redacted in text and JSON
//! logs, and a forged `X-Request-Id` never reaches a log line.

use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, handoff};
use serde_json::json;

use crate::api_process::ApiProcess;

backend_tests!(tokens_and_forged_request_ids_never_reach_the_logs);

async fn tokens_and_forged_request_ids_never_reach_the_logs(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let (_, stored) = Upload::new(&key, "s.txt", "secret bytes").send(&app).await;
    let lease_id = stored["lease_id"].as_str().expect("lease").to_owned();
    let mailbox = Mailbox::create(&app, &key, 1 << 20, &[("X-Max-Message-Bytes", "16")]).await;
    let drop_token = mailbox.drop_path().split('/').nth(3).expect("drop token").to_owned();
    assert!(drop_token.starts_with("drp_"));
    for format in ["text", "json"] {
        let (_, issued) = handoff::issue(&app, &key, &lease_id, json!({"max_claims": 1})).await;
        let token = issued["handoff_token"].as_str().expect("token").to_owned();
        let mut env = app.worker_env();
        env.push(("LEASEHOLD_LOG_LEVEL".into(), "debug,sqlx=warn,sea_orm=warn,hyper=info,h2=info".into()));
        env.push(("LEASEHOLD_LOG_FORMAT".into(), format.into()));
        env.push(("LEASEHOLD_DROP_RATE_PER_IP".into(), "0".into()));
        let server = ApiProcess::spawn(env, &app.state.config.data_dir, &format!("logs-{format}")).await;
        let client = reqwest::Client::new();
        // A claim, a drop that fails (too large), a drop with a bad token, a revoke by token.
        let claim = client.get(server.url(&format!("/api/claim/{token}"))).send().await.expect("claim");
        assert_eq!(claim.status(), 200);
        claim.bytes().await.expect("claim body");
        let drop = client.post(server.url(mailbox.drop_path())).body(vec![0u8; 64]).send().await.expect("drop");
        assert_eq!(drop.status(), 413);
        let bad = format!("/api/mailbox/{drop_token}x/drop");
        assert_eq!(client.post(server.url(&bad)).body("x").send().await.expect("drop").status(), 404);
        let revoke = client.delete(server.url(&format!("/api/handoffs/{token}"))).bearer_auth(&key).send().await;
        assert_eq!(revoke.expect("revoke").status(), 200);
        // A forged request id is replaced; a well-formed one is kept.
        let forged = "x\tINFO account credited amount=1000000";
        let res = client.get(server.url("/healthz")).header("X-Request-Id", forged).send().await.expect("healthz");
        let echoed = res.headers()["x-request-id"].to_str().expect("id").to_owned();
        assert_ne!(echoed, forged);
        assert!(echoed.len() == 26 && echoed.chars().all(|c| c.is_ascii_alphanumeric()), "{echoed}");
        let res = client.get(server.url("/healthz")).header("X-Request-Id", "trace-42.a_b").send().await;
        assert_eq!(res.expect("healthz").headers()["x-request-id"], "trace-42.a_b");
        let too_long = "a".repeat(129);
        let res = client.get(server.url("/healthz")).header("X-Request-Id", &too_long).send().await;
        assert_ne!(res.expect("healthz").headers()["x-request-id"], too_long.as_str());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let log = server.log();
        assert!(log.contains("/api/claim/<redacted>"), "the claim was logged with its path redacted:\n{log}");
        assert!(log.contains("trace-42.a_b"), "a well-formed request id is logged");
        for secret in [token.as_str(), drop_token.as_str(), &drop_token[4..], "account credited"] {
            assert!(!log.contains(secret), "{format} log holds {secret:?}:\n{log}");
        }
    }
}
