//! Slow clients starve nobody (SPEC §10): with 1,000 stalled uploads and 1,000 stalled
//! unauthenticated drops open at once, a normal upload, download and claim each still
//! complete within 2 s, and the server's thread count stays under a fixed bound.

use std::time::{Duration, Instant};

use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::api_process::ApiProcess;
use crate::faults::Tally;

backend_tests!(stalled_uploads_and_drops_starve_no_one);

/// Stalled transfers of each kind.
const STALLED: usize = 1000;
/// Threads the server may have, whatever the number of open transfers: the bounded
/// blocking pool, the async workers, SQLite's connection threads and the process's own.
const THREAD_BOUND: usize = leasehold_core::runtime::MAX_BLOCKING_THREADS + 48;

async fn stall(addr: &str, head: String) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&[1u8; 1024]).await.expect("first KiB");
    socket
}

async fn timed<T>(tally: &mut Tally, what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(2), f).await;
    let took = started.elapsed();
    tally.check(out.is_ok(), || format!("{what} took over 2 s with stalled clients open"));
    out.unwrap_or_else(|_| panic!("{what} took {took:?} with stalled clients open"))
}

async fn stalled_uploads_and_drops_starve_no_one(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(100_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 64 << 20, &[("X-Max-Message-Bytes", "2097152")]).await;
    let mut env = app.worker_env();
    env.extend([
        ("LEASEHOLD_LOG_LEVEL".to_owned(), "error".to_owned()),
        ("LEASEHOLD_DROP_RATE_PER_IP".to_owned(), "0".to_owned()),
        ("LEASEHOLD_DROP_RATE_PER_MAILBOX".to_owned(), "0".to_owned()),
        ("LEASEHOLD_BODY_TIMEOUT_SECONDS".to_owned(), "120".to_owned()),
    ]);
    let server = ApiProcess::spawn(env, &app.state.config.data_dir, "stalled-api").await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let idle_threads = server.threads();
    let stalled = open_stalled(&addr, &key, &mailbox).await;
    // Let the server take every stalled body in.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    let body = vec![7u8; 1 << 20];
    let mut tally = Tally::new("2,000 stalled uploads and drops");
    let created: Value = timed(&mut tally, "1 MiB upload", async {
        let res = client
            .post(server.url("/api/store"))
            .bearer_auth(&key)
            .header("X-File-Name", "normal.bin")
            .header("X-Size-Bytes", body.len())
            .header("X-Duration-Seconds", "3600")
            .body(body.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 201);
        res.json().await.expect("json")
    })
    .await;
    let lease_id = created["lease_id"].as_str().expect("lease id").to_owned();
    timed(&mut tally, "1 MiB download", async {
        let res = client.get(server.url(&format!("/api/download/{lease_id}"))).bearer_auth(&key).send().await;
        assert_eq!(res.expect("download").bytes().await.expect("bytes").len(), body.len());
    })
    .await;
    timed(&mut tally, "1 MiB claim", async {
        let issued: Value = client
            .post(server.url(&format!("/api/handoff/{lease_id}")))
            .bearer_auth(&key)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("issue")
            .json()
            .await
            .expect("json");
        let token = issued["handoff_token"].as_str().expect("token");
        let res = client.get(server.url(&format!("/api/claim/{token}"))).send().await.expect("claim");
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.expect("bytes").len(), body.len());
    })
    .await;
    let threads = server.threads();
    tally.check(threads <= THREAD_BOUND, || {
        format!(
            "{threads} threads with {} stalled transfers ({idle_threads} idle, bound {THREAD_BOUND})",
            stalled.len()
        )
    });
    tally.finish();
    drop(stalled);
}

/// Opens `STALLED` uploads and `STALLED` drops that each send their head and 1 KiB of
/// body, then stall.
async fn open_stalled(addr: &str, key: &str, mailbox: &Mailbox) -> Vec<TcpStream> {
    let mut stalled = Vec::with_capacity(2 * STALLED);
    for _ in 0..STALLED {
        stalled.push(
            stall(
                addr,
                format!(
                    "POST /api/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-File-Name: slow.bin\r\n\
                     X-Size-Bytes: 1048576\r\nX-Duration-Seconds: 3600\r\nContent-Length: 1048576\r\n\r\n"
                ),
            )
            .await,
        );
        stalled.push(
            stall(
                addr,
                format!(
                    "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000000\r\n\r\n",
                    mailbox.drop_path()
                ),
            )
            .await,
        );
    }
    stalled
}
