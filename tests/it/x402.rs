//! x402 payments (SPEC §4.2) against a chain-less facilitator that verifies the EIP-712
//! signatures for real: the `402` answer in both versions, v1 and v2 payments, a payment
//! settled at most once (replays, races across two instances), settlement refused,
//! facilitator down, and mismatched payments refused before the facilitator is asked.

use leasehold_tests::facilitator::{self, Mode, Payer, TestFacilitator, decode};
use leasehold_tests::{Backend, TestApp, backend_tests};
use reqwest::Response;
use serde_json::Value;

backend_tests!(
    a_request_without_credentials_is_asked_to_pay_in_both_versions,
    v2_and_v1_payments_create_leases_owned_by_the_payer,
    a_payment_is_settled_at_most_once,
    one_payment_racing_on_two_instances_makes_one_lease,
    a_refused_settlement_keeps_nothing_and_frees_the_payment,
    an_unreachable_facilitator_is_503_and_nothing_is_kept,
    mismatched_payments_are_refused_before_the_facilitator,
    expired_wrong_chain_and_misplaced_payments_store_and_settle_nothing
);

const BODY: &[u8] = b"paid bytes";

async fn spawn(backend: &Backend) -> (TestApp, TestFacilitator) {
    let f = TestFacilitator::start().await;
    let x = facilitator::config(&f);
    let app = TestApp::spawn_with(backend, move |c| c.x402 = Some(x)).await;
    (app, f)
}

/// `POST /api/store` of [`BODY`] with extra headers.
async fn store(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    let mut req = app
        .client
        .post(app.url("/api/store"))
        .header("X-Duration-Seconds", "3600")
        .header("X-Size-Bytes", BODY.len().to_string())
        .header("X-File-Name", "paid.txt")
        .body(BODY);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("store")
}

/// The `402` of an unpaid store: its body and `PAYMENT-REQUIRED` header.
async fn asked(app: &TestApp) -> (Value, String) {
    let res = store(app, &[]).await;
    assert_eq!(res.status(), 402);
    let header = res.headers()["payment-required"].to_str().expect("ascii").to_owned();
    (res.json().await.expect("json"), header)
}

