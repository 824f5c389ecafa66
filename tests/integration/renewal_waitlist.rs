//! Renewal keeps the seat, and the waitlist: a buyer in grace (or on their last session) renews
//! with a full mentor and keeps their seat; a full mentor's released seat is offered to the
//! first in line for 24 hours, then to the next, and nobody else can take it meanwhile.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::order::PaidAmounts;
use huckleberry::models::seat::SeatOf;
use huckleberry::models::waitlist::{SeatOffer, WaitlistEntry};
use huckleberry::models::{
    OfferStatus, Product, Provider, ReleaseReason, SeatReservation, SeatStatus, SessionPack, User,
    UserProfile, WaitlistStatus,
};
use huckleberry::payments::PaymentsError;
use huckleberry::payments::fulfilment::{ConfirmedPayment, Fulfilment, fulfil};
use huckleberry::relay::forward_due;
use huckleberry::schema::{seat_reservations, session_packs};
use huckleberry::{seats, sessions};
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::onboarding::{emails_sent, mock_resend};
use crate::util::{TestApp, fixture, forwarded, session_token, spawn_app};

const MENTEE: &str = "user_mentee";
const OTHER: &str = "user_other";

/// Pays for `clerk_id`'s pending order of `product`, as a Stripe webhook would.
async fn pay(app: &TestApp, order_id: Uuid) -> Fulfilment {
    let checkout_id = format!("cs_{}", order_id.simple());
    app.set_checkout_id(order_id, &checkout_id).await;
    let mut conn = app.conn().await;
    let paid = ConfirmedPayment {
        order_id,
        provider: Provider::Stripe,
        provider_payment_id: format!("pi_{}", order_id.simple()),
        provider_checkout_id: checkout_id,
        amounts: PaidAmounts {
            total: "200.00".parse().expect("decimal"),
            original: "200.00".parse().expect("decimal"),
            discount: "0".parse().expect("decimal"),
            discount_code: None,
            currency: "usd".into(),
        },
    };
    fulfil(&mut conn, &paid).await.expect("fulfilled")
}

/// A checkout of `product` by `clerk_id`, paid.
async fn buy(app: &TestApp, product: &Product, clerk_id: &str) -> Fulfilment {
    let pending = app.pending_order(product, clerk_id, Provider::Stripe).await;
    pay(app, pending.order.id).await
}

async fn seat(app: &TestApp, id: Uuid) -> SeatReservation {
    let mut conn = app.conn().await;
    seat_reservations::table
        .find(id)
        .select(SeatReservation::as_select())
        .first(&mut conn)
        .await
        .expect("the seat")
}

async fn pack(app: &TestApp, id: Uuid) -> SessionPack {
    let mut conn = app.conn().await;
    SessionPack::find(&mut conn, id)
        .await
        .expect("query")
        .expect("the pack")
}

/// What `session-completed-handler` leaves after a pack's last session: depleted, seat in grace.
async fn enter_grace(app: &TestApp, f: &Fulfilment) {
    let mut conn = app.conn().await;
    diesel::update(session_packs::table.find(f.pack_id))
        .set((
            session_packs::remaining_sessions.eq(0),
            session_packs::status.eq("depleted"),
        ))
        .execute(&mut conn)
        .await
        .expect("pack depleted");
    diesel::update(seat_reservations::table.find(f.seat_id))
        .set((
            seat_reservations::status.eq(SeatStatus::Grace),
            seat_reservations::grace_period_ends_at.eq(Utc::now() + Duration::hours(72)),
        ))
        .execute(&mut conn)
        .await
        .expect("seat in grace");
}

async fn sessions_left(app: &TestApp, f: &Fulfilment, remaining: i32) {
    let mut conn = app.conn().await;
    diesel::update(session_packs::table.find(f.pack_id))
        .set(session_packs::remaining_sessions.eq(remaining))
        .execute(&mut conn)
        .await
        .expect("sessions used");
}

