//! The academy's transactional emails: one typed struct per email, rendered to a subject, an HTML
//! body and a plain-text body by askama templates in `templates/email/` (checked at compile time;
//! HTML is autoescaped, text is not).
//!
//! ```
//! use huckleberry::email::{Email, EmailKind, Welcome};
//!
//! let email = Welcome {
//!     first_name: Some("Ada".into()),
//!     mentor_name: "Grace Hopper".into(),
//!     sessions: 4,
//!     discord_link: "https://academy.example/discord/connect".into(),
//! }
//! .render()
//! .expect("the templates render");
//! assert_eq!(email.kind, EmailKind::Welcome);
//! assert!(email.html.contains("Hi Ada,") && email.text.contains("Hi Ada,"));
//! ```

mod messages;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use messages::{
    AccessGranted, DiscordReminder, MentorSessionReminder, PackExpired, RenewalReminder,
    SeatOffered, SeatReleased, SessionReminder, Welcome,
};

/// The academy's name, as every email spells it.
pub const ACADEMY_NAME: &str = "Huckleberry Art Academy";

/// Which email this is. `as_str` is stable: it is stored (`email_log.kind`) and sent as a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// After a purchase: the mentorship bought and the Discord link.
    Welcome,
    /// 48 hours later when Discord is still not connected.
    DiscordReminder,
    /// Discord connected: the dashboard is open until the pack expires.
    AccessGranted,
    /// After the second-to-last session: renew before the pack runs out.
    RenewalReminder,
    /// The grace period ended and the seat went back to the mentor.
    SeatReleased,
    /// The pack expired with sessions unused.
    PackExpired,
    /// An upcoming session.
    SessionReminder,
    /// An upcoming session, for its mentor.
    MentorSessionReminder,
    /// A released seat is held for the first buyer on the mentor's waitlist.
    SeatOffered,
}

impl EmailKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EmailKind; 9] = [
        EmailKind::Welcome,
        EmailKind::DiscordReminder,
        EmailKind::AccessGranted,
        EmailKind::RenewalReminder,
        EmailKind::SeatReleased,
        EmailKind::PackExpired,
        EmailKind::SessionReminder,
        EmailKind::MentorSessionReminder,
        EmailKind::SeatOffered,
    ];

    /// The stable snake_case name, e.g. `"discord_reminder"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailKind::Welcome => "welcome",
            EmailKind::DiscordReminder => "discord_reminder",
            EmailKind::AccessGranted => "access_granted",
            EmailKind::RenewalReminder => "renewal_reminder",
            EmailKind::SeatReleased => "seat_released",
            EmailKind::PackExpired => "pack_expired",
            EmailKind::SessionReminder => "session_reminder",
            EmailKind::MentorSessionReminder => "mentor_session_reminder",
            EmailKind::SeatOffered => "seat_offered",
        }
    }
}

impl fmt::Display for EmailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`EmailKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown email kind {0:?}")]
pub struct UnknownEmailKind(pub String);

impl FromStr for EmailKind {
    type Err = UnknownEmailKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownEmailKind(s.to_owned()))
    }
}

/// An email ready to send: subject, HTML and plain-text bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedEmail {
    /// Which email.
    pub kind: EmailKind,
    /// The subject line (one line, no markup).
    pub subject: String,
    /// The HTML body (user data escaped).
    pub html: String,
    /// The plain-text body.
    pub text: String,
}

/// A template failed to render (a bug in a template or in a value's `Display`, never bad data).
#[derive(Debug, thiserror::Error)]
#[error("email {kind} failed to render: {source}")]
pub struct EmailError {
    /// Which email.
    pub kind: EmailKind,
    /// The template engine's error.
    #[source]
    pub source: askama::Error,
}

/// One of the academy's emails.
pub trait Email {
    /// Which email this is.
    fn kind(&self) -> EmailKind;
    /// The subject line.
    fn subject(&self) -> String;
    /// Renders the subject and both bodies.
    fn render(&self) -> Result<RenderedEmail, EmailError>;
}

/// `first_name` when it has something in it, else "there" ("Hi there,").
pub fn greeting_name(first_name: Option<&str>) -> &str {
    first_name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("there")
}

/// A date and time as every email shows it: `Monday 2 March 2026, 14:00 UTC`.
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y, %H:%M UTC").to_string()
}

/// A date as every email shows it (in UTC): `Monday 2 March 2026`.
pub fn format_date(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y").to_string()
}

/// `1 session`, `4 sessions`.
fn sessions_count(n: i32) -> String {
    match n {
        1 => "1 session".to_owned(),
        n => format!("{n} sessions"),
    }
}

/// A subject line never spans lines, whatever a name holds.
fn one_line(subject: String) -> String {
    if subject.contains(['\r', '\n']) {
        subject.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        subject
    }
}