fn header(res: &Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn a_request_without_credentials_is_asked_to_pay_in_both_versions(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let (body, required) = asked(&app).await;
    assert_eq!(body["code"], "payment_required", "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["x402Version"], 1);
    let req = &body["accepts"][0];
    assert_eq!(req["scheme"], "exact");
    assert_eq!(req["network"], "base-sepolia");
    assert_eq!(req["maxAmountRequired"], "29", "the quote of 10 bytes for an hour");
    assert_eq!(req["payTo"], facilitator::PAY_TO);
    assert_eq!(req["resource"], app.url("/api/store"));
    assert_eq!(req["extra"]["name"], "USDC");
    assert_eq!(body["required"]["amount_usdc"], "0.000029");
    assert_eq!(body["required"]["amount_micros"], "29");
    assert_eq!(body["required"]["wallet_address"], facilitator::PAY_TO);
    let v2 = decode(&required);
    assert_eq!(v2["x402Version"], 2);
    assert_eq!(v2["accepts"][0]["network"], "eip155:84532");
    assert_eq!(v2["accepts"][0]["amount"], "29");
    assert_eq!(v2["resource"]["url"], app.url("/api/store"));
    // Invalid headers get their own 400 first: nobody pays for a request that cannot succeed.
    let res = app.client.post(app.url("/api/store")).header("X-Size-Bytes", "10").body(BODY).send().await.expect("r");
    assert_eq!(res.status(), 400);
    // Mailbox and checkpoint ask too; handoff and owner routes do not take payments.
    let res = app
        .client
        .post(app.url("/api/mailbox"))
        .header("X-Duration-Seconds", "3600")
        .header("X-Capacity-Bytes", "1048576")
        .send()
        .await
        .expect("mailbox");
    assert_eq!(res.status(), 402);
    assert_eq!(app.client.get(app.url("/api/leases")).send().await.expect("leases").status(), 401);
    // Discovery.
    let well_known: Value =
        app.client.get(app.url("/.well-known/x402.json")).send().await.expect("r").json().await.expect("json");
    assert_eq!(well_known["payment"]["protocol"], "x402");
    assert_eq!(well_known["payment"]["versions"], serde_json::json!([1, 2]));
    assert_eq!(well_known["walletAddress"], facilitator::PAY_TO);
    assert_eq!(well_known["facilitator_url"], f.url);
    let priced: Vec<&str> =
        well_known["endpoints"].as_array().expect("endpoints").iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(priced.contains(&"/api/store") && priced.contains(&"/api/checkpoint") && !priced.contains(&"/api/leases"));
    let pricing: Value = app.client.get(app.url("/api/pricing")).send().await.expect("r").json().await.expect("json");
    assert_eq!(pricing["payment"]["x402"], true);
    assert_eq!(pricing["payment"]["wallet_address"], facilitator::PAY_TO);
    assert_eq!(f.verifies(), 0);
}

async fn v2_and_v1_payments_create_leases_owned_by_the_payer(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(7);
    let (body, required) = asked(&app).await;

    let res = store(&app, &[("PAYMENT-SIGNATURE", &wallet.pay_v2(&required))]).await;
    assert_eq!(res.status(), 201);
    let receipt = decode(&header(&res, "payment-response"));
    assert!(header(&res, "x-payment-response").is_empty(), "a v2 payment gets the v2 receipt");
    let created: Value = res.json().await.expect("json");
    assert_eq!(created["from_wallet"], wallet.address());
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["network"], "eip155:84532");
    assert_eq!(receipt["payer"], wallet.address());
    assert_eq!(receipt["transaction"], created["tx_hash"]);

    let res = store(&app, &[("X-PAYMENT", &wallet.pay_v1(&body))]).await;
    assert_eq!(res.status(), 201);
    let receipt = decode(&header(&res, "x-payment-response"));
    assert_eq!(receipt["network"], "base-sepolia");
    let second: Value = res.json().await.expect("json");
    assert_ne!(second["lease_id"], created["lease_id"]);

    let settled = f.settlements();
    assert_eq!(settled.len(), 2);
    assert!(settled.iter().all(|s| s.value == 29 && s.payer == wallet.address()));
    // The leases belong to the wallet: the lease row says so, and nobody's balance moved.
    let id = created["lease_id"].as_str().expect("id");
    let lease = leasehold_core::leases::find_owned(
        &app.state.db,
        &leasehold_core::leases::Owner { kind: leasehold_core::leases::OwnerKind::Wallet, id: wallet.address() },
        id,
    )
    .await
    .expect("db");
    assert!(lease.is_some(), "the payer wallet owns the lease");
    let payment = leasehold_core::payments::of_lease(&app.state.db, id).await.expect("db").expect("payment row");
    assert_eq!(payment.amount_micros, 29);
    assert_eq!(Some(payment.tx_hash.clone().expect("tx")), created["tx_hash"].as_str().map(str::to_owned));
}

async fn a_payment_is_settled_at_most_once(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(8);
    let (_, required) = asked(&app).await;
    let payment = wallet.pay_v2(&required);
    let first = store(&app, &[("PAYMENT-SIGNATURE", &payment), ("Idempotency-Key", "pay-1")]).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    // Again with the same key: the first response, replayed.
    let replay = store(&app, &[("PAYMENT-SIGNATURE", &payment), ("Idempotency-Key", "pay-1")]).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(header(&replay, "idempotent-replayed"), "true");
    let replayed: Value = replay.json().await.expect("json");
    assert_eq!(replayed["lease_id"], first["lease_id"]);
    assert_eq!(replayed["tx_hash"], first["tx_hash"]);
    // Again without the key, or with another: nonce_used.
    for headers in [
        vec![("PAYMENT-SIGNATURE", payment.as_str())],
        vec![("PAYMENT-SIGNATURE", payment.as_str()), ("Idempotency-Key", "pay-2")],
    ] {
        let again = store(&app, &headers).await;
        assert_eq!(again.status(), 402);
        let body: Value = again.json().await.expect("json");
        assert_eq!(body["code"], "payment_invalid", "{body}");
        assert_eq!(body["reason"], "nonce_used");
    }
    assert_eq!(f.settlements().len(), 1);
}

async fn one_payment_racing_on_two_instances_makes_one_lease(backend: Backend) {
    let (a, f) = spawn(&backend).await;
    let b = a.second_instance().await;
    let wallet = Payer::new(9);
    let (_, required) = asked(&a).await;
    for _ in 0..3 {
        let payment = wallet.pay_v2(&required);
        let headers = [("PAYMENT-SIGNATURE", payment.as_str())];
        let (x, y) = tokio::join!(store(&a, &headers), store(&b, &headers));
        let mut statuses = [x.status().as_u16(), y.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 402], "one lease per payment");
    }
    assert_eq!(f.settlements().len(), 3);
}

async fn a_refused_settlement_keeps_nothing_and_frees_the_payment(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(10);
    let (_, required) = asked(&app).await;
    let payment = wallet.pay_v2(&required);
    f.set_mode(Mode::RefuseSettle("insufficient_funds".into()));
    let res = store(&app, &[("PAYMENT-SIGNATURE", &payment)]).await;
    assert_eq!(res.status(), 402);
    assert!(!header(&res, "payment-required").is_empty(), "the offer again");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "payment_invalid");
    assert_eq!(body["reason"], "insufficient_funds");
    assert_eq!(app.state.blobs.list("leases/").await.expect("list").len(), 0, "the bytes are gone");
    // Nothing was settled, so the same payment may be sent again.
    f.set_mode(Mode::Honest);
    let res = store(&app, &[("PAYMENT-SIGNATURE", &payment)]).await;
    assert_eq!(res.status(), 201);
    assert_eq!(f.settlements().len(), 1);
}