fn is_mentor_full<T: std::fmt::Debug>(result: &Result<T, PaymentsError>) -> bool {
    matches!(result, Err(PaymentsError::NoFreeSeat))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_during_grace_keeps_the_seat_with_the_mentor_full() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let first = buy(&app, &product, MENTEE).await;
    enter_grace(&app, &first).await;
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(is_mentor_full(&other), "{other:?}");

    let renewal = app
        .try_checkout(&product, MENTEE, Provider::Stripe)
        .await
        .expect("a renewal needs no free seat");
    let hold = app.seat(renewal.order.id).await;
    assert_eq!(
        (hold.status, hold.renews_seat_id),
        (SeatStatus::Held, Some(first.seat_id))
    );
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(is_mentor_full(&other), "the seat in grace still counts");

    let renewed = pay(&app, renewal.order.id).await;
    assert_eq!(renewed.seat_id, first.seat_id, "the same seat, kept");
    let kept = seat(&app, first.seat_id).await;
    let new_pack = pack(&app, renewed.pack_id).await;
    assert_eq!(
        (kept.status, kept.session_pack_id, kept.grace_period_ends_at),
        (SeatStatus::Active, Some(new_pack.id), None)
    );
    assert_eq!(kept.seat_expires_at, Some(new_pack.expires_at));
    let hold = app.seat(renewal.order.id).await;
    assert_eq!(
        (hold.status, hold.release_reason),
        (SeatStatus::Released, Some(ReleaseReason::Renewed))
    );
    let mut conn = app.conn().await;
    assert_eq!(
        SeatReservation::occupied(&mut conn, product.mentor_id)
            .await
            .expect("count"),
        1,
        "never more seats than the capacity"
    );
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(is_mentor_full(&other), "{other:?}");

    // A replayed fulfilment changes nothing; the old pack's grace ending releases nothing.
    assert_eq!(pay(&app, renewal.order.id).await, renewed);
    let released = seats::release(
        &mut conn,
        SeatOf::Pack(first.pack_id),
        ReleaseReason::GraceEnded,
    )
    .await
    .expect("release");
    assert!(released.is_none(), "the old pack has no seat any more");
    assert_eq!(seat(&app, first.seat_id).await.status, SeatStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_with_one_session_left_keeps_the_seat_and_the_last_session() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let first = buy(&app, &product, MENTEE).await;
    let early = app.try_checkout(&product, MENTEE, Provider::Stripe).await;
    assert!(
        is_mentor_full(&early),
        "with sessions to spare, a second pack needs a second seat"
    );

    sessions_left(&app, &first, 1).await;
    let renewal = app
        .try_checkout(&product, MENTEE, Provider::Stripe)
        .await
        .expect("renewal on the last session");
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(is_mentor_full(&other), "{other:?}");
    let renewed = pay(&app, renewal.order.id).await;
    assert_eq!(renewed.seat_id, first.seat_id);
    let kept = seat(&app, first.seat_id).await;
    assert_eq!(
        (kept.status, kept.session_pack_id),
        (SeatStatus::Active, Some(renewed.pack_id))
    );

    // The old pack's last session is still there to book, on the seat it passed on.
    let mut conn = app.conn().await;
    let at = Utc::now() + Duration::days(2);
    let booked = sessions::book(&mut conn, MENTEE, first.pack_id, at, Utc::now())
        .await
        .expect("the old pack's last session books");
    assert_eq!(booked.session_pack_id, first.pack_id);
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(is_mentor_full(&other), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_whose_seat_was_released_meanwhile_takes_its_place_as_a_purchase() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let first = buy(&app, &product, MENTEE).await;
    enter_grace(&app, &first).await;
    let renewal = app.pending_order(&product, MENTEE, Provider::Stripe).await;
    let mut conn = app.conn().await;
    seats::release(
        &mut conn,
        SeatOf::Pack(first.pack_id),
        ReleaseReason::GraceEnded,
    )
    .await
    .expect("release")
    .expect("released");
    let other = app.try_checkout(&product, OTHER, Provider::Stripe).await;
    assert!(
        is_mentor_full(&other),
        "the renewal's hold took the released seat's place"
    );
    let renewed = pay(&app, renewal.order.id).await;
    assert_ne!(renewed.seat_id, first.seat_id, "a seat of its own");
    let new_seat = seat(&app, renewed.seat_id).await;
    assert_eq!(
        (new_seat.status, new_seat.session_pack_id),
        (SeatStatus::Active, Some(renewed.pack_id))
    );
    assert_eq!(
        SeatReservation::occupied(&mut conn, product.mentor_id)
            .await
            .expect("count"),
        1
    );
}

async fn join(app: &TestApp, clerk_id: &str, mentor_id: Uuid) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(&format!("/api/mentors/{mentor_id}/waitlist")))
        .bearer_auth(session_token(clerk_id, 60))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn http_checkout(app: &TestApp, clerk_id: &str, product: &Product) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(session_token(clerk_id, 60))
        .json(&json!({ "product_id": product.id, "provider": "stripe" }))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A Stripe refund of the whole payment, run through `process-stripe-refund`.
async fn refund(app: &TestApp, f: &Fulfilment) {
    let event = Event::new(
        "stripe/charge.refunded",
        json!({
            "chargeId": "ch_refund",
            "paymentIntentId": format!("pi_{}", f.order_id.simple()),
            "amount": 20000,
            "amountRefunded": 20000,
            "currency": "usd",
        }),
    );
    let outcome: Value = app
        .engine
        .run("process-stripe-refund", event)
        .await
        .output();
    assert_eq!(outcome["seat_released"], true, "{outcome}");
}

/// The event the relay delivered with this id.
async fn delivered(app: &TestApp, event_id: &str) -> Event<Value> {
    forward_due(&app.state).await.expect("relay pass");
    let mut events = forwarded(app, event_id);
    assert_eq!(events.len(), 1, "{event_id} reached Inngest once");
    events.remove(0)
}

async fn set_email(app: &TestApp, clerk_id: &str, email: &str) {
    let mut conn = app.conn().await;
    User::upsert(
        &mut conn,
        &UserProfile {
            clerk_id: clerk_id.into(),
            email: Some(email.into()),
            first_name: Some("Ada".into()),
            last_name: None,
        },
    )
    .await
    .expect("user");
}

/// Clerk knows the second buyer; our users table does not have their address yet.
async fn mock_clerk_user(app: &TestApp, clerk_id: &str, email: &str) {
    let user = fixture("clerk/user.json")
        .replace("user_clerk_1", clerk_id)
        .replace("ada@example.com", email)
        .replace("\"Ada\"", "\"Bea\"");
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{clerk_id}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(user, "application/json"))
        .mount(&app.clerk)
        .await;
}

