//! The official x402 clients pay this server unchanged (SPEC §4.2): the `x402` Python
//! package (`x402ClientSync` + `register_exact_evm_client` behind its `requests` adapter)
//! and `@x402/fetch` + `@x402/evm` (viem's local account), each in both protocol versions.
//! Given our `402` as it is (v1 body and `PAYMENT-REQUIRED` header) they pay with v2;
//! given the v1 body alone (a pass-through beneath the client deletes the header) with
//! v1. The scripts are `tests/clients/{python/pay.py,js/pay.mjs}`; the facilitator is the
//! chain-less one that verifies the EIP-712 signatures for real.
//!
//! Each run must: exit 0 with `201`, have sent exactly one payment in the expected header,
//! get the receipt header of that version (decodable by us and by the client), create a
//! lease owned by the client's wallet, and make the facilitator settle exactly one payment
//! of the quote (29 micros for a small file for an hour) from that wallet.
//!
//! `LEASEHOLD_TEST_X402_PYTHON` names a python whose environment has
//! `tests/clients/python/requirements.txt`; `LEASEHOLD_TEST_X402_NODE_DIR` the
//! `tests/clients/js` directory with its `node_modules` installed (`npm ci`). Without them
//! the tests are skipped (and fail with `LEASEHOLD_TEST_REQUIRE_ALL=1`); `.ci/run`
//! installs both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leasehold_core::evm::{self, B256, TestKey};
use leasehold_core::leases::{Owner, OwnerKind};
use leasehold_tests::facilitator::{self, TestFacilitator, decode};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    the_python_client_pays_with_v2,
    the_python_client_pays_with_v1,
    the_js_client_pays_with_v2,
    the_js_client_pays_with_v1
);

/// Fixed test wallets (never real funds), one per client and version so each lease's
/// owner is unmistakable.
const PYTHON_V2_KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
const PYTHON_V1_KEY: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
const JS_V2_KEY: &str = "0x3333333333333333333333333333333333333333333333333333333333333333";
const JS_V1_KEY: &str = "0x4444444444444444444444444444444444444444444444444444444444444444";

/// The whole run (interpreter start, `402`, signing, paid retry) must fit in this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Python,
    Js,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn arg(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }

    /// The header the client pays with.
    fn payment_header(self) -> &'static str {
        match self {
            Self::V1 => "X-PAYMENT",
            Self::V2 => "PAYMENT-SIGNATURE",
        }
    }

    /// The receipt header the server answers with.
    fn receipt_header(self) -> &'static str {
        match self {
            Self::V1 => "X-PAYMENT-RESPONSE",
            Self::V2 => "PAYMENT-RESPONSE",
        }
    }

    /// The network name of this version (base-sepolia in tests).
    fn network(self) -> &'static str {
        match self {
            Self::V1 => "base-sepolia",
            Self::V2 => "eip155:84532",
        }
    }
}

impl Client {
    fn variable(self) -> &'static str {
        match self {
            Self::Python => "LEASEHOLD_TEST_X402_PYTHON",
            Self::Js => "LEASEHOLD_TEST_X402_NODE_DIR",
        }
    }

    /// The command that runs this client's script, or `None` (skipped) when its variable
    /// is not set; panics instead with `LEASEHOLD_TEST_REQUIRE_ALL=1`.
    fn command(self) -> Option<tokio::process::Command> {
        let name = self.variable();
        let Some(value) = std::env::var(name).ok().filter(|v| !v.is_empty()) else {
            let required = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
            assert!(!required, "LEASEHOLD_TEST_REQUIRE_ALL=1 but {name} is not set");
            eprintln!("skipped: set {name} to run the official x402 {self:?} client (see .ci/run)");
            return None;
        };
        let command = match self {
            Self::Python => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/pay.py");
                let mut c = tokio::process::Command::new(value);
                c.arg(script);
                c
            }
            Self::Js => {
                let dir = PathBuf::from(value);
                assert!(
                    dir.join("node_modules/@x402/fetch").is_dir(),
                    "{name}={}: no node_modules/@x402/fetch there (run `npm ci` in it)",
                    dir.display()
                );
                let mut c = tokio::process::Command::new("node");
                c.arg(dir.join("pay.mjs"));
                c
            }
        };
        Some(command)
    }
}

