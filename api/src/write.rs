//! The one write pipeline. Every creation (a Storage, Mailbox or Checkpoint lease, a
//! handoff, a drop) and every checkpoint version goes the same way:
//!
//! 1. claim the `Idempotency-Key`, if any (a replay answers here, SPEC §2);
//! 2. in a task of its own, so a client that goes away cannot cut it short: stage the
//!    bytes in the blob store;
//! 3. one transaction: charge the owner, write the rows and jobs (core), store the response
//!    (sealed when it carries a secret) in the idempotency record, commit;
//! 4. after the commit: wake-ups and announcements, then the response.
//!
//! A failure at any step removes the staged bytes and releases the key, so nothing is half
//! written and a retry can succeed. Core's write functions take the transaction and return
//! models; every response body is rendered here from [`crate::views`].

use std::future::Future;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leasehold_core::accounts;
use leasehold_core::leases::Owner;
use sea_orm::DatabaseTransaction;
use serde_json::Value;

use crate::error::ApiError;
use crate::idempotency::{self, Start};
use crate::state::AppState;
use crate::x402::{Facilitator, Paying};

/// A response of the pipeline: status, headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    /// `201 Created` for creations.
    pub status: StatusCode,
    /// Lease headers and the like.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
    /// The body carries a secret (a token, a minted webhook secret): its replay copy is
    /// sealed.
    pub secret: bool,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, self.headers, Json(self.body)).into_response()
    }
}

/// A request body held until the stage step takes it. The lock only makes the holder
/// `Sync` (bodies are `Send` only), so the pipeline's steps can borrow it across awaits;
/// it is taken once and never contended.
pub struct Unread<T>(std::sync::Mutex<Option<T>>);

impl<T> Unread<T> {
    /// Holds `body`.
    pub fn new(body: T) -> Self {
        Self(std::sync::Mutex::new(Some(body)))
    }

    /// Takes the body (an internal error the second time).
    pub fn take(&self) -> Result<T, ApiError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| ApiError::internal(&"a request body was taken twice"))
    }
}

/// The price of a new lease.
#[derive(Clone, Debug)]
pub struct Price {
    /// Micro-USD.
    pub cost_micros: i64,
    /// The lease paid for (named by the ledger entry or the payment row).
    pub lease_id: String,
}

/// Who pays for a creation.
#[derive(Debug)]
pub enum Payer {
    /// Nobody: the creation is free (handoffs, drops, versions).
    Free,
    /// The account's prepaid balance, charged in the committing transaction.
    Account(String),
    /// An x402 payment: nonce and verification before the bytes, settlement after,
    /// the payment row in the committing transaction (SPEC §4.2).
    X402(Box<Paying>, Facilitator),
}

/// What the request's `Idempotency-Key` is scoped to (SPEC §2: the owner, or for drops the
/// mailbox) and which operation it names.
#[derive(Clone, Debug)]
pub enum Scope<'a> {
    /// `POST /api/store`.
    Store(&'a Owner),
    /// `POST /api/mailbox`.
    Mailbox(&'a Owner),
    /// `POST /api/checkpoint`.
    Checkpoint(&'a Owner),
    /// `POST /api/handoff/{lease_id}`.
    Handoff(&'a Owner, &'a str),
    /// `POST /api/mailbox/{token}/drop`, scoped to the mailbox (its lease id).
    Drop(&'a str),
}

impl Scope<'_> {
    /// The stored scope text (unchanged since the first release, so keys stay valid
    /// across upgrades).
    pub fn key(&self) -> String {
        match self {
            Self::Store(o) => format!("{}:{}|POST /api/store", o.kind, o.id),
            Self::Mailbox(o) => format!("{}:{}|POST /api/mailbox", o.kind, o.id),
            Self::Checkpoint(o) => format!("{}:{}|POST /api/checkpoint", o.kind, o.id),
            Self::Handoff(o, lease_id) => format!("{}:{}|POST /api/handoff/{lease_id}", o.kind, o.id),
            Self::Drop(lease_id) => format!("mailbox:{lease_id}|drop"),
        }
    }
}

/// A request's `Idempotency-Key` context: its scope and the parts that define the request
/// (the same key with other parts is `422 idempotency_key_reused`).
#[derive(Debug)]
pub struct Idempotent<'a> {
    /// Request headers (the key is read from them).
    pub headers: &'a HeaderMap,
    /// Scope.
    pub scope: Scope<'a>,
    /// Defining parts.
    pub parts: &'a [&'a str],
}

