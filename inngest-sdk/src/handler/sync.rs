//! PUT: sync. In-band answers the function list in the response; out-of-band POSTs it to
//! `{api}/fn/register` (protocol §5).

use bytes::Bytes;
use http::request::Parts;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::introspect::{capabilities, sdk_name};
use super::{ServeHandler, error_response, headers, json_response, set_header, to_json_response};
use crate::client::join_url;
use crate::signature::{SignatureError, sign};

/// Query parameters with a meaning to this SDK or Inngest, never copied into a registered URL.
const RESERVED_QUERY: [&str; 5] = ["fnId", "step", "stepId", "probe", "deployId"];

/// How far a sync request may shape the URL Inngest will call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Signed, or from the dev server: its `Host`, scheme, path and query count unless
    /// configuration overrides them.
    Request,
    /// Unsigned in cloud mode: configuration alone decides the URL.
    ConfigurationOnly,
}

/// The `deployId` query parameter, forwarded to `/fn/register` (never part of the app URL).
fn deploy_id(parts: &Parts) -> Option<String> {
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(k, _)| k == "deployId")
        .map(|(_, v)| v.into_owned())
}

/// What to change when an in-band sync body is unusable.
const IN_BAND_BODY_FIX: &str = "an in-band sync body is {\"url\": \"<app URL>\"}, as Inngest sends it; \
     set INNGEST_ALLOW_IN_BAND_SYNC=0 to sync out of band instead";

/// What to change when the URL to register cannot be built.
const SERVE_URL_FIX: &str = "set INNGEST_SERVE_ORIGIN (scheme and host, e.g. https://app.example.com) and INNGEST_SERVE_PATH";

/// Refuses a sync request with `status`, logging it once at warn level with its reason and
/// what to set. Neither holds a key: reasons are fixed texts, configured URLs or parse errors.
fn refuse(status: StatusCode, reason: &str, fix: &str) -> Response<Bytes> {
    tracing::warn!(
        status = status.as_u16(),
        reason,
        fix,
        "refused a sync request"
    );
    error_response(status, reason)
}

/// What an operator can set when a sync's signature does not pass.
fn signature_fix(error: &SignatureError) -> &'static str {
    match error {
        SignatureError::Missing => {
            "a sync in cloud mode must be signed: sync from the Inngest server, or set \
             INNGEST_SERVE_ORIGIN for an unsigned out-of-band PUT (INNGEST_DEV=1 for the dev server)"
        }
        SignatureError::Malformed => {
            "X-Inngest-Signature must be t=<unix seconds>&s=<hex>: sync from the Inngest server, \
             or send the PUT unsigned with INNGEST_SERVE_ORIGIN set"
        }
        SignatureError::Expired => {
            "the signature is over 5 minutes away from this machine's clock: check both clocks"
        }
        SignatureError::Mismatch => {
            "set INNGEST_SIGNING_KEY to the key the server signs with (the same hex, with or \
             without a signkey-<env>- prefix; the old key in INNGEST_SIGNING_KEY_FALLBACK during a rotation)"
        }
        SignatureError::NoKey => {
            "set INNGEST_SIGNING_KEY (cloud mode checks every signature), or INNGEST_DEV=1 for the dev server"
        }
    }
}

#[derive(Deserialize)]
struct InBandRequest {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
struct RegisterAnswer {
    #[serde(default)]
    modified: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl<S: Clone + Send + Sync + 'static> ServeHandler<S> {
    pub(super) async fn sync(&self, parts: &Parts, body: &[u8]) -> Response<Bytes> {
        let wants_in_band = parts
            .headers
            .get(headers::SYNC_KIND)
            .is_some_and(|v| v.as_bytes() == b"in_band");
        let mut response = if wants_in_band && self.inner.client.config().allow_in_band_sync {
            self.in_band_sync(parts, body)
        } else {
            match self.out_of_band_trust(parts, body) {
                Ok(trust) => self.out_of_band_sync(parts, trust).await,
                Err((reason, fix)) => refuse(StatusCode::UNAUTHORIZED, &reason, fix),
            }
        };
        if !response.headers().contains_key(headers::SYNC_KIND) {
            let kind = if wants_in_band && self.inner.client.config().allow_in_band_sync {
                "in_band"
            } else {
                "out_of_band"
            };
            set_header(&mut response, headers::SYNC_KIND, kind);
        }
        response
    }

