use std::time::Duration;

use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use serde_json::Value;
use sha2::{Digest, Sha256};

backend_tests!(
    upload_then_download_returns_the_same_bytes_and_headers,
    head_returns_headers_without_a_body,
    ranges_are_served_as_206_and_outside_ranges_as_416,
    large_streamed_uploads_round_trip,
    path_components_are_stripped_from_file_names,
    content_type_defaults_to_octet_stream,
    leases_are_listed_filtered_and_shown,
    another_owners_lease_answers_like_an_unknown_one,
    expired_lease_answers_410_from_its_expiry_instant,
    deleted_lease_answers_410_and_its_bytes_are_gone,
);

async fn upload_then_download_returns_the_same_bytes_and_headers(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (account_id, key) = app.create_account(1_000).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let res = Upload::new(&key, "report 2026.pdf", data.clone())
        .with("Content-Type", "application/pdf")
        .request(&app)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let lease_id = res.headers()["x-lease-id"].to_str().expect("id").to_owned();
    assert!(res.headers().contains_key("x-lease-expires-at"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["lease_id"], lease_id.as_str());
    assert_eq!(body["variant"], "storage");
    assert_eq!(body["file_name"], "report 2026.pdf");
    assert_eq!(body["content_type"], "application/pdf");
    assert_eq!(body["size_bytes"], 100_000);
    assert_eq!(body["sha256"], hex::encode(Sha256::digest(&data)));
    assert_eq!(body["duration_seconds"], 3600);
    assert_eq!(body["cost_micros"], "29");
    assert_eq!(body["download_url"], app.url(&format!("/api/download/{lease_id}")));
    assert!(lease_id.starts_with("lse_") && lease_id.len() == 30);

    let res =
        app.client.get(body["download_url"].as_str().expect("url")).bearer_auth(&key).send().await.expect("download");
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["content-length"], "100000");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf"
    );
    assert_eq!(h["etag"].to_str().expect("etag"), format!("\"{}\"", body["sha256"].as_str().expect("sha")));
    assert_eq!(h["x-lease-id"], lease_id.as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), data.as_slice());

    let (status, lease) = app.get_json(&key, &format!("/api/leases/{lease_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(lease["lease"]["owner"]["kind"], "account");
    assert_eq!(lease["lease"]["owner"]["id"], account_id.as_str());
    assert_eq!(lease["lease"]["state"], "active");
    assert_eq!(app.blob_keys().await, vec![format!("leases/{lease_id}/object")]);
}

async fn head_returns_headers_without_a_body(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (_, body) = Upload::new(&key, "h.bin", vec![1u8; 4096]).send(&app).await;
    let res =
        app.client.head(body["download_url"].as_str().expect("url")).bearer_auth(&key).send().await.expect("head");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "4096");
    assert!(res.headers().contains_key("content-disposition"));
    assert!(res.bytes().await.expect("bytes").is_empty());
}

async fn ranges_are_served_as_206_and_outside_ranges_as_416(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let (_, body) = Upload::new(&key, "r.bin", data.clone()).send(&app).await;
    let url = body["download_url"].as_str().expect("url").to_owned();
    for (range, start, end) in
        [("bytes=0-9", 0usize, 9usize), ("bytes=990-", 990, 999), ("bytes=-5", 995, 999), ("bytes=500-5000", 500, 999)]
    {
        let res = app.client.get(&url).bearer_auth(&key).header("Range", range).send().await.expect("get");
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(res.headers()["content-range"].to_str().expect("cr"), format!("bytes {start}-{end}/1000"));
        assert_eq!(res.headers()["content-length"].to_str().expect("cl"), (end - start + 1).to_string());
        assert_eq!(res.bytes().await.expect("bytes").as_ref(), &data[start..=end], "{range}");
    }
    let res = app.client.get(&url).bearer_auth(&key).header("Range", "bytes=1000-").send().await.expect("get");
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], "bytes */1000");
    let res = app.client.get(&url).bearer_auth(&key).header("Range", "bytes=0-1,5-6").send().await.expect("get");
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("bytes").len(), 1000);
}

