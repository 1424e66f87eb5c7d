//! Wallet owners (SPEC §4.3): Sign-In with Ethereum. `GET /v1/auth/challenge` issues an
//! EIP-4361 message with a single-use nonce and remembers it; `POST /v1/auth/verify`
//! checks the EIP-191 signature (v = 0/1/27/28, high-s refused), consumes the nonce
//! atomically and opens a 24 h `rs_wallet_` session; `DELETE /v1/auth/session` revokes
//! the presented session.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use leasehold_core::evm::{self, SiweMessage};
use leasehold_core::time::rfc3339;
use leasehold_core::wallets;
use leasehold_entities::wallet_session;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, OwnerAuth, bad_parameter};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `/v1/auth…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(challenge)).routes(routes!(verify)).routes(routes!(sign_out))
}

#[derive(Deserialize)]
struct ChallengeQuery {
    wallet: Option<String>,
}

/// `host[:port]` of the public URL: the message's `domain`.
fn domain(public_url: &str) -> &str {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The chain the sessions are bound to: the x402 network's, else Base.
fn chain(state: &AppState) -> u64 {
    state.config.x402.as_ref().map_or(8453, |x| x.network.chain_id())
}

#[utoipa::path(get,
    path = "/v1/auth/challenge",
    tag = "auth",
    summary = "A Sign-In with Ethereum message for a wallet to sign",
    extensions(("x-auth" = json!("none"))),
    params(("wallet" = String, Query, description = "The wallet, `0x` + 40 hex (EIP-55 when mixed case)", pattern = "^0x[0-9a-fA-F]{40}$")),
    responses((status = 200, description = "`{status, nonce, message, expires_at}`: sign `message` with personal_sign within 5 minutes", body = Value), (status = 400, description = "`bad_request` (names the `parameter`)", body = ErrorBody)))]
async fn challenge(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ChallengeQuery>,
) -> Result<Json<Value>, ApiError> {
    let wallet = q.wallet.ok_or_else(|| bad_parameter("wallet", "is required"))?;
    let address =
        evm::parse_address(&wallet).ok_or_else(|| bad_parameter("wallet", "must be an EVM address (0x + 40 hex)"))?;
    let now = state.now();
    let expires_at = now + wallets::CHALLENGE_TTL_MS;
    let message = SiweMessage {
        domain: domain(&state.config.public_url).to_owned(),
        address,
        statement: Some(evm::siwe::STATEMENT.to_owned()),
        uri: state.config.public_url.clone(),
        version: "1".into(),
        chain_id: chain(&state),
        nonce: evm::new_nonce(),
        issued_at: now,
        expiration_time: Some(expires_at),
    };
    let text = message.to_text();
    wallets::remember_challenge(&state.db, &message.nonce, &evm::checksum(&address), &text, now, expires_at).await?;
    Ok(Json(json!({ "status": "ok", "nonce": message.nonce, "message": text, "expires_at": rfc3339(expires_at) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    message: String,
    signature: String,
}

#[utoipa::path(post,
    path = "/v1/auth/verify",
    tag = "auth",
    summary = "Exchanges a signed challenge for a 24 h wallet session",
    extensions(("x-auth" = json!("none"))),
    request_body = Value,
    responses((status = 200, description = "`{status, token: \"rs_wallet_…\", wallet, expires_at}`", body = Value), (status = 400, description = "`bad_request`, `invalid_json`", body = ErrorBody), (status = 401, description = "`unauthorized`: a message this server did not issue, used, expired or altered, or a signature of another wallet", body = ErrorBody)))]
async fn verify(State(state): State<AppState>, ApiJson(body): ApiJson<VerifyBody>) -> Result<Json<Value>, ApiError> {
    let now = state.now();
    let message = SiweMessage::parse(&body.message).ok_or_else(ApiError::unauthorized)?;
    let signer =
        evm::recover_personal_sign(body.message.as_bytes(), &body.signature).map_err(|_| ApiError::unauthorized())?;
    if signer != message.address || message.expiration_time.is_some_and(|t| t <= now) {
        return Err(ApiError::unauthorized());
    }
    // Last, so a wrong signature does not burn the challenge: one conditional UPDATE
    // (issued, exactly this text, unused, unexpired) decides across pods.
    if !wallets::consume_challenge(&state.db, &message.nonce, &body.message, now).await? {
        return Err(ApiError::unauthorized());
    }
    let wallet = evm::checksum(&signer);
    let (token, session) = wallets::open_session(&state.db, &wallet, now).await?;
    tracing::info!(wallet = %wallet, "wallet signed in");
    Ok(Json(json!({ "status": "ok", "token": token, "wallet": wallet, "expires_at": rfc3339(session.expires_at) })))
}

/// A wallet session (`Authorization: Bearer rs_wallet_…`); anything else is 401.
struct WalletAuth(wallet_session::Model);

impl FromRequestParts<AppState> for WalletAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match OwnerAuth::from_request_parts(parts, state).await? {
            OwnerAuth::Wallet(session) => Ok(Self(session)),
            OwnerAuth::Account(_) => Err(ApiError::unauthorized()),
        }
    }
}

#[utoipa::path(delete,
    path = "/v1/auth/session",
    tag = "auth",
    summary = "Revokes the presented wallet session",
    extensions(("x-auth" = json!("wallet"))),
    responses((status = 200, description = "`{status, revoked: true}`", body = Value)))]
async fn sign_out(State(state): State<AppState>, WalletAuth(session): WalletAuth) -> Result<Json<Value>, ApiError> {
    wallets::revoke(&state.db, &session.id, state.now()).await?;
    Ok(Json(json!({ "status": "ok", "revoked": true, "wallet": session.wallet })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_domain_is_the_public_authority() {
        assert_eq!(super::domain("https://leases.example.com"), "leases.example.com");
        assert_eq!(super::domain("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(super::domain("https://h.example/base"), "h.example");
    }
}
