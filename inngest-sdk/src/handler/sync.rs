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
use crate::signature::sign;

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
        } else if let Err(message) = self.may_sync_out_of_band(parts, body) {
            error_response(StatusCode::UNAUTHORIZED, &message)
        } else {
            self.out_of_band_sync(parts).await
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

    /// Out-of-band sync reports a URL built from the request's `Host`. In cloud mode an
    /// unauthenticated caller could make us register their host with our signing key, so
    /// without a configured serve origin the PUT must be signed.
    fn may_sync_out_of_band(&self, parts: &Parts, body: &[u8]) -> Result<(), String> {
        let config = self.inner.client.config();
        if self.is_dev() || config.serve_origin.is_some() {
            return Ok(());
        }
        self.check_signature(&parts.headers, body).map(drop).map_err(|e| {
            format!("out-of-band sync in cloud mode needs INNGEST_SERVE_ORIGIN or a signed request: {e}")
        })
    }

    fn in_band_sync(&self, parts: &Parts, body: &[u8]) -> Response<Bytes> {
        let verified = match self.check_signature(&parts.headers, body) {
            Ok(key) => key,
            Err(e) => return error_response(StatusCode::UNAUTHORIZED, &e.to_string()),
        };
        let url = match serde_json::from_slice::<InBandRequest>(body) {
            Ok(InBandRequest { url: Some(url) }) if !url.is_empty() => url,
            Ok(_) => return error_response(StatusCode::BAD_REQUEST, "missing url in sync body"),
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("malformed sync body: {e}"),
                );
            }
        };
        let url = self.apply_overrides(&url);
        let config = self.inner.client.config();
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

    async fn out_of_band_sync(&self, parts: &Parts) -> Response<Bytes> {
        let config = self.inner.client.config();
        let (url, deploy_id) = self.app_url(parts);
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
        let keys = config.signing_keys();
        let attempts: Vec<Option<&crate::signature::SigningKey>> = if keys.is_empty() {
            vec![None]
        } else {
            keys.into_iter().map(Some).collect()
        };
        let mut last = None;
        for key in attempts {
            let mut request = self
                .inner
                .client
                .http()
                .post(&register)
                .header("content-type", "application/json")
                .header(headers::SDK, sdk_name())
                .json(&payload);
            if let Some(key) = key {
                request = request.bearer_auth(key.hashed());
            }
            if let Some(env) = &config.env {
                request = request.header(headers::ENV, env);
            }
            if let Some(kind) = parts.headers.get(headers::SERVER_KIND) {
                request = request.header(headers::EXPECTED_SERVER_KIND, kind.as_bytes());
            }
            match request.send().await {
                Ok(answer) => {
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
                    tracing::warn!(%status, %message, "Inngest refused the sync");
                    let status = StatusCode::from_u16(status.as_u16())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    last = Some(to_json_response(
                        status,
                        &json!({ "message": message, "modified": false }),
                    ));
                    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Inngest unreachable for sync");
                    last = Some(to_json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({ "message": format!("could not reach Inngest: {e}"), "modified": false }),
                    ));
                    break;
                }
            }
        }
        last.unwrap_or_else(|| error_response(StatusCode::INTERNAL_SERVER_ERROR, "sync failed"))
    }

    /// The URL Inngest should call, from the request (scheme, host, path, query without
    /// `deployId`), with the configured serve origin and path applied; and the `deployId`.
    fn app_url(&self, parts: &Parts) -> (String, Option<String>) {
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
        let mut deploy_id = None;
        let kept: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, v): &(String, String)| {
                if k == "deployId" {
                    deploy_id = Some(v.clone());
                }
                k != "deployId" && k != "probe"
            })
            .collect();
        let mut url = format!("{scheme}://{host}{}", parts.uri.path());
        if !kept.is_empty() {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(kept)
                .finish();
            url = format!("{url}?{query}");
        }
        (self.apply_overrides(&url), deploy_id)
    }

    fn apply_overrides(&self, raw: &str) -> String {
        let config = self.inner.client.config();
        if config.serve_origin.is_none() && config.serve_path.is_none() {
            return raw.to_owned();
        }
        let Ok(mut url) = url::Url::parse(raw) else {
            return raw.to_owned();
        };
        if let Some(origin) = &config.serve_origin {
            let origin = if origin.contains("://") {
                origin.clone()
            } else {
                format!("{}://{origin}", url.scheme())
            };
            if let Ok(origin) = url::Url::parse(&origin) {
                let _ = url.set_scheme(origin.scheme());
                let _ = url.set_host(origin.host_str());
                let _ = url.set_port(origin.port());
            }
        }
        if let Some(path) = &config.serve_path {
            url.set_path(path);
        }
        url.to_string()
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
                f.opts.to_json(app_id, &format!("{url}{separator}{query}"))
            })
            .collect()
    }
}
