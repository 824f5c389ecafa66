//! The serve handler: one endpoint answering Inngest's GET (introspection), PUT (sync) and
//! POST (execution), independent of any web framework.

mod call;
mod execute;
mod introspect;
mod scan;
mod sync;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;

use crate::client::{Client, SDK_HEADER_VALUE};
use crate::config::Mode;
use crate::function::{Function, FunctionConfigError};
use crate::signature::{self, SignatureError, SigningKey, verify};

/// Request and response header names.
pub mod headers {
    /// The SDK's identity.
    pub const SDK: &str = "x-inngest-sdk";
    /// The request/response protocol version.
    pub const REQ_VERSION: &str = "x-inngest-req-version";
    /// `t=<unix secs>&s=<hex hmac>`.
    pub const SIGNATURE: &str = "x-inngest-signature";
    /// `true` when Inngest must not retry.
    pub const NO_RETRY: &str = "x-inngest-no-retry";
    /// `in_band` or `out_of_band`.
    pub const SYNC_KIND: &str = "x-inngest-sync-kind";
    /// `dev` or `cloud`, sent by the server on sync.
    pub const SERVER_KIND: &str = "x-inngest-server-kind";
    /// Echo of the server kind on `/fn/register`.
    pub const EXPECTED_SERVER_KIND: &str = "x-inngest-expected-server-kind";
    /// The Inngest environment.
    pub const ENV: &str = "x-inngest-env";
}

/// The protocol version this SDK speaks.
pub const REQ_VERSION: &str = "2";

/// Serves a set of functions over app state `S`. Cheap to clone.
pub struct ServeHandler<S> {
    inner: Arc<Inner<S>>,
    framework: &'static str,
}

impl<S> Clone for ServeHandler<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            framework: self.framework,
        }
    }
}

struct Inner<S> {
    client: Client,
    state: S,
    /// By composite id, in registration order for sync.
    functions: Vec<Function<S>>,
    /// Each function's composite id (`<app>-<function>`), at the function's index.
    composite_ids: Vec<String>,
    /// Fixed at registration: a request only looks up, so a fast hasher is safe from flooding.
    by_id: HashMap<String, usize, foldhash::fast::RandomState>,
}

impl<S: Clone + Send + Sync + 'static> ServeHandler<S> {
    /// Validates and registers `functions` (each `on_failure` handler becomes a function of
    /// its own). A rule Inngest would refuse, or a duplicate id, is an error naming the function.
    pub fn new(
        client: Client,
        state: S,
        functions: impl IntoIterator<Item = Function<S>>,
    ) -> Result<Self, FunctionConfigError> {
        let app_id = client.config().app_id().to_owned();
        if *client.config().mode() == Mode::Cloud && client.config().signing_key.is_none() {
            tracing::warn!(
                "cloud mode without INNGEST_SIGNING_KEY: every request will be refused \
                 (set INNGEST_DEV=1 for the dev server)"
            );
        }
        let mut all = Vec::new();
        for function in functions {
            let failure = function.failure_handler(&app_id);
            all.push(function);
            all.extend(failure);
        }
        let mut by_id = HashMap::default();
        let mut composite_ids = Vec::with_capacity(all.len());
        for (index, function) in all.iter().enumerate() {
            function.opts.validate()?;
            let composite = client.config().composite_id(&function.opts.id);
            composite_ids.push(composite.clone());
            if by_id.insert(composite, index).is_some() {
                return Err(FunctionConfigError {
                    function: function.opts.id.clone(),
                    rule: "another function has the same id".into(),
                });
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                state,
                functions: all,
                composite_ids,
                by_id,
            }),
            framework: "rust",
        })
    }

    /// Names the web framework in sync payloads (the axum adapter sets `axum`).
    #[must_use]
    pub fn with_framework(mut self, framework: &'static str) -> Self {
        self.framework = framework;
        self
    }

    /// The client the functions send events with.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The registered functions, failure handlers included.
    pub fn functions(&self) -> &[Function<S>] {
        &self.inner.functions
    }

    /// Answers one request to the endpoint.
    pub fn handle(&self, request: Request<Bytes>) -> impl Future<Output = Response<Bytes>> + '_ {
        // Split before the future starts, so that it holds the parts and body once, not the
        // request beside them.
        let (parts, body) = request.into_parts();
        self.answer(parts, body)
    }

    async fn answer(&self, parts: http::request::Parts, body: Bytes) -> Response<Bytes> {
        match parts.method {
            Method::GET | Method::HEAD => self.introspect(&parts.headers),
            // Syncs are rare: boxed, their future does not enlarge every execution's.
            Method::PUT => Box::pin(self.sync(&parts, &body)).await,
            Method::POST => {
                let query = CallQuery::parse(parts.uri.query());
                self.execute(&parts.headers, &query, &body).await
            }
            _ => {
                let mut response =
                    error_response(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT or POST");
                set_header(&mut response, "allow", "GET, PUT, POST");
                response
            }
        }
    }

    /// Whether answering this request needs its body. GET carries none, and in cloud mode a
    /// POST or PUT without `X-Inngest-Signature`, or with one that is malformed or outside
    /// the five-minute window, is answered without it (401, or an out-of-band sync that
    /// ignores the body), so a caller with no key cannot make the endpoint read or buffer
    /// anything with a made-up header. Adapters pass an empty body when this is false.
    pub fn needs_body(&self, parts: &http::request::Parts) -> bool {
        match parts.method {
            Method::POST | Method::PUT if self.is_dev() => true,
            Method::POST | Method::PUT => parts
                .headers
                .get(headers::SIGNATURE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|header| {
                    signature::plausible(header, chrono::Utc::now().timestamp()).is_ok()
                }),
            _ => false,
        }
    }

    /// The function `id` names (composite, or the function's own id), with its composite id.
    fn function(&self, id: &str) -> Option<(&Function<S>, &str)> {
        let inner = &self.inner;
        inner
            .by_id
            .get(id)
            .or_else(|| inner.by_id.get(&inner.client.config().composite_id(id)))
            .map(|&index| (&inner.functions[index], inner.composite_ids[index].as_str()))
    }

    fn is_dev(&self) -> bool {
        *self.inner.client.config().mode() == Mode::Dev
    }

    /// Checks the request signature. `Ok(None)` in dev mode, where the dev server signs nothing.
    fn check_signature(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<&SigningKey>, SignatureError> {
        if self.is_dev() {
            return Ok(None);
        }
        let header = headers
            .get(headers::SIGNATURE)
            .and_then(|v| v.to_str().ok());
        let keys = self.inner.client.config().signing_keys();
        verify(header, body, &keys, chrono::Utc::now().timestamp()).map(Some)
    }

    /// The key a response is signed with: the one that verified the request, else the primary.
    fn response_key<'a>(&'a self, verified: Option<&'a SigningKey>) -> Option<&'a SigningKey> {
        verified.or(self.inner.client.config().signing_key.as_ref())
    }
}

/// The query parameters of an execution request that the SDK reads.
#[derive(Default)]
struct CallQuery<'a> {
    fn_id: Option<Cow<'a, str>>,
    step_id: Option<Cow<'a, str>>,
    probe: Option<Cow<'a, str>>,
}

