//! Snapshots of every email (subject, text, HTML) for fixed data, and the escaping rules.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a valid UTC time")
}

/// Subject, text and HTML in one snapshot, so a reviewer sees the whole email at once.
fn snapshot_of(email: &impl Email) -> String {
    let rendered = email.render().expect("test fixture");
    assert_eq!(rendered.kind, email.kind());
    assert_eq!(rendered.subject, email.subject());
    format!(
        "kind: {}\nsubject: {}\n\n===== text =====\n{}\n\n===== html =====\n{}\n",
        rendered.kind, rendered.subject, rendered.text, rendered.html
    )
}

const DISCORD: &str = "https://academy.example/discord/connect?order=6f1c&step=1";
const DASHBOARD: &str = "https://academy.example/dashboard";
const BUY: &str = "https://academy.example/mentors/grace-hopper";

fn welcome(first_name: Option<&str>) -> Welcome {
    Welcome {
        first_name: first_name.map(str::to_owned),
        mentor_name: "Grace Hopper".into(),
        sessions: 4,
        discord_link: DISCORD.into(),
    }
}

#[test]
fn welcome_email() {
    insta::assert_snapshot!("welcome", snapshot_of(&welcome(Some("Ada"))));
}

#[test]
fn welcome_without_a_first_name_greets_there() {
    let email = welcome(None).render().expect("test fixture");
    assert!(email.text.starts_with("Hi there,\n"));
    assert!(email.html.contains("Hi there,"));
    let blank = welcome(Some("  ")).render().expect("test fixture");
    assert_eq!(blank.text, email.text);
}

#[test]
fn html_special_characters_in_names_are_escaped_in_html_only() {
    let email = Welcome {
        first_name: Some(r#"<Ada & "Bob">"#.into()),
        mentor_name: "<script>alert('x')</script>".into(),
        ..welcome(None)
    };
    let rendered = email.render().expect("test fixture");
    assert!(!rendered.html.contains("<Ada"));
    assert!(!rendered.html.contains("<script>"));
    assert!(
        rendered
            .html
            .contains("Hi &#60;Ada &#38; &#34;Bob&#34;&#62;,")
    );
    assert!(rendered.text.starts_with("Hi <Ada & \"Bob\">,\n"));
    insta::assert_snapshot!("welcome_escaped", snapshot_of(&email));
}

#[test]
fn discord_reminder_email() {
    let email = DiscordReminder {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        discord_link: DISCORD.into(),
    };
    insta::assert_snapshot!("discord_reminder", snapshot_of(&email));
}

#[test]
fn access_granted_email() {
    let email = AccessGranted {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        dashboard_link: DASHBOARD.into(),
        pack_expires_at: at(2026, 3, 2, 14, 0),
    };
    insta::assert_snapshot!("access_granted", snapshot_of(&email));
}

#[test]
fn renewal_reminder_email() {
    let email = RenewalReminder {
        first_name: None,
        mentor_name: "Grace Hopper".into(),
        sessions_remaining: 1,
        renew_link: "https://academy.example/renew/6f1c".into(),
    };
    insta::assert_snapshot!("renewal_reminder", snapshot_of(&email));
    let two = RenewalReminder {
        sessions_remaining: 2,
        ..email
    };
    let rendered = two.render().expect("test fixture");
    assert_eq!(rendered.subject, "2 sessions left with Grace Hopper");
    assert!(rendered.text.contains("You have 2 sessions left"));
}

#[test]
fn seat_released_email() {
    let email = SeatReleased {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        buy_link: BUY.into(),
    };
    insta::assert_snapshot!("seat_released", snapshot_of(&email));
}

#[test]
fn pack_expired_email() {
    let email = PackExpired {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        expired_at: at(2026, 3, 2, 23, 59),
        sessions_unused: 2,
        buy_link: BUY.into(),
    };
    insta::assert_snapshot!("pack_expired", snapshot_of(&email));
}

#[test]
fn pack_expired_with_every_session_used_says_nothing_about_unused_ones() {
    let email = PackExpired {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        expired_at: at(2026, 3, 2, 23, 59),
        sessions_unused: 0,
        buy_link: BUY.into(),
    }
    .render()
    .expect("test fixture");
    assert!(!email.text.contains("unused"));
    assert!(!email.html.contains("unused"));
    assert!(
        email
            .text
            .contains("expired on Monday 2 March 2026.\n\nTo start again")
    );
}

#[test]
fn session_reminder_email() {
    let email = SessionReminder {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        starts_at: at(2026, 3, 2, 14, 0),
        dashboard_link: DASHBOARD.into(),
    };
    insta::assert_snapshot!("session_reminder", snapshot_of(&email));
}

#[test]
fn mentor_session_reminder_email() {
    let email = MentorSessionReminder {
        first_name: Some("Grace".into()),
        mentee_name: "Ada Lovelace".into(),
        starts_at: at(2026, 3, 2, 14, 0),
        dashboard_link: DASHBOARD.into(),
    };
    insta::assert_snapshot!("mentor_session_reminder", snapshot_of(&email));
}

#[test]
fn seat_offered_email() {
    let email = SeatOffered {
        first_name: Some("Ada".into()),
        mentor_name: "Grace Hopper".into(),
        expires_at: at(2026, 3, 3, 9, 30),
        checkout_link: "https://academy.example/mentors/6f1c?offer=9a2e".into(),
    };
    insta::assert_snapshot!("seat_offered", snapshot_of(&email));
}

#[test]
fn dates_read_the_same_in_every_email() {
    assert_eq!(
        format_datetime(at(2026, 3, 2, 14, 0)),
        "Monday 2 March 2026, 14:00 UTC"
    );
    assert_eq!(
        format_date(at(2026, 12, 25, 9, 5)),
        "Friday 25 December 2026"
    );
}

#[test]
fn kinds_have_stable_names_that_parse_back() {
    let names: Vec<_> = EmailKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "welcome",
            "discord_reminder",
            "access_granted",
            "renewal_reminder",
            "seat_released",
            "pack_expired",
            "session_reminder",
            "mentor_session_reminder",
            "seat_offered",
        ]
    );
    for kind in EmailKind::ALL {
        assert_eq!(
            kind.as_str().parse::<EmailKind>().expect("test fixture"),
            kind
        );
        assert_eq!(
            serde_json::to_value(kind).expect("test fixture"),
            serde_json::json!(kind.as_str())
        );
    }
    assert!("nope".parse::<EmailKind>().is_err());
}

#[test]
fn a_name_with_a_newline_cannot_break_the_subject() {
    let email = SeatReleased {
        first_name: None,
        mentor_name: "Grace\r\nBcc: x@example.com".into(),
        buy_link: BUY.into(),
    };
    assert_eq!(
        email.subject(),
        "Your seat with Grace Bcc: x@example.com has been released"
    );
}
