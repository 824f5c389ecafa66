//! The dashboard's HTTP API and its OpenAPI document. Both are built from one list of
//! documented handlers ([`documented`]): a route cannot be served without being described, nor
//! described without being served. The document is at `GET /api/openapi.json`.
//!
//! Every route is authenticated with the Clerk session token (`Authorization: Bearer`), and
//! every error answers the envelope `{error, message}` ([`ErrorBody`]).

pub mod me;
pub mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{self, Content, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::ErrorBody;
use crate::routes::checkout;

/// The security scheme's name in the document.
const CLERK_SESSION: &str = "clerkSession";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huckleberry dashboard API",
        description = "What the academy's dashboard reads and does: the signed-in user's packs, \
            seats and sessions (a mentor's mentees too), booking and ending sessions, and \
            checkout. Authenticate with the Clerk session token as a bearer token. Every error \
            answers `{\"error\": <stable code>, \"message\": <for people>}`."
    ),
    modifiers(&ClerkSessionScheme),
    security(("clerkSession" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "me", description = "The signed-in user's dashboard"),
        (name = "sessions", description = "Booking, moving, cancelling and ending sessions"),
        (name = "checkout", description = "Buying a pack of sessions"),
        (name = "waitlist", description = "Waiting for a full mentor's next free seat"),
    ),
)]
struct ApiDoc;

/// Every documented route of the dashboard API: the one list the router and the document
/// are both built from. A new route of the API is a new line here.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(sessions::book))
        .routes(routes!(sessions::reschedule))
        .routes(routes!(sessions::cancel))
        .routes(routes!(sessions::complete))
        .routes(routes!(sessions::no_show))
        .routes(routes!(checkout::checkout))
        .routes(routes!(crate::routes::waitlist::join_waitlist))
}

/// The dashboard API's routes, and `GET /api/openapi.json` serving their document.
pub fn router() -> Router<AppState> {
    let (router, mut doc) = documented().split_for_parts();
    describe_common_errors(&mut doc);
    let doc = Arc::new(doc);
    router.route(
        "/api/openapi.json",
        get(move || {
            let doc = Arc::clone(&doc);
            async move { axum::Json(openapi::OpenApi::clone(&doc)) }
        }),
    )
}

/// Declares the Clerk session token as the bearer scheme every route requires.
struct ClerkSessionScheme;

impl utoipa::Modify for ClerkSessionScheme {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "The Clerk session token of the signed-in user (what Clerk's `getToken()` \
                 returns in the dashboard).",
            ))
            .build();
        doc.components
            .get_or_insert_with(openapi::Components::new)
            .add_security_scheme(CLERK_SESSION, SecurityScheme::Http(scheme));
    }
}

/// The answers any route may give, described once as reusable responses and referenced from
/// each operation they apply to: every route may refuse the token or be unavailable; a route
/// with parameters may find one malformed; a route with a body may find it malformed.
fn describe_common_errors(doc: &mut openapi::OpenApi) {
    const UNAUTHORIZED: (&str, &str, &str) = (
        "401",
        "Unauthorized",
        "`unauthorized`: no Clerk session token, or not a valid one",
    );
    const UNAVAILABLE: (&str, &str, &str) = (
        "503",
        "Unavailable",
        "`unavailable`: a dependency is down; the request may be retried",
    );
    const BAD_REQUEST: (&str, &str, &str) = (
        "400",
        "BadRequest",
        "`invalid_json` (the body is not JSON) or `invalid_path` (a path parameter does not \
         parse)",
    );
    const INVALID_BODY: (&str, &str, &str) = (
        "422",
        "InvalidBody",
        "`invalid_body`: the body is JSON without the expected fields",
    );
    const MEDIA_TYPE: (&str, &str, &str) = (
        "415",
        "UnsupportedMediaType",
        "`unsupported_media_type`: the body must be sent as `application/json`",
    );
    const TOO_LARGE: (&str, &str, &str) = (
        "413",
        "PayloadTooLarge",
        "`payload_too_large`: the body is larger than the route accepts",
    );
    let all = [
        UNAUTHORIZED,
        UNAVAILABLE,
        BAD_REQUEST,
        INVALID_BODY,
        MEDIA_TYPE,
        TOO_LARGE,
    ];
    let components = doc.components.get_or_insert_with(openapi::Components::new);
    for (_, name, description) in all {
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build();
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response));
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let mut applies = vec![UNAUTHORIZED, UNAVAILABLE];
            let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = operation.request_body.is_some();
            if has_params || has_body {
                applies.push(BAD_REQUEST);
            }
            if has_body {
                applies.extend([INVALID_BODY, MEDIA_TYPE, TOO_LARGE]);
            }
            for (status, name, _) in applies {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}