impl<'a> CallQuery<'a> {
    /// Reads the parameters without collecting the query; the last of a repeated one counts.
    /// A pair with nothing percent- or plus-encoded (Inngest's are plain) is only split.
    fn parse(query: Option<&'a str>) -> Self {
        let mut parsed = Self::default();
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty());
        for pair in pairs {
            let (name, value) = if pair.contains(['%', '+']) {
                match url::form_urlencoded::parse(pair.as_bytes()).next() {
                    Some(decoded) => decoded,
                    None => continue,
                }
            } else {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (Cow::Borrowed(name), Cow::Borrowed(value))
            };
            match &*name {
                "fnId" => parsed.fn_id = Some(value),
                "stepId" => parsed.step_id = Some(value),
                "probe" => parsed.probe = Some(value),
                _ => {}
            }
        }
        parsed
    }
}

/// A JSON response with the headers every SDK response carries.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Header names as constants: a `&str` name would be parsed again for every response.
    const SDK: HeaderName = HeaderName::from_static(headers::SDK);
    const VERSION: HeaderName = HeaderName::from_static(headers::REQ_VERSION);
    headers.insert(SDK, HeaderValue::from_static(SDK_HEADER_VALUE));
    headers.insert(VERSION, HeaderValue::from_static(REQ_VERSION));
    response
}

pub(crate) fn to_json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    // Room for a typical answer (one op) without growing the buffer several times.
    let mut bytes = Vec::with_capacity(256);
    match serde_json::to_writer(&mut bytes, body) {
        Ok(()) => json_response(status, bytes),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `{"message": ...}` with the standard headers.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response<Bytes> {
    to_json_response(status, &serde_json::json!({ "message": message }))
}

pub(crate) fn set_header(response: &mut Response<Bytes>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Whether the request scanner takes `text` as one JSON value: for the fuzz targets, which
/// hold it against serde_json.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn scans_as_json(text: &str) -> bool {
    let mut scanner = scan::Scanner::new(text);
    scanner.value().is_ok() && scanner.end().is_ok()
}

#[cfg(test)]
mod tests {
    use super::CallQuery;

    #[test]
    fn the_query_is_read_plain_or_encoded_and_the_last_repeat_counts() {
        let query = CallQuery::parse(Some("fnId=app-fn&stepId=step&&x&fnId=app-other"));
        assert_eq!(query.fn_id.as_deref(), Some("app-other"));
        assert_eq!(query.step_id.as_deref(), Some("step"));
        assert_eq!(query.probe, None);
        let encoded = CallQuery::parse(Some("fn%49d=app%2Dmy+fn&probe=trust&stepId"));
        assert_eq!(encoded.fn_id.as_deref(), Some("app-my fn"));
        assert_eq!(encoded.probe.as_deref(), Some("trust"));
        assert_eq!(encoded.step_id.as_deref(), Some(""));
        let empty = CallQuery::parse(None);
        assert!(empty.fn_id.is_none() && empty.step_id.is_none() && empty.probe.is_none());
    }
}