async fn an_unreachable_facilitator_is_503_and_nothing_is_kept(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(11);
    let (_, required) = asked(&app).await;
    let payment = wallet.pay_v2(&required);
    f.set_mode(Mode::Down);
    let res = store(&app, &[("PAYMENT-SIGNATURE", &payment)]).await;
    assert_eq!(res.status(), 503);
    assert!(!header(&res, "retry-after").is_empty());
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "unavailable");
    assert_eq!(app.state.blobs.list("leases/").await.expect("list").len(), 0);
    f.set_mode(Mode::Honest);
    assert_eq!(store(&app, &[("PAYMENT-SIGNATURE", &payment)]).await.status(), 201, "the payment was not used up");
}

async fn mismatched_payments_are_refused_before_the_facilitator(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(12);
    let (body, required) = asked(&app).await;
    let reason = |res: Value| res["reason"].as_str().unwrap_or_default().to_owned();
    // v2 `accepted` must be what was offered.
    let mut offer = decode(&required);
    offer["accepts"][0]["amount"] = "1".into();
    let altered = facilitator::b64(&offer);
    let res = store(&app, &[("PAYMENT-SIGNATURE", &wallet.pay_v2(&altered))]).await;
    assert_eq!(res.status(), 402);
    assert_eq!(reason(res.json().await.expect("json")), "accepted_requirements_mismatch");
    // v1: less than the price.
    let mut cheap = body.clone();
    cheap["accepts"][0]["maxAmountRequired"] = "28".into();
    let res = store(&app, &[("X-PAYMENT", &wallet.pay_v1(&cheap))]).await;
    assert_eq!(reason(res.json().await.expect("json")), "invalid_exact_evm_payload_authorization_value");
    // v1: paid to someone else.
    let mut elsewhere = body.clone();
    elsewhere["accepts"][0]["payTo"] = "0x0000000000000000000000000000000000000001".into();
    let res = store(&app, &[("X-PAYMENT", &wallet.pay_v1(&elsewhere))]).await;
    assert_eq!(reason(res.json().await.expect("json")), "invalid_exact_evm_payload_recipient_mismatch");
    // Garbage.
    let res = store(&app, &[("X-PAYMENT", "not base64 at all")]).await;
    assert_eq!(res.status(), 402);
    assert_eq!(reason(res.json().await.expect("json")), "invalid_payload");
    assert_eq!(f.verifies(), 0, "none of these reached the facilitator");
    // A signature by another key over the same authorization: the facilitator refuses it.
    let forged = {
        let mut p = decode(&wallet.pay_v2(&required));
        let other = Payer::new(13).pay_v2(&required);
        p["payload"]["signature"] = decode(&other)["payload"]["signature"].clone();
        facilitator::b64(&p)
    };
    let res = store(&app, &[("PAYMENT-SIGNATURE", &forged)]).await;
    assert_eq!(res.status(), 402);
    assert_eq!(reason(res.json().await.expect("json")), "invalid_exact_evm_payload_signature");
    assert!(f.settlements().is_empty());
}

async fn expired_wrong_chain_and_misplaced_payments_store_and_settle_nothing(backend: Backend) {
    let (app, f) = spawn(&backend).await;
    let wallet = Payer::new(14);
    let (body, required) = asked(&app).await;
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("now");
    let reason = |res: Value| res["reason"].as_str().unwrap_or_default().to_owned();
    // Expired, and not yet valid: the facilitator's verification refuses them.
    for (window, why) in [
        ((now - 7200, now - 3600), "invalid_exact_evm_payload_authorization_valid_before"),
        ((now + 3600, now + 7200), "invalid_exact_evm_payload_authorization_valid_after"),
    ] {
        let res = store(&app, &[("PAYMENT-SIGNATURE", &wallet.pay_v2_window(&required, window))]).await;
        assert_eq!(res.status(), 402);
        assert_eq!(reason(res.json().await.expect("json")), why);
    }
    // v1 on another network.
    let mut mainnet = body["accepts"][0].clone();
    mainnet["network"] = "base".into();
    let res = store(&app, &[("X-PAYMENT", &wallet.pay_v1_for(&mainnet))]).await;
    assert_eq!(res.status(), 402);
    assert_eq!(reason(res.json().await.expect("json")), "invalid_network");
    // v1 payments do not name the asset: one signed for another token fails the
    // facilitator's signature check over this asset's EIP-712 domain.
    let mut token = body["accepts"][0].clone();
    token["asset"] = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into();
    let res = store(&app, &[("X-PAYMENT", &wallet.pay_v1_for(&token))]).await;
    assert_eq!(res.status(), 402);
    assert_eq!(reason(res.json().await.expect("json")), "invalid_exact_evm_payload_signature");
    // A payment on an owner-only route is no credential.
    let good = wallet.pay_v2(&required);
    let res = app.client.get(app.url("/api/leases")).header("PAYMENT-SIGNATURE", &good).send().await.expect("r");
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .post(app.url("/api/handoff/lse_01KBQ0000000000000000000000"))
        .header("PAYMENT-SIGNATURE", &good)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("r");
    assert_eq!(res.status(), 401);
    assert!(f.settlements().is_empty(), "nothing settled");
    assert_eq!(app.state.blobs.list("leases/").await.expect("list").len(), 0, "nothing stored");
    // The good payment was never used by any of that.
    assert_eq!(store(&app, &[("PAYMENT-SIGNATURE", &good)]).await.status(), 201);
}