/// The EIP-55 address of a hex private key.
fn address_of(key: &str) -> String {
    let secret: B256 = key.parse().expect("32-byte hex key");
    evm::checksum(&TestKey::from_secret(&secret).expect("valid key").address())
}

/// Runs `client` in `version` with `key` against a fresh x402 instance on `backend` and
/// checks everything the module doc lists.
async fn pays(backend: Backend, client: Client, version: Version, key: &str) {
    let Some(mut command) = client.command() else { return };
    let f = TestFacilitator::start().await;
    let x = facilitator::config(&f);
    let app = TestApp::spawn_with(&backend, move |c| c.x402 = Some(x)).await;
    let wallet = address_of(key);

    let started = std::time::Instant::now();
    let run = command.arg(&app.base).arg(key).arg(version.arg()).kill_on_drop(true).output();
    let output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{client:?} {version:?}: no answer within {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{client:?}: could not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{client:?} {version:?} ({:.1?}): {stdout}{stderr}", started.elapsed());
    let out: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{client:?} {version:?} printed no JSON line"));
    assert!(output.status.success(), "{client:?} {version:?} failed ({}): {out}", output.status);
    assert_eq!(out["status"], 201, "{out}");
    assert_eq!(out["wallet"], wallet.as_str(), "the script derived another address from the key");

    // Exactly one paid retry, in this version's header, answered with its receipt header.
    assert_eq!(out["paid_with"], serde_json::json!([version.payment_header()]), "{out}");
    assert_eq!(out["receipt_header"], version.receipt_header(), "{out}");
    let body = &out["body"];
    let tx_hash = body["tx_hash"].as_str().expect("tx_hash");
    assert_eq!(body["from_wallet"], wallet.as_str());
    let receipt = decode(out["payment_response_header"].as_str().expect("receipt header"));
    assert_eq!(receipt["success"], true, "{receipt}");
    assert_eq!(receipt["transaction"], tx_hash);
    assert_eq!(receipt["network"], version.network());
    assert_eq!(receipt["payer"], wallet.as_str());
    // The client's own decoder read the same receipt.
    assert_eq!(out["receipt"]["transaction"], tx_hash, "{out}");
    assert_eq!(out["receipt"]["success"], true, "{out}");

    // The lease belongs to the wallet, and its payment row is the settlement.
    let lease_id = body["lease_id"].as_str().expect("lease_id");
    let owner = Owner { kind: OwnerKind::Wallet, id: wallet.clone() };
    let lease = leasehold_core::leases::find_owned(&app.state.db, &owner, lease_id).await.expect("db");
    assert!(lease.is_some(), "the lease is owned by the paying wallet {wallet}");
    let payment = leasehold_core::payments::of_lease(&app.state.db, lease_id).await.expect("db").expect("payment row");
    assert_eq!(payment.amount_micros, 29);
    assert_eq!(payment.tx_hash.as_deref(), Some(tx_hash));

    // The facilitator settled exactly this one payment: the quote, from the wallet.
    let settled = f.settlements();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].value, 29, "the quote of a small file for an hour");
    assert_eq!(settled[0].payer, wallet);
    assert_eq!(settled[0].transaction, tx_hash);
    assert_eq!(f.verifies(), 1, "one payment verified");

    // The Python run then signs in with eth-account and downloads what it paid for.
    if matches!(client, Client::Python) {
        let siwe = &out["siwe"];
        assert_eq!(siwe["verify_status"], 200, "{out}");
        assert_eq!(siwe["token_prefix"], "rs_wallet_", "{out}");
        assert_eq!(siwe["download_status"], 200, "{out}");
        assert_eq!(siwe["downloaded"], true, "{out}");
    }
}

async fn the_python_client_pays_with_v2(backend: Backend) {
    pays(backend, Client::Python, Version::V2, PYTHON_V2_KEY).await;
}

async fn the_python_client_pays_with_v1(backend: Backend) {
    pays(backend, Client::Python, Version::V1, PYTHON_V1_KEY).await;
}

async fn the_js_client_pays_with_v2(backend: Backend) {
    pays(backend, Client::Js, Version::V2, JS_V2_KEY).await;
}

async fn the_js_client_pays_with_v1(backend: Backend) {
    pays(backend, Client::Js, Version::V1, JS_V1_KEY).await;
}
