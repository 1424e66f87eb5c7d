//! `GET /api/openapi.json` describes exactly the routed methods and paths; `/llms.txt` and
//! `/api/pricing`'s `endpoints` come from the same document.

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;
use tower::ServiceExt;

backend_tests!(
    every_documented_operation_is_routed_and_no_routed_method_is_undocumented,
    every_operation_lists_its_error_statuses_with_the_shared_envelope,
    llms_txt_and_pricing_list_every_documented_operation
);

const METHODS: [&str; 8] = ["get", "head", "post", "put", "patch", "delete", "options", "trace"];

async fn document(app: &TestApp) -> Value {
    let res = app.client.get(app.url("/api/openapi.json")).send().await.expect("req");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    doc
}

/// (method, path template) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Answers every matched route with its template, without running the handler; unrouted
/// requests still get the router's 404 and 405.
async fn probe(request: axum::extract::Request, _: axum::middleware::Next) -> axum::response::Response {
    let matched = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    (StatusCode::IM_A_TEAPOT, [("x-matched-path", matched)]).into_response()
}

async fn call(router: &axum::Router, method: &str, path: &str) -> (StatusCode, String) {
    let uri: String = path.replace('{', "x").replace('}', "");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let res =
        router.clone().oneshot(Request::builder().method(method).uri(uri).body(Body::empty()).expect("req")).await;
    let res = res.expect("infallible");
    let matched = res.headers().get("x-matched-path").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (res.status(), matched)
}

async fn every_documented_operation_is_routed_and_no_routed_method_is_undocumented(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let doc = document(&app).await;
    let documented = operations(&doc);
    assert!(documented.len() >= 40, "{} operations", documented.len());
    // The probe names the template a path matched (any method); the real router, called
    // without credentials, tells a routed method (its handler refuses) from an unrouted
    // one (405, before any handler runs).
    let probe_router =
        leasehold_api::routes::all().route_layer(axum::middleware::from_fn(probe)).with_state(app.state.clone());
    let router = leasehold_api::routes::all().with_state(app.state.clone());
    for (method, path) in &documented {
        let (_, matched) = call(&probe_router, method, path).await;
        assert_eq!(&matched, path, "{method} {path} is documented but its path is not routed");
        let (status, _) = call(&router, method, path).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
    }
    // The reverse: on every routed path, a method the document does not list is not
    // routed (HEAD is implied by GET, as axum serves it).
    let paths: std::collections::BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let has = |m: &str| documented.iter().any(|(dm, dp)| dm == m && dp == path);
        for method in METHODS.map(str::to_uppercase) {
            if has(&method) || (method == "HEAD" && has("GET")) {
                continue;
            }
            let (status, _) = call(&router, &method, path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is routed but not documented");
        }
    }
}

async fn every_operation_lists_its_error_statuses_with_the_shared_envelope(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let doc = document(&app).await;
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["status", "error", "code"]));
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in ["unauthorized", "not_found", "insufficient_balance", "idempotency_key_reused", "internal"] {
        assert!(codes.as_array().expect("codes").iter().any(|c| c == code), "{code} missing from ErrorCode");
    }
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no success status");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/Error", "{method} {path} {status}");
                assert!(
                    response["description"].as_str().is_some_and(|d| d.contains('`')),
                    "{method} {path} {status}: no codes"
                );
            }
        }
        if op["x-auth"] == "owner" || op["x-auth"] == "admin" {
            assert!(responses.contains_key("401"), "{method} {path}: authenticated without 401");
        }
    }
    let store = &doc["paths"]["/api/store"]["post"]["parameters"];
    let names: Vec<&str> = store.as_array().expect("params").iter().filter_map(|p| p["name"].as_str()).collect();
    for header in ["X-Size-Bytes", "X-Duration-Seconds", "Idempotency-Key"] {
        assert!(names.contains(&header), "POST /api/store does not document {header}");
    }
}

async fn llms_txt_and_pricing_list_every_documented_operation(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let doc = document(&app).await;
    let documented = operations(&doc);
    let res = app.client.get(app.url("/llms.txt")).send().await.expect("req");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = res.text().await.expect("text");
    let pricing: Value = app.client.get(app.url("/api/pricing")).send().await.expect("req").json().await.expect("json");
    let endpoints = pricing["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), documented.len());
    for (method, path) in &documented {
        assert!(text.contains(&format!("## {method} {path}\n")), "llms.txt lacks {method} {path}");
        assert!(endpoints.iter().any(|e| e["method"] == method.as_str() && e["path"] == path.as_str()));
    }
    assert!(text.contains("## POST /api/store\n"));
    assert!(text.contains("header X-Size-Bytes (required)"));
}
