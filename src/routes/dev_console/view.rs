//! The console page: [`ConsoleFacts`] turned into rows of text for `templates/dev/console.html`.
//! Everything is formatted here (amounts in their currency's decimals, times in UTC), so the
//! template only lays rows out.

use askama::Template;
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};

use crate::models::console::{AwaitingDiscord, ConsoleFacts};
use crate::models::{SeatStatus, SessionStatus};
use crate::money;

/// How long `onboarding-flow` waits for Discord after each email (functions/onboarding_flow.rs).
const CONNECT_WINDOW: chrono::Duration = chrono::Duration::hours(48);

/// An option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
}

pub struct OrderRow {
    pub id: String,
    pub buyer: String,
    pub product: String,
    pub provider: String,
    pub status: String,
    pub amount: String,
    pub refunded: String,
    pub created: String,
    pub paid: String,
}

pub struct PackRow {
    pub id: String,
    pub buyer: String,
    pub mentor: String,
    pub sessions_left: String,
    pub status: String,
    pub expires: String,
}

pub struct SeatRow {
    pub buyer: String,
    pub status: String,
    pub until: String,
}

pub struct MentorRow {
    pub name: String,
    pub used: usize,
    pub capacity: i32,
    pub seats: Vec<SeatRow>,
}

pub struct SessionRow {
    pub id: String,
    pub buyer: String,
    pub mentor: String,
    /// The mentor's Clerk id, whom the "complete" form acts as.
    pub mentor_clerk_id: String,
    pub scheduled: String,
    pub status: String,
    pub completable: bool,
}

pub struct AccessRow {
    pub buyer: String,
    pub mentor: String,
    pub status: String,
    pub until: String,
}

pub struct EmailRow {
    pub to: String,
    pub kind: String,
    pub status: String,
    pub sent: String,
}

pub struct InboxRow {
    pub source: String,
    pub event_type: String,
    pub event_id: String,
    pub received: String,
    pub relay: String,
    pub attempts: i32,
    pub last_error: String,
}

/// A run our database knows is waiting, and until when.
pub struct WaitingRow {
    pub function: &'static str,
    pub what: String,
    pub until: String,
}

/// `GET /dev`.
#[derive(Template)]
#[template(path = "dev/console.html")]
pub struct ConsolePage {
    pub now: String,
    /// The Inngest dev server's dashboard.
    pub inngest_dashboard: String,
    /// What the last action did (or why it was refused).
    pub notice: Option<String>,
    /// Whether the actions can act as demo users (the sandbox's Clerk stand-in is on).
    pub can_act: bool,
    /// Whether the Resend stand-in's outbox (`/sandbox/outbox`) is there to link to.
    pub outbox: bool,
    pub buyers: Vec<Choice>,
    pub products: Vec<Choice>,
    pub bookable_packs: Vec<Choice>,
    /// The booking form's first suggestion: tomorrow at 10:00 UTC (`datetime-local`).
    pub default_slot: String,
    pub orders: Vec<OrderRow>,
    pub packs: Vec<PackRow>,
    pub mentors: Vec<MentorRow>,
    pub sessions: Vec<SessionRow>,
    pub access: Vec<AccessRow>,
    pub emails: Vec<EmailRow>,
    pub inbox: Vec<InboxRow>,
    pub waiting: Vec<WaitingRow>,
}

/// `2026-12-06 14:05 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map(time).unwrap_or_else(|| "—".to_owned())
}

/// `240.00 EUR`, `15000 JPY`, `0.00 EUR`: the amount counted in its currency's minor units,
/// written with that currency's decimals.
pub fn amount(value: &BigDecimal, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let (Ok(minor), Ok(decimals)) = (
        money::to_minor_units(value, currency),
        money::exponent(currency),
    ) else {
        return format!("{value} {code}");
    };
    if decimals == 0 {
        return format!("{minor} {code}");
    }
    let unit = 10_i64.pow(decimals);
    let sign = if minor < 0 { "-" } else { "" };
    let (whole, fraction) = (minor.abs() / unit, minor.abs() % unit);
    let width = decimals as usize;
    format!("{sign}{whole}.{fraction:0width$} {code}")
}

