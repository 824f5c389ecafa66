//! Tables as Rust types, and the queries on them. Statuses are closed enums stored as text
//! (the database checks the same sets).

pub mod access;
pub mod console;
pub mod dashboard;
pub mod discord;
pub mod email_log;
mod inbox;
mod mismatch;
pub mod onboarding;
pub mod order;
pub mod pack;
mod payment;
mod product;
pub mod seat;
pub mod session;
mod user;
pub mod waitlist;

pub use inbox::{InboxEntry, NewInboxEntry};
pub use mismatch::PaymentMismatch;
pub use order::{NewOrder, Order};
pub use pack::SessionPack;
pub use payment::Payment;
pub use product::{Mentor, Product};
pub use seat::SeatReservation;
pub use session::Session;
pub use user::{User, UserProfile};

/// A status column: a closed set of strings, as a Rust enum.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
                 diesel::AsExpression, diesel::FromSqlRow, utoipa::ToSchema)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $(#[allow(missing_docs)] $variant),+ }

        impl $name {
            /// The stored text.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(bytes)?;
                match text.as_str() {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name)).into()),
                }
            }
        }
    };
}

text_enum!(
    /// A payment provider.
    Provider { Stripe => "stripe", Paypal => "paypal" }
);
text_enum!(
    /// Where an inbox event comes from: a payment provider's webhook, or this service itself
    /// (an event it announces, kept until Inngest has it).
    EventSource { Stripe => "stripe", Paypal => "paypal", App => "app" }
);
text_enum!(
    /// Where a booked session is. A no-show uses the session up like a completion.
    SessionStatus {
        Scheduled => "scheduled",
        Completed => "completed",
        Cancelled => "cancelled",
        NoShow => "no_show",
    }
);
text_enum!(
    /// What a product sells.
    ProductKind { OneOnOne => "one_on_one", Group => "group" }
);
text_enum!(
    /// Where an order is.
    OrderStatus {
        Pending => "pending",
        Paid => "paid",
        Expired => "expired",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
        ChargedBack => "charged_back",
    }
);
text_enum!(
    /// Where a payment is.
    PaymentStatus {
        Completed => "completed",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
        ChargedBack => "charged_back",
    }
);
text_enum!(
    /// Where a session pack is.
    PackStatus { Active => "active", Depleted => "depleted", Expired => "expired", Refunded => "refunded" }
);
text_enum!(
    /// Where a seat is.
    SeatStatus { Held => "held", Active => "active", Grace => "grace", Released => "released" }
);
text_enum!(
    /// Why a seat was released.
    ReleaseReason {
        CheckoutExpired => "checkout_expired",
        Refunded => "refunded",
        GraceEnded => "grace_ended",
        PackExpired => "pack_expired",
        // A renewal's hold, settled when the renewal was paid: its seat is the renewed one.
        Renewed => "renewed",
    }
);
text_enum!(
    /// Where a buyer is in a mentor's waitlist: in line, offered a seat, or out of it (bought,
    /// or let the offer lapse).
    WaitlistStatus {
        Waiting => "waiting",
        Offered => "offered",
        Purchased => "purchased",
        Lapsed => "lapsed",
    }
);
text_enum!(
    /// Where an offer of a released seat is.
    OfferStatus { Open => "open", Taken => "taken", Lapsed => "lapsed" }
);
text_enum!(
    /// Whether dashboard access stands.
    AccessStatus { Granted => "granted", Revoked => "revoked" }
);
text_enum!(
    /// Why dashboard access was taken back.
    RevokeReason {
        Refunded => "refunded",
        SeatReleased => "seat_released",
        PackExpired => "pack_expired",
        ChargedBack => "charged_back",
    }
);
text_enum!(
    /// What became of an email.
    EmailStatus {
        Sending => "sending",
        Sent => "sent",
        Delivered => "delivered",
        Opened => "opened",
        Bounced => "bounced",
        Complained => "complained",
    }
);
text_enum!(
    /// How onboarding ended.
    OnboardingOutcome {
        Connected => "connected",
        ConnectedAfterReminder => "connected_after_reminder",
        NeverConnected => "never_connected",
    }
);