async fn large_streamed_uploads_round_trip(backend: Backend) {
    // 20 MiB sent chunked (no Content-Length): several S3 multipart parts.
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let size = 20 * 1024 * 1024;
    let chunk = bytes::Bytes::from((0..65_536u32).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>());
    let chunks = size / chunk.len();
    let stream = futures_util::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let res = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&key)
        .header("X-File-Name", "big.bin")
        .header("X-Size-Bytes", size.to_string())
        .header("X-Duration-Seconds", "600")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    let res =
        app.client.get(body["download_url"].as_str().expect("url")).bearer_auth(&key).send().await.expect("download");
    let got = res.bytes().await.expect("bytes");
    assert_eq!(got.len(), size);
    assert_eq!(hex::encode(Sha256::digest(&got)), body["sha256"].as_str().expect("sha"));
}

async fn path_components_are_stripped_from_file_names(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    for (sent, kept) in
        [("dir/sub/notes.txt", "notes.txt"), ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\a.txt", "a.txt")]
    {
        let (status, body) = Upload::new(&key, sent, "x").send(&app).await;
        assert_eq!(status, 201, "{sent}: {body}");
        assert_eq!(body["file_name"], kept, "{sent}");
    }
    let res = Upload::new(&key, "résumé.txt", "x").request(&app).send().await.expect("upload");
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["file_name"], "résumé.txt");
    let res =
        app.client.get(body["download_url"].as_str().expect("url")).bearer_auth(&key).send().await.expect("download");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    );
}

async fn content_type_defaults_to_octet_stream(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let res = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&key)
        .header("X-File-Name", "a")
        .header("X-Size-Bytes", "3")
        .header("X-Duration-Seconds", "60")
        .body("abc")
        .send()
        .await
        .expect("upload");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["content_type"], "application/octet-stream");
}

async fn leases_are_listed_filtered_and_shown(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let name = format!("{i}.txt");
        let (_, body) = Upload::new(&key, &name, "x").send(&app).await;
        ids.push(body["lease_id"].as_str().expect("id").to_owned());
    }
    let del =
        app.client.delete(app.url(&format!("/api/leases/{}", ids[0]))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(del.status(), 200);
    let (_, all) = app.get_json(&key, "/api/leases").await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["lease_id"], ids[4].as_str(), "newest first");
    assert_eq!(items[0]["file_name"], "4.txt");
    let (_, active) = app.get_json(&key, "/api/leases?state=active&variant=storage").await;
    assert_eq!(active["items"].as_array().expect("items").len(), 4);
    let (_, deleted) = app.get_json(&key, "/api/leases?state=deleted").await;
    assert_eq!(deleted["items"][0]["lease_id"], ids[0].as_str());
    let (_, mailboxes) = app.get_json(&key, "/api/leases?variant=mailbox").await;
    assert!(mailboxes["items"].as_array().expect("items").is_empty());
    let (_, page) = app.get_json(&key, "/api/leases?limit=2").await;
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, next) = app.get_json(&key, &format!("/api/leases?limit=2&cursor={cursor}")).await;
    assert_eq!(next["items"][0]["lease_id"], ids[2].as_str());
    for bad in ["/api/leases?state=zombie", "/api/leases?variant=x", "/api/leases?limit=0", "/api/leases?limit=abc"] {
        let (status, body) = app.get_json(&key, bad).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{bad}");
    }
}

