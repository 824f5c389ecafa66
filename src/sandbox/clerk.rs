//! The Clerk stand-in: the demo people as Clerk users, session tokens signed with a sandbox
//! key that the backend API's JWKS publishes, and user metadata (where dashboard access is
//! written).
//!
//! The key pair in `clerk_key.pem` is a sandbox key, public in this repository on purpose: it
//! only ever signs tokens for this stand-in, which `serve` never mounts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Map, Value, json};

use super::Sandbox;
use super::page::{Refusal, render};

/// The secret key our Clerk client is given; the stand-in's API refuses any other.
pub(super) const SECRET_KEY: &str = "sk_test_sandbox_clerk";
const KEY_ID: &str = "sandbox";
const PRIVATE_KEY: &str = include_str!("clerk_key.pem");
const JWKS: &str = include_str!("clerk_jwks.json");
/// Long enough for a day of clicking around without signing in again.
const TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// A person the stand-in knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPerson {
    /// Their Clerk user id.
    pub clerk_id: &'static str,
    /// First and last name.
    pub name: &'static str,
    /// Their email address (the outbox shows what is sent to it).
    pub email: &'static str,
}

/// Buyers; a new id here needs nothing else.
pub(super) const DEMO_BUYERS: &[DemoPerson] = &[
    DemoPerson {
        clerk_id: "user_demo_buyer_mina",
        name: "Mina Castellanos",
        email: "mina@demo.huckleberry.art",
    },
    DemoPerson {
        clerk_id: "user_demo_buyer_jonas",
        name: "Jonas Weber",
        email: "jonas@demo.huckleberry.art",
    },
    DemoPerson {
        clerk_id: "user_demo_buyer_aiko",
        name: "Aiko Tanaka",
        email: "aiko@demo.huckleberry.art",
    },
];

/// The mentors of `seeds/demo.sql`, who sign in to book and complete sessions.
pub(super) const DEMO_MENTORS: &[DemoPerson] = &[
    DemoPerson {
        clerk_id: "user_demo_mentor_ada",
        name: "Ada Lindqvist",
        email: "ada@demo.huckleberry.art",
    },
    DemoPerson {
        clerk_id: "user_demo_mentor_tomas",
        name: "Tomás Okafor",
        email: "tomas@demo.huckleberry.art",
    },
];

/// The Clerk stand-in's state: each person's public metadata.
pub struct ClerkSandbox {
    key: Result<jsonwebtoken::EncodingKey, String>,
    metadata: Mutex<HashMap<&'static str, Map<String, Value>>>,
}

impl ClerkSandbox {
    pub(super) fn new() -> Self {
        Self {
            key: jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes())
                .map_err(|e| e.to_string()),
            metadata: Mutex::default(),
        }
    }

    /// A session token for `clerk_id` (any id: the API then answers 404 for an unknown one,
    /// as Clerk would for a deleted user).
    pub fn session_token(&self, clerk_id: &str) -> Result<String, String> {
        let key = self.key.as_ref().map_err(Clone::clone)?;
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "sub": clerk_id,
            "iss": "https://clerk.sandbox.huckleberry.art",
            "sid": format!("sess_sandbox_{clerk_id}"),
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + TOKEN_LIFETIME_SECS,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| e.to_string())
    }

    /// The public metadata of a person, as the app last wrote it.
    pub fn public_metadata(&self, clerk_id: &str) -> Map<String, Value> {
        self.lock().get(clerk_id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Map<String, Value>>> {
        self.metadata.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn person(clerk_id: &str) -> Option<&'static DemoPerson> {
    DEMO_BUYERS
        .iter()
        .chain(DEMO_MENTORS)
        .find(|p| p.clerk_id == clerk_id)
}

pub(super) fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/clerk/v1/jwks", get(jwks))
        .route("/clerk/v1/users/{id}", get(get_user))
        .route("/clerk/v1/users/{id}/metadata", patch(update_metadata))
        .route("/clerk/sign-in", get(sign_in))
}

fn clerk(sandbox: &Sandbox) -> Result<&ClerkSandbox, Refusal> {
    sandbox.clerk.as_ref().ok_or_else(Refusal::not_stood_in)
}

/// Clerk's error body.
fn clerk_error(status: StatusCode, code: &str, message: &str) -> Refusal {
    Refusal::new(
        status,
        json!({"errors": [{"code": code, "message": message, "long_message": message}]}),
    )
}

fn authorized(headers: &HeaderMap) -> Result<(), Refusal> {
    let expected = format!("Bearer {SECRET_KEY}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value == expected => Ok(()),
        _ => Err(clerk_error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "The secret key is not the sandbox's",
        )),
    }
}

