//! The emails' data, subjects and templates. Each email has an HTML and a text template
//! (`templates/email/<kind>.html|txt`) extending a shared layout that says "Hi <name>,".

use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Email, EmailError, EmailKind, RenderedEmail, format_date, format_datetime, greeting_name,
    one_line, sessions_count,
};

/// After a purchase: what was bought, and the link that connects Discord.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The buyer's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// Sessions in the pack.
    pub sessions: i32,
    /// Where the buyer connects their Discord account.
    pub discord_link: String,
}

/// 48 hours after the welcome, when Discord is still not connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordReminder {
    /// The buyer's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// The same link as in the welcome.
    pub discord_link: String,
}

/// Discord is connected: the dashboard is open until the pack expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGranted {
    /// The student's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// The student's dashboard.
    pub dashboard_link: String,
    /// When the pack (and the access) ends.
    pub pack_expires_at: DateTime<Utc>,
}

/// After the second-to-last session of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalReminder {
    /// The student's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// Sessions still available in the pack (1 after session 3 of 4).
    pub sessions_remaining: i32,
    /// Where the student renews.
    pub renew_link: String,
}

/// The grace period ended and the seat went back to the mentor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatReleased {
    /// The student's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// Where to buy a new pack.
    pub buy_link: String,
}

/// A released seat is held for the first buyer on a mentor's waitlist until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatOffered {
    /// The buyer's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// When the offer lapses and the seat goes to the next in line.
    pub expires_at: DateTime<Utc>,
    /// Where the buyer checks out with the mentor.
    pub checkout_link: String,
}

/// The pack expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackExpired {
    /// The student's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// When the pack expired.
    pub expired_at: DateTime<Utc>,
    /// Sessions left unused (0: the sentence about them is left out).
    pub sessions_unused: i32,
    /// Where to buy a new pack.
    pub buy_link: String,
}

/// An upcoming session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReminder {
    /// The student's first name, if known.
    pub first_name: Option<String>,
    /// The mentor's display name.
    pub mentor_name: String,
    /// When the session starts.
    pub starts_at: DateTime<Utc>,
    /// The student's dashboard, with the session's details.
    pub dashboard_link: String,
}

/// An upcoming session, for its mentor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MentorSessionReminder {
    /// The mentor's first name, if known.
    pub first_name: Option<String>,
    /// The mentee's name ("your mentee" when unknown).
    pub mentee_name: String,
    /// When the session starts.
    pub starts_at: DateTime<Utc>,
    /// The mentor's dashboard, with the session's details.
    pub dashboard_link: String,
}

// Values the templates show, formatted once here rather than in template logic.

impl Welcome {
    fn sessions_label(&self) -> String {
        sessions_count(self.sessions)
    }
}

impl AccessGranted {
    fn expires_label(&self) -> String {
        format_datetime(self.pack_expires_at)
    }
}

impl RenewalReminder {
    fn remaining_label(&self) -> String {
        match self.sessions_remaining {
            1 => "one session".to_owned(),
            n => sessions_count(n),
        }
    }
}

impl PackExpired {
    fn expired_label(&self) -> String {
        format_date(self.expired_at)
    }

    fn unused_label(&self) -> String {
        match self.sessions_unused {
            1 => "1 unused session".to_owned(),
            n => format!("{n} unused sessions"),
        }
    }
}

impl SeatOffered {
    fn expires_label(&self) -> String {
        format_datetime(self.expires_at)
    }
}

impl SessionReminder {
    fn starts_label(&self) -> String {
        format_datetime(self.starts_at)
    }
}

impl MentorSessionReminder {
    fn starts_label(&self) -> String {
        format_datetime(self.starts_at)
    }
}

/// Declares the HTML and text templates of an email and implements [`Email`] for its data.
macro_rules! email {
    (
        $data:ident, $kind:expr,
        html: $html:ident = $html_path:tt,
        text: $text:ident = $text_path:tt,
        subject: |$e:ident| $subject:expr $(,)?
    ) => {
        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            e: &'a $data,
            name: &'a str,
            subject: &'a str,
        }

        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text<'a> {
            e: &'a $data,
            name: &'a str,
        }

        impl Email for $data {
            fn kind(&self) -> EmailKind {
                $kind
            }

            fn subject(&self) -> String {
                let $e = self;
                one_line($subject)
            }

            fn render(&self) -> Result<RenderedEmail, EmailError> {
                let kind = self.kind();
                let subject = self.subject();
                let name = greeting_name(self.first_name.as_deref());
                let failed = |source| EmailError { kind, source };
                let html = $html {
                    e: self,
                    name,
                    subject: &subject,
                }
                .render()
                .map_err(failed)?;
                let text = $text { e: self, name }.render().map_err(failed)?;
                Ok(RenderedEmail {
                    kind,
                    subject,
                    html,
                    text,
                })
            }
        }
    };
}

email! {
    Welcome, EmailKind::Welcome,
    html: WelcomeHtml = "email/welcome.html",
    text: WelcomeText = "email/welcome.txt",
    subject: |_e| format!("Welcome to {}", super::ACADEMY_NAME),
}

email! {
    DiscordReminder, EmailKind::DiscordReminder,
    html: DiscordReminderHtml = "email/discord_reminder.html",
    text: DiscordReminderText = "email/discord_reminder.txt",
    subject: |_e| "Connect your Discord to start your mentorship".to_owned(),
}

email! {
    AccessGranted, EmailKind::AccessGranted,
    html: AccessGrantedHtml = "email/access_granted.html",
    text: AccessGrantedText = "email/access_granted.txt",
    subject: |e| format!("Your mentorship with {} is ready", e.mentor_name),
}

email! {
    RenewalReminder, EmailKind::RenewalReminder,
    html: RenewalReminderHtml = "email/renewal_reminder.html",
    text: RenewalReminderText = "email/renewal_reminder.txt",
    subject: |e| match e.sessions_remaining {
        1 => format!("One session left with {}", e.mentor_name),
        n => format!("{n} sessions left with {}", e.mentor_name),
    },
}

email! {
    SeatReleased, EmailKind::SeatReleased,
    html: SeatReleasedHtml = "email/seat_released.html",
    text: SeatReleasedText = "email/seat_released.txt",
    subject: |e| format!("Your seat with {} has been released", e.mentor_name),
}

email! {
    SeatOffered, EmailKind::SeatOffered,
    html: SeatOfferedHtml = "email/seat_offered.html",
    text: SeatOfferedText = "email/seat_offered.txt",
    subject: |e| format!("A seat with {} is waiting for you", e.mentor_name),
}

email! {
    PackExpired, EmailKind::PackExpired,
    html: PackExpiredHtml = "email/pack_expired.html",
    text: PackExpiredText = "email/pack_expired.txt",
    subject: |e| format!("Your session pack with {} has expired", e.mentor_name),
}

email! {
    SessionReminder, EmailKind::SessionReminder,
    html: SessionReminderHtml = "email/session_reminder.html",
    text: SessionReminderText = "email/session_reminder.txt",
    subject: |e| format!("Reminder: your session with {} on {}", e.mentor_name, e.starts_label()),
}

email! {
    MentorSessionReminder, EmailKind::MentorSessionReminder,
    html: MentorSessionReminderHtml = "email/mentor_session_reminder.html",
    text: MentorSessionReminderText = "email/mentor_session_reminder.txt",
    subject: |e| format!("Reminder: your session with {} on {}", e.mentee_name, e.starts_label()),
}
