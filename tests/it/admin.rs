use leasehold_tests::{ADMIN_TOKEN, Backend, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    admin_creates_credits_and_shows_accounts,
    admin_routes_answer_404_without_a_configured_token,
    admin_routes_refuse_a_wrong_token,
    cli_account_commands_work_on_the_database,
);

async fn admin_creates_credits_and_shows_accounts(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (id, key) = app.create_account(100).await;
    let res = app
        .client
        .post(app.url(&format!("/admin/accounts/{id}/credits")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "amount_micros": 250, "memo": "top-up" }))
        .send()
        .await
        .expect("credit");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["balance_micros"], "350");
    let res =
        app.client.get(app.url(&format!("/admin/accounts/{id}"))).bearer_auth(ADMIN_TOKEN).send().await.expect("show");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["balance_micros"], "350");
    let (_, ledger) = app.get_json(&key, "/v1/account/ledger").await;
    assert_eq!(ledger["items"][0]["memo"], "top-up");
    assert_eq!(ledger["items"][0]["kind"], "credit");

    for bad in
        [json!({ "amount_micros": 0 }), json!({ "amount_micros": -5 }), json!({ "amount_micros": "x" }), json!({})]
    {
        let res = app
            .client
            .post(app.url(&format!("/admin/accounts/{id}/credits")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&bad)
            .send()
            .await
            .expect("credit");
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app
        .client
        .post(app.url("/admin/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "invalid_json");
    let unknown = format!("/admin/accounts/acct_{}", ulid::Ulid::generate());
    let res = app.client.get(app.url(&unknown)).bearer_auth(ADMIN_TOKEN).send().await.expect("show");
    assert_eq!(res.status(), 404);
    assert_eq!(app.balance(&key).await, 350);
}

async fn admin_routes_answer_404_without_a_configured_token(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.admin_token = None).await;
    let res = app
        .client
        .post(app.url("/admin/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "x", "credit_micros": 1 }))
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "not_found");
}

async fn admin_routes_refuse_a_wrong_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let res = app
        .client
        .post(app.url("/admin/accounts"))
        .bearer_auth("wrong")
        .json(&json!({ "name": "x", "credit_micros": 1 }))
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), 401);
}

async fn cli_account_commands_work_on_the_database(backend: Backend) {
    use leasehold_server::cli::{AccountCommand, Cli, Command};
    let app = TestApp::spawn(&backend).await;
    let (id, key) = app.create_account(10).await;
    let config = (*app.state.config).clone();
    let credit = Cli {
        command: Some(Command::Accounts(AccountCommand::Credit {
            account_id: id.clone(),
            amount_micros: 90,
            memo: Some("cli".into()),
        })),
    };
    leasehold_server::cli::run(credit, config.clone()).await.expect("credit");
    assert_eq!(app.balance(&key).await, 100);
    let create =
        Cli { command: Some(Command::Accounts(AccountCommand::Create { name: "cli".into(), credit_micros: 7 })) };
    leasehold_server::cli::run(create, config.clone()).await.expect("create");
    assert_eq!(leasehold_core::accounts::count(&app.state.db).await.expect("count"), 2);
    let bad = Cli {
        command: Some(Command::Accounts(AccountCommand::Credit { account_id: id, amount_micros: -1, memo: None })),
    };
    assert!(leasehold_server::cli::run(bad, config).await.is_err());
}
