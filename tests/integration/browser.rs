//! The dev console in a real browser: Debian's Chromium, driven by `tests/browser/console.mjs`
//! (playwright-core), buys a pack on `/dev`, pays on the Stripe stand-in and waits until `/dev`
//! shows the order paid. The app is served here in dev mode with the sandbox on (no provider
//! keys), its events going to a fake event API; this test plays Inngest meanwhile, running
//! the functions the Stripe webhook's event triggers, so "paid" is what `process-stripe-checkout`
//! wrote. Skipped with a notice when Chromium or the npm fixture is missing (scripts/test.sh
//! installs both when it can).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use inngest_sdk::testing::{EventApi, TestEngine};

use crate::util::TestDatabase;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script's own bound is 30 s for "paid" plus its page timeouts; this is the backstop.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if !fixture_dir().join("node_modules/playwright-core").exists() {
        return Some("tests/browser has no node_modules (npm ci --prefix tests/browser)".to_owned());
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node is not installed".to_owned());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_bought_through_the_dev_console_and_the_stand_ins_shows_paid() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("notice: skipping the browser test: {why}");
        return;
    }
    let database = TestDatabase::reserve();
    database.copy_template().await;
    let events = EventApi::start().await.expect("fake event API");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let state = dev_app(database.url(), &events.url(), &base).await;
    {
        let mut conn = state.conn().await.expect("a connection");
        huckleberry::demo::seed(&mut conn).await.expect("demo data");
    }
    let router = huckleberry::build_router(state.clone()).expect("router");
    tokio::spawn(huckleberry::server::serve(
        listener,
        router,
        huckleberry::server::Timeouts::default(),
        std::future::pending(),
    ));
    let relay = huckleberry::relay::spawn(state.clone());
    let engine = TestEngine::new(huckleberry::inngest_handler(&state).expect("functions"))
        .with_event_api(&events);

    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dev-console.png");
    let mut script = tokio::process::Command::new("node");
    script
        .arg(fixture_dir().join("console.mjs"))
        .current_dir(fixture_dir())
        .env("CONSOLE_URL", &base)
        .env("CHROMIUM", CHROMIUM)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // Only when asked: the committed screenshot is not rewritten by every test run.
    if std::env::var_os("DEV_CONSOLE_SCREENSHOT").is_some() {
        script.env("SCREENSHOT", &screenshot);
    }
    let mut child = script.spawn().expect("node starts");

    // Play Inngest until the script ends: every event the webhook route's relay delivers
    // runs the functions it triggers, once.
    let mut ran = HashSet::new();
    let deadline = tokio::time::Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.expect("the script ends"),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the browser script ran over {SCRIPT_TIMEOUT:?}"
        );
        for event in events.events() {
            let Some(id) = event.id.clone() else { continue };
            if !event.name.starts_with("stripe/") || !ran.insert(id) {
                continue;
            }
            for function in engine.triggered_by(&event) {
                let outcome = engine.run(&function, event.clone()).execute().await;
                eprintln!("ran {function} for {}: {outcome:?}", event.name);
            }
        }
    };
    relay.abort();
    state.db.close();
    assert!(status.success(), "the browser flow failed ({status})");
    assert!(!ran.is_empty(), "no Stripe event reached the event API");
}
