//! The dashboard API through HTTP with real Clerk session tokens: `GET /api/me` for a mentee
//! and a mentor, booking and its refusals, rescheduling, cancelling and ending sessions, the
//! events each change leaves in the inbox and the relay delivers, the error envelope, and the
//! OpenAPI document describing every route the router serves.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::seat::SeatOf;
use huckleberry::models::{ReleaseReason, User};
use huckleberry::relay::forward_due;
use huckleberry::schema::{seat_reservations, session_packs, webhook_inbox};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::sessions::pack;
use crate::util::{TestApp, session_token, spawn_app};

use crate::sessions::{MENTEE, MENTOR};
const STRANGER: &str = "user_stranger";

/// A time `days` from now, in whole seconds (the wire carries RFC 3339).
fn in_days(days: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(days)).trunc_subsecs(0)
}

fn at(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("an RFC 3339 time: {value}"))
}

/// Sends a request as `who` (no token when `None`); answers the status and the JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(user) = who {
        request = request.bearer_auth(session_token(user, 300));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the app answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn me(app: &TestApp, who: &str) -> Value {
    let (status, body) = call(app, Method::GET, "/api/me", Some(who), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn book(app: &TestApp, who: &str, pack_id: Uuid, when: DateTime<Utc>) -> (u16, Value) {
    let body = json!({ "packId": pack_id, "scheduledAt": when });
    call(app, Method::POST, "/api/sessions", Some(who), Some(body)).await
}

/// Asserts the handler woke the relay (the tests run no relay, so the wake-up waits here).
async fn assert_relay_woken(app: &TestApp, what: &str) {
    let woken = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        app.state.relay_wake.notified(),
    )
    .await;
    assert!(woken.is_ok(), "{what} wakes the relay");
}

/// Books and expects it to work; the session's id.
async fn booked(app: &TestApp, pack_id: Uuid, when: DateTime<Utc>) -> Uuid {
    let (status, body) = book(app, MENTEE, pack_id, when).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "scheduled");
    assert_eq!(at(&body["scheduledAt"]), when);
    assert_relay_woken(app, "a booking").await;
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a session id")
}

async fn session_action(app: &TestApp, who: &str, id: Uuid, action: &str) -> (u16, Value) {
    let path = format!("/api/sessions/{id}/{action}");
    call(app, Method::POST, &path, Some(who), None).await
}