async fn mock_stripe_session(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("stripe/checkout_session_created.json"),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
}

async fn offers(app: &TestApp) -> Vec<SeatOffer> {
    use huckleberry::schema::seat_offers;
    let mut conn = app.conn().await;
    seat_offers::table
        .order(seat_offers::created_at)
        .select(SeatOffer::as_select())
        .load(&mut conn)
        .await
        .expect("offers")
}

async fn user_id(app: &TestApp, clerk_id: &str) -> Uuid {
    let mut conn = app.conn().await;
    User::by_clerk_id(&mut conn, clerk_id)
        .await
        .expect("query")
        .expect("the user")
        .id
}

fn recipients(sent: &[(String, Value)]) -> Vec<String> {
    sent.iter()
        .map(|(_, body)| body["to"][0].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_seat_goes_down_the_waitlist_and_nobody_else_can_take_it() {
    let app = spawn_app().await;
    mock_resend(&app, 0).await;
    mock_clerk_user(&app, "user_second", "bea@example.com").await;
    mock_stripe_session(&app).await;
    let product = app.seed_product(1).await;
    let mentor = product.mentor_id;
    let holder = buy(&app, &product, "user_holder").await;

    // Two in line, in order; joining twice is one entry.
    let (status, first_entry) = join(&app, "user_first", mentor).await;
    assert_eq!(status, 201, "{first_entry}");
    assert_eq!(first_entry["position"], 1);
    let (status, again) = join(&app, "user_first", mentor).await;
    assert_eq!((status, &again["entryId"]), (200, &first_entry["entryId"]));
    let (status, second_entry) = join(&app, "user_second", mentor).await;
    assert_eq!((status, second_entry["position"].clone()), (201, json!(2)));
    set_email(&app, "user_first", "ada@example.com").await;

    // A refund releases the seat; the offer goes to the first in line, with an email.
    refund(&app, &holder).await;
    let released = delivered(&app, &format!("seat-released-{}", holder.seat_id)).await;
    let run: Value = app
        .engine
        .run("offer-released-seat", released.clone())
        .await
        .output();
    let first = user_id(&app, "user_first").await;
    assert_eq!(run["userId"], json!(first));
    let sent = emails_sent(&app).await;
    assert_eq!(recipients(&sent), ["ada@example.com"]);
    let offer_key = format!("seat-offer-{}", run["offerId"].as_str().expect("offer id"));
    assert_eq!(sent[0].0, offer_key);
    assert!(
        sent[0].1["text"]
            .as_str()
            .expect("text")
            .contains("first on the waitlist")
    );
    let (status, body) = http_checkout(&app, "user_third", &product).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("mentor_full")));
    let (status, body) = http_checkout(&app, "user_second", &product).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("mentor_full")));
    let mut conn = app.conn().await;
    let mine = WaitlistEntry::for_user(&mut conn, first)
        .await
        .expect("query");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].status, WaitlistStatus::Offered);
    assert!(mine[0].offer.is_some(), "the dashboard shows the offer");
    let me: Value = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(session_token("user_first", 300))
        .send()
        .await
        .expect("the app answers")
        .json()
        .await
        .expect("json");
    assert_eq!(me["waitlist"][0]["status"], "offered", "{me}");
    assert_eq!(me["waitlist"][0]["offer"]["offerId"], run["offerId"]);
    assert_eq!(me["waitlist"][0]["mentorId"], json!(mentor));

    // The same release again, replayed or re-sent: no second offer, no second email.
    app.engine
        .run("offer-released-seat", released.clone())
        .await
        .output::<Value>();
    let resent = Event::new("seat/released", released.data.clone()).with_id("a-duplicate");
    let again: Value = app.engine.run("offer-released-seat", resent).await.output();
    assert_eq!(again["offerId"], run["offerId"]);
    assert_eq!(offers(&app).await.len(), 1);
    assert_eq!(emails_sent(&app).await.len(), 1);

    // The first lets it lapse (the run sleeps until the offer expires): the second gets it.
    let offered = delivered(
        &app,
        &format!("seat-offered-{}", run["offerId"].as_str().expect("id")),
    )
    .await;
    let lapse = app.engine.run("lapse-seat-offer", offered.clone()).await;
    assert_eq!(lapse.sleeps()[0].0, "wait-for-expiry");
    let lapse: Value = lapse.output();
    let second = user_id(&app, "user_second").await;
    assert_eq!(
        (lapse["status"].as_str(), &lapse["nextUserId"]),
        (Some("lapsed"), &json!(second))
    );
    assert_eq!(
        recipients(&emails_sent(&app).await),
        ["ada@example.com", "bea@example.com"]
    );
    let replay: Value = app.engine.run("lapse-seat-offer", offered).await.output();
    assert_eq!(replay["nextOfferId"], lapse["nextOfferId"], "one successor");
    assert_eq!(emails_sent(&app).await.len(), 2);
    for late in ["user_first", "user_third"] {
        let (status, body) = http_checkout(&app, late, &product).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("mentor_full")),
            "{late}"
        );
    }

    // The second checks out: the offer is taken and their hold takes its place.
    let (status, body) = http_checkout(&app, "user_second", &product).await;
    assert_eq!(status, 200, "{body}");
    let order_id: Uuid = serde_json::from_value(body["order_id"].clone()).expect("order id");
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Held);
    let all = offers(&app).await;
    assert_eq!(
        all.iter().map(|o| o.status).collect::<Vec<_>>(),
        [OfferStatus::Lapsed, OfferStatus::Taken]
    );
    assert_eq!(all[1].order_id, Some(order_id));
    assert!(
        WaitlistEntry::for_user(&mut conn, second)
            .await
            .expect("query")
            .is_empty(),
        "out of the line once bought"
    );
    let taken = delivered(&app, &format!("seat-offered-{}", all[1].id)).await;
    let done: Value = app.engine.run("lapse-seat-offer", taken).await.output();
    assert_eq!(
        (done["status"].as_str(), &done["nextOfferId"]),
        (Some("taken"), &Value::Null)
    );
    let (status, body) = http_checkout(&app, "user_third", &product).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("mentor_full")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_needs_a_full_mentor_and_a_release_with_nobody_waiting_offers_nothing() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let (status, body) = join(&app, "user_early", product.mentor_id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("seat_available"))
    );
    let (status, body) = join(&app, "user_early", Uuid::new_v4()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let anonymous = app
        .http
        .post(app.url(&format!("/api/mentors/{}/waitlist", product.mentor_id)))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status().as_u16(), 401);

    let holder = buy(&app, &product, "user_holder").await;
    let (status, body) = join(&app, "user_holder", product.mentor_id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_seated"))
    );
    refund(&app, &holder).await;
    let released = delivered(&app, &format!("seat-released-{}", holder.seat_id)).await;
    let run: Value = app
        .engine
        .run("offer-released-seat", released)
        .await
        .output();
    assert_eq!(run["offerId"], Value::Null);
    assert!(offers(&app).await.is_empty());
    app.try_checkout(&product, "user_next", Provider::Stripe)
        .await
        .expect("the seat is free for anyone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offered_buyer_and_five_strangers_racing_for_the_seat_only_the_offered_one_gets_it() {
    let app = spawn_app().await;
    mock_resend(&app, 0).await;
    let product = app.seed_product(1).await;
    let holder = buy(&app, &product, "user_holder").await;
    assert_eq!(join(&app, "user_first", product.mentor_id).await.0, 201);
    set_email(&app, "user_first", "ada@example.com").await;
    refund(&app, &holder).await;
    let released = delivered(&app, &format!("seat-released-{}", holder.seat_id)).await;
    app.engine
        .run("offer-released-seat", released)
        .await
        .output::<Value>();

    let buyers = [
        "user_s1",
        "user_s2",
        "user_first",
        "user_s3",
        "user_s4",
        "user_s5",
    ];
    let mut racing = Vec::new();
    for buyer in buyers {
        let (state, product_id) = (app.state.clone(), product.id);
        racing.push(tokio::spawn(async move {
            let mut conn = state.conn().await.expect("conn");
            let expires = Utc::now() + Duration::minutes(35);
            let started = huckleberry::payments::checkout::start_checkout(
                &mut conn,
                buyer,
                product_id,
                Provider::Stripe,
                expires,
            )
            .await;
            (buyer, started.map(|p| p.order.id))
        }));
    }
    let mut winners = Vec::new();
    for race in racing {
        let (buyer, started) = race.await.expect("task");
        match started {
            Ok(_) => winners.push(buyer),
            Err(e) => assert!(matches!(e, PaymentsError::NoFreeSeat), "{buyer}: {e:?}"),
        }
    }
    assert_eq!(winners, ["user_first"]);
    let mut conn = app.conn().await;
    assert_eq!(
        SeatReservation::occupied(&mut conn, product.mentor_id)
            .await
            .expect("count"),
        1
    );
}
