//! `offer-released-seat`: a seat was released; if buyers wait for its mentor, the first in line
//! gets it reserved for 24 hours and an email. `lapse-seat-offer` takes it from there. A release
//! with nobody waiting, or that freed no seat, does nothing; a duplicate or replayed release
//! finds the seat's first offer already made and sends nothing new.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::json;

use crate::app::AppState;
use crate::events::{SEAT_RELEASED, SeatReleased};
use crate::models::waitlist::SeatOffer;
use crate::waitlist::{OfferMail, WaitlistError, email_offer, offer_released_seat as offer_seat};

/// The function.
pub fn offer_released_seat() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("offer-released-seat")
                .with_name("Offer Released Seat")
                .with_trigger(Trigger::event(SEAT_RELEASED))
                .with_idempotency("event.data.seatId"),
        ),
        |ctx: Ctx<SeatReleased, AppState>| async move {
            let (step, app, data) = (&ctx.step, &ctx.state, &ctx.event.data);
            let offer: Option<SeatOffer> = step
                .run("offer-seat", || async {
                    let offer =
                        offer_seat(&mut *app.conn().await?, data.seat_id, data.mentor_id).await?;
                    // The offer's `seat/offered` waits in the inbox: deliver it now.
                    app.relay_wake.notify_one();
                    Ok::<_, WaitlistError>(offer)
                })
                .await?;
            if let Some(offer) = &offer {
                step.run("email-offer", || email_offer(offer_mail(app), offer.id))
                    .await?;
            }
            Ok(json!({
                "seatId": data.seat_id,
                "offerId": offer.as_ref().map(|o| o.id),
                "userId": offer.as_ref().map(|o| o.user_id),
            }))
        },
    )
}

/// What the offer email needs from the app.
pub(super) fn offer_mail(app: &AppState) -> OfferMail<'_> {
    OfferMail {
        db: &app.db,
        mailer: app.mailer(),
        clerk: app.clerk.as_ref(),
        public_url: &app.config.public_url,
    }
}