/// One kind of write, step by step. Implementations hold their validated request; the
/// pipeline calls the steps in order, each at most once, except [`Self::respond`].
pub trait Creation: Send + Sync + Sized + 'static {
    /// What the write produced (models).
    type Created: Send + 'static;

    /// Stores the bytes the rows will point at (before the transaction).
    fn stage(&mut self, _state: &AppState) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// The price, if the creation has one.
    fn price(&self) -> Option<Price> {
        None
    }

    /// Writes the rows in the transaction (after the charge).
    fn write(
        &self,
        txn: &DatabaseTransaction,
        now: i64,
    ) -> impl Future<Output = Result<Self::Created, ApiError>> + Send;

    /// Commits a write that has no idempotency record to complete: by default the write
    /// in a transaction of its own; drops override it to commit with other drops.
    fn commit_alone(&self, state: &AppState, now: i64) -> impl Future<Output = Result<Self::Created, ApiError>> + Send {
        transact(state, self, &Payer::Free, None, now)
    }

    /// The response (also what a replay sends again).
    fn respond(&self, state: &AppState, created: &Self::Created) -> Reply;

    /// Removes what [`Self::stage`] stored, after a failure.
    fn discard(&self, _state: &AppState) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Effects of the commit beyond the response (wake-ups, announcements, logs), before
    /// the response is sent.
    fn committed(&self, _state: &AppState, _created: &Self::Created) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Runs a write through the pipeline: claims the key (or replays), then stages, commits
/// and answers in a task of its own.
pub async fn create<C: Creation>(
    state: &AppState,
    idempotent: Option<Idempotent<'_>>,
    payer: Payer,
    mut creation: C,
) -> Result<Response, ApiError> {
    let claim = match idempotent {
        #[allow(clippy::disallowed_methods)] // the pipeline is the one place that claims keys
        Some(i) => match idempotency::start(state, i.headers, &i.scope.key(), i.parts).await? {
            Start::Respond(replay) => return Ok(replay),
            Start::Proceed(claim) => claim,
        },
        None => None,
    };
    let state = state.clone();
    tokio::spawn(async move {
        let mut payer = payer;
        let result = run(&state, &mut creation, &mut payer, claim.as_deref()).await;
        if let (Err(_), Payer::X402(paying, _)) = (&result, &payer) {
            paying.abandon(&state).await;
        }
        if result.is_err() {
            idempotency::release(&state, claim.as_deref()).await;
        }
        result.map(IntoResponse::into_response)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

async fn run<C: Creation>(
    state: &AppState,
    creation: &mut C,
    payer: &mut Payer,
    claim: Option<&str>,
) -> Result<Reply, ApiError> {
    if let Payer::X402(paying, facilitator) = payer {
        paying.authorize(state, facilitator).await?;
    }
    creation.stage(state).await?;
    if let Payer::X402(paying, facilitator) = payer
        && let Err(e) = paying.settle(facilitator).await
    {
        creation.discard(state).await;
        return Err(e);
    }
    let now = state.now();
    let committed = match (claim, &*payer) {
        (None, Payer::Free) => creation.commit_alone(state, now).await,
        _ => transact(state, creation, payer, claim, now).await,
    };
    let created = match committed {
        Ok(created) => created,
        Err(e) => {
            creation.discard(state).await;
            return Err(e);
        }
    };
    creation.committed(state, &created).await;
    Ok(reply(state, creation, payer, &created))
}

/// The creation's response with what the payer adds (an x402 receipt).
fn reply<C: Creation>(state: &AppState, creation: &C, payer: &Payer, created: &C::Created) -> Reply {
    let mut reply = creation.respond(state, created);
    if let Payer::X402(paying, _) = payer {
        paying.decorate_body(&mut reply.body);
        paying.decorate_headers(&mut reply.headers);
    }
    reply
}

/// Step 3 in one transaction: charge or record the payment, write, the idempotency
/// record, commit. Dropping the transaction on an error rolls it back.
pub async fn transact<C: Creation>(
    state: &AppState,
    creation: &C,
    payer: &Payer,
    claim: Option<&str>,
    now: i64,
) -> Result<C::Created, ApiError> {
    let _gate = leasehold_core::db::write_gate(&state.db).await;
    let txn = leasehold_core::db::begin_write(&state.db).await?;
    match (payer, creation.price()) {
        (Payer::Account(account_id), Some(price)) => {
            #[allow(clippy::disallowed_methods)] // the pipeline is the one place that charges
            accounts::charge(&txn, account_id, price.cost_micros, &price.lease_id, now).await?;
        }
        (Payer::X402(paying, _), Some(price)) => paying.record(&txn, &price.lease_id, now).await?,
        (Payer::Free, _) | (_, None) => {}
    }
    let created = creation.write(&txn, now).await?;
    if let Some(claim) = claim {
        let reply = reply(state, creation, payer, &created);
        let body = reply.body.to_string();
        let stored = if reply.secret { idempotency::seal(state, &body) } else { body };
        #[allow(clippy::disallowed_methods)] // the pipeline is the one place that completes keys
        leasehold_core::idempotency::complete(&txn, claim, reply.status.as_u16(), &stored).await?;
    }
    txn.commit().await?;
    Ok(created)
}