/// Asserts an error answer: its status and code.
fn refused(answer: &(u16, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The app's own events in the inbox, as (name, event id), oldest first.
async fn announced(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = app.conn().await;
    webhook_inbox::table
        .filter(webhook_inbox::provider.eq("app"))
        .order(webhook_inbox::received_at)
        .select((webhook_inbox::event_type, webhook_inbox::provider_event_id))
        .load(&mut conn)
        .await
        .expect("inbox")
}

/// Runs the relay and checks every announced event reached the Inngest event API.
async fn assert_all_delivered(app: &TestApp) {
    forward_due(&app.state).await.expect("relay pass");
    let sent = app.events.events();
    for (name, id) in announced(app).await {
        let matching: Vec<_> = sent
            .iter()
            .filter(|e| e.id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "{name} {id} delivered once");
        assert_eq!(matching[0].name, name);
    }
}

async fn set_seat(app: &TestApp, pack_id: Uuid, status: &str, grace_ends: Option<DateTime<Utc>>) {
    let mut conn = app.conn().await;
    diesel::update(seat_reservations::table)
        .filter(seat_reservations::session_pack_id.eq(pack_id))
        .set((
            seat_reservations::status.eq(status),
            seat_reservations::grace_period_ends_at.eq(grace_ends),
        ))
        .execute(&mut conn)
        .await
        .expect("set the seat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_shows_a_mentee_and_their_mentor_the_pack_seat_sessions_and_access() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    {
        let mut conn = app.conn().await;
        DashboardAccess::grant(
            &mut conn,
            pack.user_id,
            pack.mentor_id,
            pack.id,
            pack.expires_at,
        )
        .await
        .expect("access");
        DiscordConnection::connect(&mut conn, pack.user_id, "discord-1", "ada_draws")
            .await
            .expect("discord");
    }
    let (first, second) = (in_days(3), in_days(1));
    booked(&app, pack.id, first).await;
    booked(&app, pack.id, second).await;

    let mine = me(&app, MENTEE).await;
    assert_eq!(mine["mentor"], Value::Null);
    assert_eq!(mine["discord"]["connected"], true);
    assert_eq!(mine["discord"]["username"], "ada_draws");
    let p = &mine["packs"][0];
    assert_eq!(mine["packs"].as_array().map(Vec::len), Some(1));
    assert_eq!(p["id"], pack.id.to_string());
    assert_eq!(p["mentor"]["id"], pack.mentor_id.to_string());
    assert_eq!(p["mentor"]["displayName"], "Ada Mentor");
    assert_eq!(p["status"], "active");
    assert_eq!(
        (&p["totalSessions"], &p["remainingSessions"]),
        (&json!(4), &json!(4))
    );
    assert_eq!(p["scheduledSessions"], 2);
    assert_eq!(at(&p["expiresAt"]), pack.expires_at);
    assert_eq!(p["seat"]["status"], "active");
    assert_eq!(p["seat"]["graceEndsAt"], Value::Null);
    assert_eq!(p["access"]["status"], "granted");
    let upcoming: Vec<DateTime<Utc>> = mine["upcomingSessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| at(&s["scheduledAt"]))
        .collect();
    assert_eq!(upcoming, vec![second, first], "earliest first");

    let mentor = me(&app, MENTOR).await;
    assert_eq!(mentor["packs"], json!([]), "the mentor bought nothing");
    let m = &mentor["mentor"];
    assert_eq!(m["id"], pack.mentor_id.to_string());
    assert_eq!(
        (&m["seatsUsed"], &m["seatCapacity"]),
        (&json!(1), &json!(3))
    );
    let mentee = &m["mentees"][0];
    assert_eq!(mentee["userId"], pack.user_id.to_string());
    assert_eq!(mentee["discord"]["connected"], true);
    assert_eq!(
        mentee["packs"], mine["packs"],
        "the mentor sees the same facts"
    );
    assert_eq!(mentee["upcomingSessions"], mine["upcomingSessions"]);

    // Every session used: the seat is kept in grace until a given time.
    let grace_ends = in_days(3);
    set_seat(&app, pack.id, "grace", Some(grace_ends)).await;
    for who in [MENTEE, MENTOR] {
        let body = me(&app, who).await;
        let seat = if who == MENTEE {
            &body["packs"][0]["seat"]
        } else {
            &body["mentor"]["mentees"][0]["packs"][0]["seat"]
        };
        assert_eq!(seat["status"], "grace", "{who}");
        assert_eq!(at(&seat["graceEndsAt"]), grace_ends, "{who}");
    }

    // Released: the seat is free again and access is taken back.
    {
        let mut conn = app.conn().await;
        huckleberry::seats::release(&mut conn, SeatOf::Pack(pack.id), ReleaseReason::GraceEnded)
            .await
            .expect("release")
            .expect("released now");
        DashboardAccess::revoke(
            &mut conn,
            pack.id,
            huckleberry::models::RevokeReason::SeatReleased,
        )
        .await
        .expect("revoke");
    }
    let mine = me(&app, MENTEE).await;
    let seat = &mine["packs"][0]["seat"];
    assert_eq!(seat["status"], "released");
    assert_eq!(seat["releaseReason"], "grace_ended");
    assert!(seat["releasedAt"].is_string());
    assert_eq!(mine["packs"][0]["access"]["status"], "revoked");
    assert_eq!(mine["packs"][0]["access"]["revokeReason"], "seat_released");
    let mentor = me(&app, MENTOR).await;
    assert_eq!(mentor["mentor"]["seatsUsed"], 0);
    assert_eq!(
        mentor["mentor"]["mentees"][0]["packs"][0]["seat"]["status"],
        "released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_for_someone_unknown_is_empty_but_well_formed() {
    let app = spawn_app().await;
    let body = me(&app, STRANGER).await;
    assert_eq!(
        body,
        json!({
            "packs": [],
            "upcomingSessions": [],
            "discord": { "connected": false, "username": null, "connectedAt": null },
            "waitlist": [],
            "mentor": null,
        })
    );
    let mut conn = app.conn().await;
    assert!(
        User::by_clerk_id(&mut conn, STRANGER)
            .await
            .expect("query")
            .is_none(),
        "reading creates nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_is_refused_with_a_code_for_each_reason() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut codes = Vec::new();
    let mut check = |answer: (u16, Value), status: u16, code: &'static str| {
        refused(&answer, status, code);
        codes.push((status, code));
    };

    check(
        book(&app, STRANGER, pack.id, in_days(2)).await,
        404,
        "not_found",
    );
    check(
        book(&app, MENTOR, pack.id, in_days(2)).await,
        404,
        "not_found",
    );
    let past = Utc::now() - Duration::hours(1);
    check(book(&app, MENTEE, pack.id, past).await, 409, "slot_in_past");
    let late = pack.expires_at + Duration::days(1);
    check(
        book(&app, MENTEE, pack.id, late).await,
        409,
        "slot_after_expiry",
    );

    let mut ids = Vec::new();
    for day in 1..=4 {
        ids.push(booked(&app, pack.id, in_days(day)).await);
    }
    check(
        book(&app, MENTEE, pack.id, in_days(5)).await,
        409,
        "no_sessions_left",
    );

    // A free session again, but the seat is in grace.
    let (status, body) = session_action(&app, MENTEE, ids[3], "cancel").await;
    assert_eq!(status, 200, "{body}");
    set_seat(&app, pack.id, "grace", Some(in_days(3))).await;
    check(
        book(&app, MENTEE, pack.id, in_days(6)).await,
        409,
        "seat_not_active",
    );

    // The seat is active but the pack has expired.
    set_seat(&app, pack.id, "active", None).await;
    {
        let mut conn = app.conn().await;
        diesel::update(session_packs::table.find(pack.id))
            .set(session_packs::expires_at.eq(Utc::now() - Duration::minutes(1)))
            .execute(&mut conn)
            .await
            .expect("expire the pack");
    }
    check(
        book(&app, MENTEE, pack.id, in_days(6)).await,
        409,
        "pack_expired",
    );

    let names: Vec<String> = announced(&app).await.into_iter().map(|(n, _)| n).collect();
    let scheduled = names.iter().filter(|n| *n == "session/scheduled").count();
    assert_eq!(scheduled, 4, "only the bookings that worked are announced");

    // The document names every code a booking is refused with.
    let (_, doc) = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    let responses = &doc["paths"]["/api/sessions"]["post"]["responses"];
    for (status, code) in codes {
        let described = responses[status.to_string()]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(described.contains(code), "{status} {code}: {described}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_mentor_completes_or_marks_a_no_show_and_completion_is_announced() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let done = booked(&app, pack.id, in_days(1)).await;
    let missed = booked(&app, pack.id, in_days(2)).await;

    for action in ["complete", "no-show"] {
        let answer = session_action(&app, MENTEE, done, action).await;
        refused(&answer, 403, "mentor_only");
        let answer = session_action(&app, STRANGER, done, action).await;
        refused(&answer, 404, "not_found");
    }
    let (status, body) = session_action(&app, MENTOR, done, "complete").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert!(body["completedAt"].is_string());
    assert_relay_woken(&app, "a completion").await;
    let answer = session_action(&app, MENTOR, done, "complete").await;
    refused(&answer, 409, "session_not_scheduled");
    let (status, body) = session_action(&app, MENTOR, missed, "no-show").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "no_show");
    let answer = session_action(&app, MENTOR, missed, "cancel").await;
    refused(&answer, 409, "session_not_scheduled");

    assert_all_delivered(&app).await;
    let completed: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "session/completed")
        .collect();
    assert_eq!(completed.len(), 2);
    let first = completed
        .iter()
        .find(|e| e.id.as_deref() == Some(format!("session-completed-{done}").as_str()))
        .expect("the completion reached Inngest");
    assert_eq!(
        first.data,
        json!({ "sessionId": done, "sessionPackId": pack.id, "userId": MENTEE })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentee_and_mentor_both_reschedule_and_cancel() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let first = booked(&app, pack.id, in_days(1)).await;
    let second = booked(&app, pack.id, in_days(2)).await;

    for (who, id, days) in [(MENTEE, first, 3), (MENTOR, second, 4)] {
        let path = format!("/api/sessions/{id}/reschedule");
        // One time for the request and the check: two calls may fall in different seconds.
        let when = in_days(days);
        let body = json!({ "scheduledAt": when });
        let (status, moved) = call(&app, Method::POST, &path, Some(who), Some(body)).await;
        assert_eq!(status, 200, "{who}: {moved}");
        assert_eq!(at(&moved["scheduledAt"]), when, "{who}");
        assert_eq!(moved["status"], "scheduled");
        assert_relay_woken(&app, "a reschedule").await;
    }
    let path = format!("/api/sessions/{first}/reschedule");
    let stranger = call(
        &app,
        Method::POST,
        &path,
        Some(STRANGER),
        Some(json!({ "scheduledAt": in_days(5) })),
    )
    .await;
    refused(&stranger, 404, "not_found");
    let taken = call(
        &app,
        Method::POST,
        &path,
        Some(MENTEE),
        Some(json!({ "scheduledAt": in_days(4) })),
    )
    .await;
    refused(&taken, 409, "slot_taken");

    for (who, id) in [(MENTEE, first), (MENTOR, second)] {
        let (status, body) = session_action(&app, who, id, "cancel").await;
        assert_eq!(status, 200, "{who}: {body}");
        assert_eq!(body["status"], "cancelled");
        assert!(body["cancelledAt"].is_string());
        assert_relay_woken(&app, "a cancellation").await;
        let again = session_action(&app, who, id, "cancel").await;
        refused(&again, 409, "session_not_scheduled");
    }

    let mut names: Vec<String> = announced(&app).await.into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "session/cancelled",
            "session/cancelled",
            "session/rescheduled",
            "session/rescheduled",
            "session/scheduled",
            "session/scheduled",
            "session/scheduled",
            "session/scheduled",
        ]
    );
    assert_all_delivered(&app).await;
    assert_eq!(app.events.events().len(), 8);
    let mine = me(&app, MENTEE).await;
    assert_eq!(mine["upcomingSessions"], json!([]));
    assert_eq!(mine["packs"][0]["scheduledSessions"], 0);
    assert_eq!(
        mine["packs"][0]["remainingSessions"], 4,
        "cancelling uses nothing up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_missing_tokens_answer_the_envelope() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let id = Uuid::new_v4();

    for (method, path) in [
        (Method::GET, "/api/me".to_owned()),
        (Method::POST, "/api/sessions".to_owned()),
        (Method::POST, format!("/api/sessions/{id}/cancel")),
    ] {
        let answer = call(&app, method, &path, None, Some(json!({}))).await;
        refused(&answer, 401, "unauthorized");
    }
    let answer = call(
        &app,
        Method::POST,
        "/api/sessions/not-a-uuid/cancel",
        Some(MENTEE),
        None,
    )
    .await;
    refused(&answer, 400, "invalid_path");
    let answer = session_action(&app, MENTOR, id, "complete").await;
    refused(&answer, 404, "not_found");

    for (body, code) in [
        (
            json!({ "packId": 7, "scheduledAt": in_days(1) }),
            "invalid_body",
        ),
        (
            json!({ "packId": pack.id, "scheduledAt": "tomorrow" }),
            "invalid_body",
        ),
        (json!({ "packId": pack.id }), "invalid_body"),
    ] {
        let answer = call(
            &app,
            Method::POST,
            "/api/sessions",
            Some(MENTEE),
            Some(body),
        )
        .await;
        refused(&answer, 422, code);
    }
    let not_json = app
        .http
        .post(app.url("/api/sessions"))
        .bearer_auth(session_token(MENTEE, 300))
        .header("content-type", "application/json")
        .body("{\"packId\": ")
        .send()
        .await
        .expect("the app answers");
    let answer = (
        not_json.status().as_u16(),
        not_json.json().await.expect("JSON"),
    );
    refused(&answer, 400, "invalid_json");
    let path = format!("/api/sessions/{id}/reschedule");
    let untyped = app
        .http
        .post(app.url(&path))
        .bearer_auth(session_token(MENTEE, 300))
        .body("{}")
        .send()
        .await
        .expect("the app answers");
    let answer = (
        untyped.status().as_u16(),
        untyped.json().await.expect("JSON"),
    );
    refused(&answer, 415, "unsupported_media_type");
    assert!(announced(&app).await.is_empty());
}

/// The routes the dashboard calls, as the issue names them.
const DASHBOARD_ROUTES: [(&str, &str); 7] = [
    ("get", "/api/me"),
    ("post", "/api/sessions"),
    ("post", "/api/sessions/{id}/reschedule"),
    ("post", "/api/sessions/{id}/cancel"),
    ("post", "/api/sessions/{id}/complete"),
    ("post", "/api/sessions/{id}/no-show"),
    ("post", "/api/checkout"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let app = spawn_app().await;
    let (status, doc) = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    let scheme = &doc["components"]["securitySchemes"]["clerkSession"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
    assert_eq!(doc["security"], json!([{ "clerkSession": [] }]));
    let envelope = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(envelope["required"], json!(["error", "message"]));

    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            documented.push((method.clone(), path.clone()));
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            let success = responses
                .iter()
                .find(|(code, _)| code.starts_with('2'))
                .unwrap_or_else(|| panic!("{what}: a success answer"));
            assert!(
                success.1["content"]["application/json"]["schema"].is_object(),
                "{what}"
            );
            assert_eq!(
                responses["401"]["$ref"], "#/components/responses/Unauthorized",
                "{what}"
            );
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("422"), "{what}");
            }

            // The router serves it, with this method, behind the token.
            let concrete = path.replace("{id}", &Uuid::new_v4().to_string());
            let method: Method = method.to_uppercase().parse().expect("a method");
            let answer = call(&app, method.clone(), &concrete, None, None).await;
            refused(&answer, 401, "unauthorized");
            let other = if method == Method::GET {
                Method::POST
            } else {
                Method::GET
            };
            let answer = call(&app, other, &concrete, None, None).await;
            refused(&answer, 405, "method_not_allowed");
        }
    }
    for (method, path) in DASHBOARD_ROUTES {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is documented: {documented:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_clerk_keys_cannot_be_fetched_the_caller_gets_503_not_401_and_then_recovers() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};

    let app = spawn_app().await;
    app.clerk.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/jwks"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&app.clerk)
        .await;
    let outage = call(&app, Method::GET, "/api/me", Some(MENTEE), None).await;
    refused(&outage, 503, "unavailable");

    app.clerk.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(crate::util::fixture("clerk/jwks.json"), "application/json"),
        )
        .mount(&app.clerk)
        .await;
    let back = call(&app, Method::GET, "/api/me", Some(MENTEE), None).await;
    assert_eq!(back.0, 200, "{}", back.1);
}
