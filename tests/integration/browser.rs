//! The dev console in a real browser: Debian's Chromium, driven by `tests/browser/console.mjs`
//! (playwright-core), buys a pack on `/dev`, pays on the Stripe stand-in and waits until `/dev`
//! shows the order paid. The app runs here as `huckleberry dev` serves it ([`DevApp`]), with the
//! SDK's executor playing Inngest, so "paid" is what `process-stripe-checkout` wrote when the
//! Stripe stand-in's signed webhook went through our webhook route, inbox and relay. Skipped with a notice when Chromium or the
//! npm fixture is missing (scripts/test.sh installs both when it can).
//!
//! `DEV_CONSOLE_SCREENSHOT=1` also saves `docs/dev-console.png` (the README's screenshot).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::util::dev_app::DevApp;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script bounds each step (15 s) and "paid" (30 s); this is the backstop.
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
        return Some(
            "tests/browser has no node_modules (npm ci --prefix tests/browser)".to_owned(),
        );
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
    let app = DevApp::spawn().await;
    let mut script = tokio::process::Command::new("node");
    script
        .arg(fixture_dir().join("console.mjs"))
        .current_dir(fixture_dir())
        .env("CONSOLE_URL", app.url(""))
        .env("CHROMIUM", CHROMIUM)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // Only when asked: a test run does not rewrite the committed screenshot.
    if std::env::var_os("DEV_CONSOLE_SCREENSHOT").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dev-console.png");
        script.env("SCREENSHOT", path);
    }
    let mut child = script.spawn().expect("node starts");

    // The service's executor plays Inngest meanwhile; the script is bounded, this is the backstop.
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the browser script ran over {SCRIPT_TIMEOUT:?}"))
        .expect("the script ends");
    let runs = app.service.finished();
    assert!(
        status.success(),
        "the browser flow failed ({status}); runs: {runs:?}"
    );
    assert!(
        runs.iter().any(
            |(function, event, result)| function == "process-stripe-checkout"
                && event == "stripe/checkout.session.completed"
                && result.is_ok()
        ),
        "the payment reached Inngest as a Stripe event and was processed: {runs:?}"
    );
}
