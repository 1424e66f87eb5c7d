//! Wallet owners (SPEC §4.3): Sign-In with Ethereum, `rs_wallet_` sessions, and what a
//! session may do — every owner action on the wallet's own leases, nothing on accounts.

use leasehold_core::evm::{TestKey, U256};
use leasehold_tests::facilitator::{self, Payer, TestFacilitator};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    a_signed_challenge_opens_a_session_once,
    forged_reused_and_malleable_signatures_are_refused,
    a_session_acts_on_its_wallets_leases_only,
    a_session_pays_with_its_own_wallet,
    day_old_challenges_are_reaped
);

async fn spawn(backend: &Backend) -> (TestApp, TestFacilitator) {
    let f = TestFacilitator::start().await;
    let x = facilitator::config(&f);
    let app = TestApp::spawn_with(backend, move |c| c.x402 = Some(x)).await;
    (app, f)
}

async fn challenge(app: &TestApp, wallet: &str) -> Value {
    let res = app.client.get(app.url(&format!("/v1/auth/challenge?wallet={wallet}"))).send().await.expect("challenge");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

async fn verify(app: &TestApp, message: &str, signature: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/v1/auth/verify"))
        .json(&json!({ "message": message, "signature": signature }))
        .send()
        .await
        .expect("verify");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// Signs in `key`; returns the session token.
async fn sign_in(app: &TestApp, key: &TestKey) -> String {
    let wallet = leasehold_core::evm::checksum(&key.address());
    let c = challenge(app, &wallet).await;
    let message = c["message"].as_str().expect("message");
    let (status, body) = verify(app, message, &key.sign_personal(message.as_bytes())).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// The same signature with `v` as 0/1 instead of 27/28.
fn low_v(signature: &str) -> String {
    let v = u8::from_str_radix(&signature[130..132], 16).expect("v");
    format!("{}{:02x}", &signature[..130], v - 27)
}

/// The high-s twin of a signature: s' = n − s with v flipped (valid for ecrecover, but
/// malleable; EIP-2 forbids it).
fn high_s(signature: &str) -> String {
    let n = U256::from_str_radix("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16).expect("n");
    let s = U256::from_str_radix(&signature[66..130], 16).expect("s");
    let v = u8::from_str_radix(&signature[130..132], 16).expect("v");
    format!("{}{:064x}{:02x}", &signature[..66], n - s, if v == 27 { 28 } else { 27 })
}

async fn a_signed_challenge_opens_a_session_once(backend: Backend) {
    let (app, _f) = spawn(&backend).await;
    let key = TestKey::from_seed(21);
    let wallet = leasehold_core::evm::checksum(&key.address());
    let c = challenge(&app, &wallet.to_lowercase()).await;
    let message = c["message"].as_str().expect("message");
    let host = app.base.trim_start_matches("http://");
    assert!(message.starts_with(&format!("{host} wants you to sign in with your Ethereum account:\n{wallet}\n")));
    assert!(message.contains(&format!("\nURI: {}\n", app.base)));
    assert!(message.contains("\nVersion: 1\n") && message.contains("\nChain ID: 84532\n"), "{message}");
    let nonce = c["nonce"].as_str().expect("nonce");
    assert!(nonce.len() >= 16 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(message.contains(&format!("\nNonce: {nonce}\n")) && message.contains("\nExpiration Time: "));

    let signature = key.sign_personal(message.as_bytes());
    let (status, body) = verify(&app, message, &low_v(&signature)).await;
    assert_eq!(status, 200, "v = 0/1 is accepted: {body}");
    assert!(body["token"].as_str().expect("token").starts_with("rs_wallet_"));
    assert_eq!(body["wallet"], wallet);
    // Single use: the same signed message again is refused.
    assert_eq!(verify(&app, message, &signature).await.0, 401);
    // A bad address is a 400 that names the parameter.
    let res = app.client.get(app.url("/v1/auth/challenge?wallet=0x1234")).send().await.expect("r");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["parameter"], "wallet");
}

async fn forged_reused_and_malleable_signatures_are_refused(backend: Backend) {
    let (app, _f) = spawn(&backend).await;
    let key = TestKey::from_seed(22);
    let wallet = leasehold_core::evm::checksum(&key.address());
    let c = challenge(&app, &wallet).await;
    let message = c["message"].as_str().expect("message");
    let signature = key.sign_personal(message.as_bytes());
    // Another wallet's signature over this wallet's message.
    let other = TestKey::from_seed(23).sign_personal(message.as_bytes());
    assert_eq!(verify(&app, message, &other).await.0, 401);
    // The high-s twin recovers the same signer but is malleable: refused.
    assert_eq!(verify(&app, message, &high_s(&signature)).await.0, 401);
    // An altered message (a later expiry), signed properly: not what was issued.
    let altered = message.replacen("Sign in to Leasehold.", "Sign in to Leasehold!", 1);
    assert_eq!(verify(&app, &altered, &key.sign_personal(altered.as_bytes())).await.0, 401);
    // A message this server never issued.
    let invented = message.replace(c["nonce"].as_str().expect("nonce"), "AAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(verify(&app, &invented, &key.sign_personal(invented.as_bytes())).await.0, 401);
    // None of that used the challenge up.
    assert_eq!(verify(&app, message, &signature).await.0, 200);
    // A challenge answered after its 5 minutes is refused.
    let late = challenge(&app, &wallet).await;
    let late = late["message"].as_str().expect("message");
    app.advance(std::time::Duration::from_secs(301));
    assert_eq!(verify(&app, late, &key.sign_personal(late.as_bytes())).await.0, 401);
}

async fn a_session_acts_on_its_wallets_leases_only(backend: Backend) {
    let (app, _f) = spawn(&backend).await;
    let key = TestKey::from_seed(24);
    let payer = Payer { key: TestKey::from_seed(24) };
    let session = sign_in(&app, &key).await;
    // Pay a Storage lease with this wallet (the session does not pay by itself).
    let asked = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&session)
        .header("X-Duration-Seconds", "3600")
        .header("X-Size-Bytes", "5")
        .header("X-File-Name", "w.txt")
        .body("hello")
        .send()
        .await
        .expect("store");
    assert_eq!(asked.status(), 402);
    let required = asked.headers()["payment-required"].to_str().expect("ascii").to_owned();
    let created = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&session)
        .header("X-Duration-Seconds", "3600")
        .header("X-Size-Bytes", "5")
        .header("X-File-Name", "w.txt")
        .header("PAYMENT-SIGNATURE", payer.pay_v2(&required))
        .body("hello")
        .send()
        .await
        .expect("store");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["lease_id"].as_str().expect("id");

    let (status, listed) = app.get_json(&session, "/api/leases").await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["owner"], json!({ "kind": "wallet", "id": payer.address() }));
    let download =
        app.client.get(app.url(&format!("/api/download/{id}"))).bearer_auth(&session).send().await.expect("d");
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.expect("body").as_ref(), b"hello");
    let (status, _) = app.get_json(&session, "/v1/account").await;
    assert_eq!(status, 401, "account routes are not a wallet's");
    // Another wallet, and an account, see nothing of it.
    let stranger = sign_in(&app, &TestKey::from_seed(25)).await;
    assert_eq!(app.get_json(&stranger, &format!("/api/leases/{id}")).await.0, 404);
    let (_, api_key) = app.create_account(1_000_000).await;
    assert_eq!(app.get_json(&api_key, &format!("/api/leases/{id}")).await.0, 404);
    // The owner hands it off and deletes it; then signs out.
    let handoff = app
        .client
        .post(app.url(&format!("/api/handoff/{id}")))
        .bearer_auth(&session)
        .json(&json!({}))
        .send()
        .await
        .expect("handoff");
    assert_eq!(handoff.status(), 201);
    let deleted =
        app.client.delete(app.url(&format!("/api/leases/{id}"))).bearer_auth(&session).send().await.expect("d");
    assert_eq!(deleted.status(), 200);
    let out = app.client.delete(app.url("/v1/auth/session")).bearer_auth(&session).send().await.expect("out");
    assert_eq!(out.status(), 200);
    assert_eq!(app.get_json(&session, "/api/leases").await.0, 401, "a revoked session opens nothing");
}

async fn a_session_pays_with_its_own_wallet(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let session = sign_in(&app, &TestKey::from_seed(26)).await;
    let checkpoint = |payment: Option<String>| {
        let mut req = app
            .client
            .post(app.url("/api/checkpoint"))
            .bearer_auth(&session)
            .header("X-Duration-Seconds", "3600")
            .header("X-Workflow-Id", "wf")
            .header("Content-Type", "application/json")
            .body(r#"{"step":1}"#);
        if let Some(p) = payment {
            req = req.header("PAYMENT-SIGNATURE", p);
        }
        req.send()
    };
    let asked = checkpoint(None).await.expect("checkpoint");
    assert_eq!(asked.status(), 402);
    let required = asked.headers()["payment-required"].to_str().expect("ascii").to_owned();
    let res = checkpoint(Some(Payer::new(27).pay_v2(&required))).await.expect("checkpoint");
    assert_eq!(res.status(), 402);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["reason"], "payer_mismatch");
    assert_eq!(checkpoint(Some(Payer::new(26).pay_v2(&required))).await.expect("cp").status(), 201);
    // A wallet's workflow ids are its own: an account may use the same one.
    let (_, api_key) = app.create_account(1_000_000).await;
    let res = app
        .client
        .post(app.url("/api/checkpoint"))
        .bearer_auth(&api_key)
        .header("X-Duration-Seconds", "3600")
        .header("X-Workflow-Id", "wf")
        .body("{}")
        .send()
        .await
        .expect("cp");
    assert_eq!(res.status(), 201);
    assert_eq!(f.settlements().len(), 1);
    let (status, body) = app.get_json(&session, "/api/checkpoint/wf").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "step": 1 }));
}

async fn day_old_challenges_are_reaped(backend: Backend) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let (app, _f) = spawn(&backend).await;
    challenge(&app, &leasehold_core::evm::checksum(&TestKey::from_seed(28).address())).await;
    let count = || leasehold_entities::auth_challenge::Entity::find().count(&app.state.db);
    leasehold_worker::jobs::reap::reap(&app.worker_context()).await.expect("reap");
    assert_eq!(count().await.expect("count"), 1, "a fresh challenge stays");
    app.advance(std::time::Duration::from_secs(25 * 3600));
    leasehold_worker::jobs::reap::reap(&app.worker_context()).await.expect("reap");
    assert_eq!(count().await.expect("count"), 0);
}