fn short(id: uuid::Uuid) -> String {
    id.to_string()[..8].to_owned()
}

/// Who a user is, for people: their email once Clerk's profile reached our table, else a
/// demo buyer's name, else their Clerk id.
fn who(user: &crate::models::User) -> String {
    if let Some(email) = &user.email {
        return email.clone();
    }
    crate::sandbox::DEMO_BUYERS
        .iter()
        .find(|person| person.clerk_id == user.clerk_id)
        .map_or_else(|| user.clerk_id.clone(), |person| person.name.to_owned())
}

impl ConsolePage {
    /// The page for `facts`; `buyers` are the demo buyers the forms can act as (none when the
    /// console cannot act); `outbox` says whether the sandbox's outbox exists.
    pub fn new(
        facts: &ConsoleFacts,
        now: DateTime<Utc>,
        inngest_dashboard: String,
        buyers: Vec<Choice>,
        outbox: bool,
        notice: Option<String>,
    ) -> Self {
        let orders = facts
            .orders
            .iter()
            .map(|row| {
                let order = &row.order;
                OrderRow {
                    id: short(order.id),
                    buyer: who(&row.buyer),
                    product: format!("{} ({})", row.product.name, row.mentor.display_name),
                    provider: order.provider.to_string(),
                    status: order.status.to_string(),
                    amount: amount(&order.total_amount, &order.currency),
                    refunded: amount(&order.refunded_amount, &order.currency),
                    created: time(order.created_at),
                    paid: maybe_time(order.paid_at),
                }
            })
            .collect();
        let packs = facts
            .packs
            .iter()
            .map(|row| PackRow {
                id: short(row.pack.id),
                buyer: who(&row.buyer),
                mentor: row.mentor.display_name.clone(),
                sessions_left: format!(
                    "{} of {}",
                    row.pack.remaining_sessions, row.pack.total_sessions
                ),
                status: row.pack.status.to_string(),
                expires: time(row.pack.expires_at),
            })
            .collect();
        let mentors = facts
            .mentors
            .iter()
            .map(|m| MentorRow {
                name: m.mentor.display_name.clone(),
                used: m.seats.len(),
                capacity: m.mentor.seat_capacity,
                seats: m
                    .seats
                    .iter()
                    .map(|(seat, buyer)| SeatRow {
                        buyer: who(buyer),
                        status: seat.status.to_string(),
                        until: match seat.status {
                            SeatStatus::Held => maybe_time(seat.hold_expires_at),
                            SeatStatus::Grace => maybe_time(seat.grace_period_ends_at),
                            _ => maybe_time(seat.seat_expires_at),
                        },
                    })
                    .collect(),
            })
            .collect();
        let sessions = facts
            .sessions
            .iter()
            .map(|row| SessionRow {
                id: row.session.id.to_string(),
                buyer: who(&row.buyer),
                mentor: row.mentor.display_name.clone(),
                mentor_clerk_id: row.mentor.clerk_id.clone().unwrap_or_default(),
                scheduled: time(row.session.scheduled_at),
                status: row.session.status.to_string(),
                completable: row.session.status == SessionStatus::Scheduled
                    && row.mentor.clerk_id.is_some(),
            })
            .collect();
        let access = facts
            .access
            .iter()
            .map(|(grant, buyer, mentor)| AccessRow {
                buyer: who(buyer),
                mentor: mentor.display_name.clone(),
                status: match grant.revoke_reason {
                    Some(reason) => format!("{} ({reason})", grant.status),
                    None => grant.status.to_string(),
                },
                until: time(grant.granted_until),
            })
            .collect();
        let emails = facts
            .emails
            .iter()
            .map(|e| EmailRow {
                to: e.to_address.clone(),
                kind: e.kind.clone(),
                status: e.status.to_string(),
                sent: time(e.sent_at),
            })
            .collect();
        let inbox = facts
            .inbox
            .iter()
            .map(|entry| InboxRow {
                source: entry.provider.to_string(),
                event_type: entry.event_type.clone(),
                event_id: entry.provider_event_id.clone(),
                received: time(entry.received_at),
                relay: match entry.forwarded_at {
                    Some(at) => format!("sent to Inngest {}", time(at)),
                    None => format!("queued, next try {}", time(entry.next_attempt_at)),
                },
                attempts: entry.forward_attempts,
                last_error: entry.last_error.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            now: time(now),
            inngest_dashboard,
            notice,
            can_act: !buyers.is_empty(),
            outbox,
            buyers,
            products: facts
                .products
                .iter()
                .map(|(product, mentor)| Choice {
                    value: product.id.to_string(),
                    label: format!(
                        "{} with {}, {}",
                        product.name,
                        mentor.display_name,
                        amount(&product.price, &product.currency)
                    ),
                })
                .collect(),
            default_slot: (now + chrono::Duration::days(1))
                .format("%Y-%m-%dT10:00")
                .to_string(),
            bookable_packs: facts
                .bookable_packs()
                .map(|row| Choice {
                    value: format!("{}|{}", row.pack.id, row.buyer.clerk_id),
                    label: format!(
                        "{} with {} ({} left)",
                        who(&row.buyer),
                        row.mentor.display_name,
                        row.pack.remaining_sessions
                    ),
                })
                .collect(),
            orders,
            packs,
            mentors,
            sessions,
            access,
            emails,
            inbox,
            waiting: waiting(facts),
        }
    }
}

/// The runs that sleep or wait, as far as our rows say: a checkout's hold, a seat's grace
/// period, an onboarding waiting for Discord.
fn waiting(facts: &ConsoleFacts) -> Vec<WaitingRow> {
    let mut rows = Vec::new();
    for mentor in &facts.mentors {
        for (seat, buyer) in &mentor.seats {
            match seat.status {
                SeatStatus::Held => rows.push(WaitingRow {
                    function: "expire-stripe-checkout / release-abandoned-checkouts",
                    what: format!(
                        "checkout hold of {} with {}",
                        who(buyer),
                        mentor.mentor.display_name
                    ),
                    until: maybe_time(seat.hold_expires_at),
                }),
                SeatStatus::Grace => rows.push(WaitingRow {
                    function: "session-completed-handler",
                    what: format!(
                        "grace period of {} with {} (renew or the seat is released)",
                        who(buyer),
                        mentor.mentor.display_name
                    ),
                    until: maybe_time(seat.grace_period_ends_at),
                }),
                _ => {}
            }
        }
    }
    rows.extend(facts.awaiting_discord.iter().map(onboarding_wait));
    rows
}

fn onboarding_wait(wait: &AwaitingDiscord) -> WaitingRow {
    let buyer = who(&wait.buyer);
    let (what, until) = match (wait.welcome_sent_at, wait.reminder_sent_at) {
        (_, Some(reminder)) => (
            format!("{buyer} to connect Discord (reminded)"),
            time(reminder + CONNECT_WINDOW),
        ),
        (Some(welcome), None) => (
            format!("{buyer} to connect Discord (welcome email sent)"),
            time(welcome + CONNECT_WINDOW),
        ),
        (None, None) => (
            format!("{buyer}'s onboarding to start (no welcome email yet)"),
            "—".to_owned(),
        ),
    };
    WaitingRow {
        function: "onboarding-flow",
        what,
        until,
    }
}

#[cfg(test)]
mod tests {
    use super::amount;

    #[test]
    fn amounts_are_written_with_their_currencys_decimals() {
        let cases = [
            ("240", "eur", "240.00 EUR"),
            ("0", "eur", "0.00 EUR"),
            ("0.5", "usd", "0.50 USD"),
            ("15000", "jpy", "15000 JPY"),
            ("1.25", "kwd", "1.250 KWD"),
        ];
        for (value, currency, shown) in cases {
            let value = value.parse().expect("a decimal");
            assert_eq!(amount(&value, currency), shown);
        }
    }
}