async fn another_owners_lease_answers_like_an_unknown_one(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, alice) = app.create_account(1_000).await;
    let (_, bob) = app.create_account(1_000).await;
    let (_, body) = Upload::new(&alice, "a.txt", "secret").send(&app).await;
    let id = body["lease_id"].as_str().expect("id");
    let unknown = format!("lse_{}", ulid::Ulid::generate());
    for path in [format!("/api/download/{id}"), format!("/api/leases/{id}")] {
        let theirs = app.client.get(app.url(&path)).bearer_auth(&bob).send().await.expect("get");
        let (s1, b1) = (theirs.status(), theirs.text().await.expect("text"));
        let none = app.client.get(app.url(&path.replace(id, &unknown))).bearer_auth(&bob).send().await.expect("get");
        let (s2, b2) = (none.status(), none.text().await.expect("text"));
        assert_eq!((s1.as_u16(), &b1), (s2.as_u16(), &b2), "{path}");
        assert_eq!(s1, 404);
        assert!(b1.contains("\"not_found\""));
    }
    for (method, path) in
        [(reqwest::Method::DELETE, format!("/api/leases/{id}")), (reqwest::Method::DELETE, format!("/api/store/{id}"))]
    {
        let res = app.client.request(method, app.url(&path)).bearer_auth(&bob).send().await.expect("delete");
        assert_eq!(res.status(), 404);
    }
    let res = app.client.get(app.url("/api/download/not-an-id")).bearer_auth(&bob).send().await.expect("get");
    assert_eq!(res.status(), 404);
    let res = app.client.get(app.url(&format!("/api/download/{id}"))).bearer_auth(&alice).send().await.expect("get");
    assert_eq!(res.text().await.expect("text"), "secret");
}

async fn expired_lease_answers_410_from_its_expiry_instant(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let mut upload = Upload::new(&key, "e.txt", "soon gone");
    upload.duration = 60;
    let (_, body) = upload.send(&app).await;
    let id = body["lease_id"].as_str().expect("id").to_owned();
    let expires_at = body["expires_at"].as_str().expect("expires").to_owned();
    app.state.clock.advance(Duration::from_millis(59_000));
    assert_eq!(
        app.client.get(app.url(&format!("/api/download/{id}"))).bearer_auth(&key).send().await.expect("get").status(),
        200
    );
    app.state.clock.advance(Duration::from_millis(1_000));
    for path in [format!("/api/download/{id}"), format!("/api/leases/{id}")] {
        let res = app.client.get(app.url(&path)).bearer_auth(&key).send().await.expect("get");
        assert_eq!(res.status(), 410, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["code"], "lease_expired");
        assert_eq!(body["expires_at"], expires_at.as_str());
    }
    let res = app.client.delete(app.url(&format!("/api/leases/{id}"))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(res.status(), 410);
    let (_, list) = app.get_json(&key, "/api/leases?state=expired").await;
    assert_eq!(list["items"][0]["lease_id"], id.as_str());
    assert_eq!(list["items"][0]["state"], "expired");
}

async fn deleted_lease_answers_410_and_its_bytes_are_gone(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (_, body) = Upload::new(&key, "d.txt", "delete me").send(&app).await;
    let id = body["lease_id"].as_str().expect("id").to_owned();
    assert_eq!(app.blob_keys().await.len(), 1);
    let _worker = if backend.is_distributed() { Some(app.start_worker().await) } else { None };
    let res = app.client.delete(app.url(&format!("/api/store/{id}"))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-lease-id"], id.as_str());
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        (body["status"].as_str(), body["lease_id"].as_str(), body["state"].as_str()),
        (Some("ok"), Some(&*id), Some("deleted"))
    );
    let gone = eventually(Duration::from_secs(10), || async { app.blob_keys().await.is_empty().then_some(()) }).await;
    assert!(gone.is_some(), "the worker removes a deleted lease's bytes");
    for path in [format!("/api/download/{id}"), format!("/api/leases/{id}")] {
        let res = app.client.get(app.url(&path)).bearer_auth(&key).send().await.expect("get");
        assert_eq!(res.status(), 410);
        assert_eq!(res.json::<Value>().await.expect("json")["code"], "lease_deleted");
    }
    let again = app.client.delete(app.url(&format!("/api/store/{id}"))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(again.status(), 410);
    assert_eq!(app.balance(&key).await, 1_000 - 29, "no refund, no second charge");
}
