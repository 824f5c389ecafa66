//! `lapse-seat-offer`: a seat was offered to a buyer in line; when the offer expires, unless
//! they checked out in time, it lapses and the seat is offered to the next in line in the same
//! transaction (who gets an email, and a run of this function of their own). Replays and
//! duplicate events find the offer already lapsed and its successor already made.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::json;

use super::offer_released_seat::offer_mail;
use crate::app::AppState;
use crate::events::{SEAT_OFFERED, SeatOfferMade};
use crate::waitlist::{Lapse, WaitlistError, email_offer, lapse_offer};

/// The function.
pub fn lapse_seat_offer() -> Function<AppState> {
    Function::new(
        // An offer left open counts as a taken seat: lapsing it must outlast an outage.
        super::money_path_retries(
            FunctionOpts::new("lapse-seat-offer")
                .with_name("Lapse Seat Offer")
                .with_trigger(Trigger::event(SEAT_OFFERED))
                .with_idempotency("event.data.offerId"),
        ),
        |ctx: Ctx<SeatOfferMade, AppState>| async move {
            let (step, app, data) = (&ctx.step, &ctx.state, &ctx.event.data);
            step.sleep_until("wait-for-expiry", data.expires_at).await;
            let lapse: Lapse = step
                .run("lapse-offer", || async {
                    let lapse = lapse_offer(&mut *app.conn().await?, data.offer_id).await?;
                    if lapse.next.is_some() {
                        app.relay_wake.notify_one();
                    }
                    Ok::<_, WaitlistError>(lapse)
                })
                .await?;
            if let Some(next) = &lapse.next {
                step.run("email-next-offer", || email_offer(offer_mail(app), next.id))
                    .await?;
            }
            Ok(json!({
                "offerId": data.offer_id,
                "status": lapse.status,
                "nextOfferId": lapse.next.as_ref().map(|o| o.id),
                "nextUserId": lapse.next.as_ref().map(|o| o.user_id),
            }))
        },
    )
}