async fn jwks() -> Response {
    ([("content-type", "application/json")], JWKS).into_response()
}

/// A user in Clerk's shape (the fields clerk-rs reads).
fn user_json(person: &DemoPerson, public_metadata: Map<String, Value>) -> Value {
    let (first, last) = person.name.split_once(' ').unwrap_or((person.name, ""));
    let created = 1_764_676_800_000_i64;
    json!({
        "id": person.clerk_id, "object": "user", "username": null,
        "first_name": first, "last_name": last,
        "image_url": "", "has_image": false,
        "primary_email_address_id": "idn_sandbox_primary",
        "primary_phone_number_id": null, "primary_web3_wallet_id": null,
        "password_enabled": false, "two_factor_enabled": false, "totp_enabled": false,
        "backup_code_enabled": false,
        "email_addresses": [{
            "id": "idn_sandbox_primary", "object": "email_address",
            "email_address": person.email, "reserved": false, "verification": null,
            "linked_to": [], "created_at": created, "updated_at": created
        }],
        "phone_numbers": [], "web3_wallets": [], "passkeys": [], "external_accounts": [],
        "saml_accounts": [], "enterprise_accounts": [],
        "public_metadata": public_metadata, "private_metadata": {}, "unsafe_metadata": {},
        "external_id": null, "last_sign_in_at": null, "banned": false, "locked": false,
        "lockout_expires_in_seconds": null, "verification_attempts_remaining": null,
        "created_at": created, "updated_at": created,
        "delete_self_enabled": true, "create_organization_enabled": true,
        "last_active_at": null, "mfa_enabled_at": null, "mfa_disabled_at": null,
        "legal_accepted_at": null
    })
}

async fn get_user(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let clerk = clerk(&sandbox)?;
    authorized(&headers)?;
    let person = known(&id)?;
    Ok(axum::Json(user_json(person, clerk.public_metadata(&id))).into_response())
}

fn known(clerk_id: &str) -> Result<&'static DemoPerson, Refusal> {
    person(clerk_id)
        .ok_or_else(|| clerk_error(StatusCode::NOT_FOUND, "resource_not_found", "No such user"))
}

/// Clerk merges the top-level keys of `public_metadata` into what is there; a `null` value
/// deletes its key.
async fn update_metadata(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Refusal> {
    let clerk = clerk(&sandbox)?;
    authorized(&headers)?;
    let person = known(&id)?;
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        clerk_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_invalid",
            &e.to_string(),
        )
    })?;
    let mut all = clerk.lock();
    let metadata = all.entry(person.clerk_id).or_default();
    if let Some(Value::Object(update)) = request.get("public_metadata") {
        for (key, value) in update {
            if value.is_null() {
                metadata.remove(key);
            } else {
                metadata.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(axum::Json(user_json(person, metadata.clone())).into_response())
}

#[derive(Template)]
#[template(path = "sandbox/clerk_sign_in.html")]
struct SignIn {
    /// (role, person, token, public metadata as JSON).
    people: Vec<(&'static str, DemoPerson, String, String)>,
}

/// `GET /sandbox/clerk/sign-in`: every demo person with a session token, for calling the API
/// by hand (`Authorization: Bearer …`), and what Clerk holds for them.
async fn sign_in(State(sandbox): State<Arc<Sandbox>>) -> Result<Response, Refusal> {
    let clerk = clerk(&sandbox)?;
    let people = DEMO_BUYERS
        .iter()
        .map(|p| ("buyer", p))
        .chain(DEMO_MENTORS.iter().map(|p| ("mentor", p)))
        .map(|(role, p)| {
            let token = clerk.session_token(p.clerk_id).unwrap_or_else(|e| e);
            let metadata = Value::Object(clerk.public_metadata(p.clerk_id)).to_string();
            (role, *p, token, metadata)
        })
        .collect();
    Ok(render(&SignIn { people }, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_key_verifies_the_tokens_it_signs() {
        let token = ClerkSandbox::new()
            .session_token("user_demo_buyer_mina")
            .expect("a token");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(JWKS).expect("a JWKS");
        let jwk = jwks.find(KEY_ID).expect("the sandbox key");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a key");
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &key,
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
        )
        .expect("valid");
        assert_eq!(data.claims["sub"], "user_demo_buyer_mina");
    }
}