    /// Who may sync out of band, and whether the request may shape the registered URL.
    ///
    /// A signature covers the body and a timestamp, never `Host`, `X-Forwarded-Proto` or
    /// the query, so only a signed request (or the dev server, which signs nothing) is trusted
    /// to contribute the query. In cloud mode an unsigned PUT (a deploy script's
    /// `curl -X PUT`) is accepted only with a configured serve origin, and then the URL is
    /// built from configuration alone: it can trigger a sync but never move the app.
    /// A refusal comes with what the operator can set to be let in.
    fn out_of_band_trust(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Trust, (String, &'static str)> {
        if self.is_dev() {
            return Ok(Trust::Request);
        }
        let signed = parts.headers.contains_key(headers::SIGNATURE);
        if !signed && self.inner.client.config().serve_origin.is_some() {
            return Ok(Trust::ConfigurationOnly);
        }
        self.check_signature(&parts.headers, body)
            .map(|_| Trust::Request)
            .map_err(|e| {
                let fix = if signed {
                    signature_fix(&e)
                } else {
                    "set INNGEST_SERVE_ORIGIN to the app's public origin (e.g. https://app.example.com) \
                     so an unsigned PUT can sync, or let the Inngest server send the sync (it signs it)"
                };
                let reason = format!(
                    "out-of-band sync in cloud mode needs INNGEST_SERVE_ORIGIN or a signed request: {e}"
                );
                (reason, fix)
            })
    }

    fn in_band_sync(&self, parts: &Parts, body: &[u8]) -> Response<Bytes> {
        let verified = match self.check_signature(&parts.headers, body) {
            Ok(key) => key,
            Err(e) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    &format!("in-band sync refused: {e}"),
                    signature_fix(&e),
                );
            }
        };
        let url = match serde_json::from_slice::<InBandRequest>(body) {
            Ok(InBandRequest { url: Some(url) }) if !url.is_empty() => url,
            Ok(_) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "missing url in sync body",
                    IN_BAND_BODY_FIX,
                );
            }
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("malformed sync body: {e}"),
                    IN_BAND_BODY_FIX,
                );
            }
        };
        // The body is signed (or from the dev server), so Inngest's own URL is kept verbatim
        // unless configuration overrides it.
        let config = self.inner.client.config();
        let url = if config.serve_origin.is_none() && config.serve_path.is_none() {
            url
        } else {
            let parsed = match url::Url::parse(&url) {
                Ok(parsed) => parsed,
                Err(e) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        &format!("the sync url is not a URL: {e}"),
                        IN_BAND_BODY_FIX,
                    );
                }
            };
            match self.registered_url(&parsed, Trust::Request) {
                Ok(url) => url,
                Err(message) => {
                    return refuse(StatusCode::INTERNAL_SERVER_ERROR, &message, SERVE_URL_FIX);
                }
            }
        };
        let payload = json!({
            "app_id": config.app_id(),
            "env": config.env,
            "framework": self.framework,
            "functions": self.function_configs(&url),
            "inspection": self.inspection(Some(true)),
            "platform": Value::Null,
            "sdk_author": "inngest",
            "sdk_language": "rust",
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "url": url,
        });
        let bytes = match serde_json::to_vec(&payload) {
            Ok(bytes) => bytes,
            Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        let signature = self
            .response_key(verified)
            .map(|key| sign(key, &bytes, chrono::Utc::now().timestamp()));
        let mut response = json_response(StatusCode::OK, bytes);
        set_header(&mut response, headers::SYNC_KIND, "in_band");
        if let Some(signature) = signature {
            set_header(&mut response, headers::SIGNATURE, &signature);
        }
        response
    }

    async fn out_of_band_sync(&self, parts: &Parts, trust: Trust) -> Response<Bytes> {
        let config = self.inner.client.config();
        let deploy_id = deploy_id(parts);
        let url = match self.request_url(parts) {
            Ok(request) => self.registered_url(&request, trust),
            Err(message) => Err(message),
        };
        let url = match url {
            Ok(url) => url,
            Err(message) => return refuse(StatusCode::BAD_REQUEST, &message, SERVE_URL_FIX),
        };
        let payload = json!({
            "v": "1",
            "url": url,
            "deployType": "ping",
            "sdk": sdk_name(),
            "framework": self.framework,
            "appName": config.app_id(),
            "appVersion": config.app_version,
            "functions": self.function_configs(&url),
            "headers": { "env": config.env.clone().unwrap_or_default(), "platform": "" },
            "idempotencyKey": "",
            "capabilities": capabilities(),
        });
        let mut register = join_url(config.api_base_url(), "fn/register");
        if let Some(deploy_id) = &deploy_id {
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("deployId", deploy_id)
                .finish();
            register = format!("{register}?{encoded}");
        }
        let sent = self
            .inner
            .client
            .send_authorized(|| {
                let mut request = self
                    .inner
                    .client
                    .request(reqwest::Method::POST, &register)
                    .header("content-type", "application/json")
                    .header(headers::SDK, sdk_name())
                    .json(&payload);
                if let Some(kind) = parts.headers.get(headers::SERVER_KIND) {
                    request = request.header(headers::EXPECTED_SERVER_KIND, kind.as_bytes());
                }
                request
            })
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    fix = "check INNGEST_BASE_URL (or INNGEST_API_BASE_URL) and that the server is up",
                    "sync failed: Inngest's API is unreachable"
                );
                return to_json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({ "message": format!("could not reach Inngest: {e}"), "modified": false }),
                );
            }
        };
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        let parsed: RegisterAnswer = serde_json::from_str(&text).unwrap_or_default();
        if status.is_success() {
            tracing::info!(%url, modified = parsed.modified, "synced with Inngest");
            return to_json_response(
                StatusCode::OK,
                &json!({ "message": "Successfully synced.", "modified": parsed.modified }),
            );
        }
        let message = parsed
            .error
            .or(parsed.message)
            .unwrap_or_else(|| text.chars().take(500).collect());
        let fix = if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
        {
            "set INNGEST_SIGNING_KEY to the server's signing key (the old one in \
             INNGEST_SIGNING_KEY_FALLBACK during a rotation), and INNGEST_ENV to its environment if it has several"
        } else {
            "see the server's message"
        };
        tracing::warn!(
            status = status.as_u16(),
            %message,
            fix,
            "sync failed: Inngest refused the registration"
        );
        let status =
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        to_json_response(status, &json!({ "message": message, "modified": false }))
    }

    /// The URL the request was sent to, as the request tells it (scheme from
    /// `X-Forwarded-Proto`, authority from `Host`): only trusted as far as
    /// [`Self::registered_url`] lets it be.
    fn request_url(&self, parts: &Parts) -> Result<url::Url, String> {
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .or(parts.uri.scheme_str())
            .unwrap_or("http");
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or(parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let query = parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let raw = format!("{scheme}://{host}{}{query}", parts.uri.path());
        url::Url::parse(&raw).map_err(|e| format!("cannot build the app URL from the request: {e}"))
    }

    /// The URL registered with Inngest. The configured serve origin and path always win over
    /// the request; the query survives only from a trusted request, without the parameters
    /// this SDK or Inngest give a meaning to (`fnId`, `step`, `stepId`, `probe`, `deployId`).
    fn registered_url(&self, request: &url::Url, trust: Trust) -> Result<String, String> {
        let config = self.inner.client.config();
        let mut url = match &config.serve_origin {
            Some(origin) => self.origin_url(origin)?,
            None if trust == Trust::ConfigurationOnly => {
                return Err("no serve origin is configured".to_owned());
            }
            None => {
                let mut url = request.clone();
                url.set_query(None);
                url.set_fragment(None);
                url.set_path("");
                url
            }
        };
        url.set_path(config.serve_path.as_deref().unwrap_or(request.path()));
        if trust == Trust::Request {
            let kept: Vec<(String, String)> = request
                .query_pairs()
                .into_owned()
                .filter(|(k, _)| !RESERVED_QUERY.contains(&k.as_str()))
                .collect();
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        }
        Ok(url.to_string())
    }

    /// The configured origin as a URL: scheme, host and port only. An origin written without
    /// a scheme is `https` in cloud mode and `http` with the dev server, never the request's.
    fn origin_url(&self, origin: &str) -> Result<url::Url, String> {
        let origin = if origin.contains("://") {
            origin.to_owned()
        } else if self.is_dev() {
            format!("http://{origin}")
        } else {
            format!("https://{origin}")
        };
        let mut url = url::Url::parse(&origin)
            .ok()
            .filter(|url| url.has_host())
            .ok_or_else(|| format!("INNGEST_SERVE_ORIGIN {origin:?} is not an origin"))?;
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }

    /// The function objects, each with its step URL `<url>?fnId=<composite>&step=step`.
    fn function_configs(&self, url: &str) -> Vec<Value> {
        let app_id = self.inner.client.config().app_id();
        self.inner
            .functions
            .iter()
            .map(|f| {
                let composite = self.inner.client.config().composite_id(&f.opts.id);
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("fnId", &composite)
                    .append_pair("step", "step")
                    .finish();
                let separator = if url.contains('?') { '&' } else { '?' };
                let config = self.inner.client.config();
                f.opts.to_json(
                    app_id,
                    &format!("{url}{separator}{query}"),
                    config.checkpoint(),
                )
            })
            .collect()
    }
}
