//! The real binary at start-up: bad and missing settings, an unreachable or missing database
//! and a busy port are all reported at once in plain words with a non-zero exit; a good
//! configuration starts with a one-line summary, plain logs, and stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::database::TestDatabase;

/// The binary with exactly `vars` as its environment, run from an empty directory (so no
/// `.env` is read by accident).
fn huckleberry(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_huckleberry"));
    command
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

/// Runs the command to its end (it must not take long: the checks come first).
fn run(mut command: Command) -> Output {
    let output = command.output().expect("the binary runs");
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 on stderr")
}

/// A port nothing listens on (the kernel's choice, released again).
fn free_port() -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

/// The report the binary prints for `problems`.
fn report(problems: &[&str]) -> String {
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    let mut text = format!("huckleberry cannot start ({} {noun}):\n", problems.len());
    for problem in problems {
        text.push_str(&format!("  - {problem}\n"));
    }
    text
}

fn assert_no_debug_dump(text: &str) {
    for dump in [
        "Error:",
        "Missing(",
        "Pool(",
        "Backend(",
        "Os {",
        "AddrInUse",
    ] {
        assert!(!text.contains(dump), "a debug dump ({dump}) in:\n{text}");
    }
}

#[test]
fn every_missing_and_malformed_setting_is_listed_at_once() {
    let port = free_port().to_string();
    let output = run(huckleberry(
        &["serve"],
        &[
            ("PORT", &port),
            ("STRIPE_SECRET_KEY", "pk_test_51Abc"),
            ("STRIPE_WEBHOOK_SECRET", "secret_123"),
            ("PUBLIC_URL", "localhost:3000"),
            ("RESEND_API_KEY", "abc"),
            ("CLERK_WEBHOOK_SECRET", "svix_123"),
        ],
    ));
    let text = stderr(&output);
    assert_eq!(
        text,
        report(&[
            "DATABASE_URL is not set: it names the PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/huckleberry (scripts/dev.sh starts a local one and sets it for you)",
            "PUBLIC_URL is not a valid URL: \"localhost:3000\" (expected http:// or https:// and a host, e.g. https://example.com)",
            "STRIPE_SECRET_KEY is a publishable key (pk_...): use the secret key, which starts with sk_ (Stripe dashboard, Developers, API keys)",
            "STRIPE_WEBHOOK_SECRET does not look like a Stripe webhook signing secret (whsec_..., from the webhook endpoint's page or `stripe listen`): it should start with whsec_",
            "RESEND_API_KEY does not look like a Resend API key (re_..., from resend.com/api-keys): it should start with re_",
            "CLERK_WEBHOOK_SECRET does not look like a webhook signing secret (whsec_..., from the provider's webhook settings): it should start with whsec_",
            "INNGEST_SIGNING_KEY is not set: in cloud mode (the default) every request from Inngest is checked with it; set it from the Inngest dashboard, or set INNGEST_DEV=1 to use the local dev server",
            "INNGEST_EVENT_KEY is not set: in cloud mode (the default) events cannot be sent to Inngest without it; set it from the Inngest dashboard, or set INNGEST_DEV=1 to use the local dev server",
        ])
    );
    assert_eq!(output.status.code(), Some(1));
    assert_no_debug_dump(&text);
    assert!(!text.contains("51Abc"), "a key was echoed:\n{text}");
}

#[test]
fn a_malformed_port_and_stripe_key_and_an_unreachable_database_are_named_together() {
    let output = run(huckleberry(
        &["migrate"],
        &[
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/huckleberry",
            ),
            ("STRIPE_SECRET_KEY", "mk_test_1"),
            ("PORT", "eighty"),
        ],
    ));
    assert_eq!(
        stderr(&output),
        report(&[
            "PORT is not a port number: \"eighty\" (expected 1 to 65535; the default is 3000)",
            "STRIPE_SECRET_KEY does not look like a Stripe secret key: it should start with sk_ (sk_test_... in test mode)",
            "cannot reach the database at 127.0.0.1:1 (connection refused): is PostgreSQL running there? Without DATABASE_URL, scripts/dev.sh starts a local one",
        ])
    );
}

#[tokio::test]
async fn a_missing_database_comes_with_the_command_that_creates_it() {
    // Reserved, never created: the guard drops it should the binary create it by mistake.
    let database = TestDatabase::reserve();
    let url: tokio_postgres::Config = database.url().parse().expect("a database URL");
    let host = match &url.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the tests' server is reached over TCP, not {other:?}"),
    };
    let port = url.get_ports()[0];
    let user = url.get_user().expect("a user in DATABASE_URL");
    let output = run(huckleberry(
        &["migrate"],
        &[("DATABASE_URL", database.url())],
    ));
    let name = database.name();
    assert_eq!(
        stderr(&output),
        format!(
            "huckleberry cannot start (1 problem):\n  - the database \"{name}\" does not exist on \
             {host}:{port}: create it with `createdb -h {host} -p {port} -U {user} {name}` (or \
             run scripts/dev.sh, which creates it)\n"
        )
    );
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_with_the_command_to_migrate() {
    let database = TestDatabase::empty().await;
    let port = free_port().to_string();
    let output = run(huckleberry(
        &["serve"],
        &[
            ("DATABASE_URL", database.url()),
            ("INNGEST_DEV", "1"),
            ("PORT", &port),
        ],
    ));
    let migrations = huckleberry::db::MIGRATIONS;
    let count = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&migrations)
        .expect("the embedded migrations")
        .len();
    assert_eq!(
        stderr(&output),
        format!(
            "huckleberry cannot start (1 problem):\n  - {count} database migrations are not \
             applied yet: run `huckleberry migrate` (`cargo run -- migrate`) first\n"
        )
    );
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let database = TestDatabase::migrated().await;
    let busy = TcpListener::bind("0.0.0.0:0").expect("take a port");
    let port = busy.local_addr().expect("address").port().to_string();
    let output = run(huckleberry(
        &["serve"],
        &[
            ("DATABASE_URL", database.url()),
            ("INNGEST_DEV", "1"),
            ("PORT", &port),
        ],
    ));
    let text = stderr(&output);
    assert_eq!(
        text,
        format!(
            "huckleberry cannot start (1 problem):\n  - port {port} is already in use by another \
             program (another huckleberry?): stop it, or set PORT to a free port\n"
        )
    );
    assert_no_debug_dump(&text);
}

/// Sends SIGTERM to `pid`.
fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}");
}

#[tokio::test]
async fn a_good_configuration_starts_with_a_summary_in_plain_text_and_stops_on_sigterm() {
    let database = TestDatabase::migrated().await;
    let port = free_port().to_string();
    let mut child = huckleberry(
        &[],
        &[
            ("DATABASE_URL", database.url()),
            ("INNGEST_DEV", "1"),
            ("PORT", &port),
            ("STRIPE_SECRET_KEY", "sk_test_1"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the binary starts");
    let lines = lines_until_serving(&mut child).await;
    let summary: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("integrations:"))
        .collect();
    assert_eq!(summary.len(), 1, "{lines:#?}");
    assert!(
        summary[0].ends_with(
            "integrations: Stripe on, PayPal off, Clerk off, Resend off, Discord off; Inngest dev \
             server at http://127.0.0.1:8288/"
        ),
        "{}",
        summary[0]
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a log that is not a terminal: {lines:#?}"
    );

    terminate(child.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("a port"))).is_err(),
        "the port is still open after the process ended"
    );
}

/// The lines `child` logs up to the one saying it serves (within 30 s).
async fn lines_until_serving(child: &mut std::process::Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let reading = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a line of text");
            let serving = line.contains("serving /api/inngest");
            seen.push(line);
            if serving {
                break;
            }
        }
        seen
    });
    let started = Instant::now();
    while !reading.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the service did not start within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reading.join().expect("the reader ends")
}

#[tokio::test]
async fn dev_logs_as_its_env_file_says_and_in_plain_text_by_default() {
    let database = TestDatabase::migrated().await;
    let dir = std::env::temp_dir().join(format!("huckleberry-env-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    for (settings, json) in [
        ("# nothing about logs\n", false),
        ("LOG_FORMAT=json\n", true),
    ] {
        let env_file = dir.join(".env");
        std::fs::write(&env_file, settings).expect("the env file is written");
        let port = free_port().to_string();
        let mut child = huckleberry(
            &[
                "dev",
                "--env-file",
                env_file.to_str().expect("a UTF-8 path"),
            ],
            &[("DATABASE_URL", database.url()), ("PORT", &port)],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
        let lines = lines_until_serving(&mut child).await;
        terminate(child.id());
        child.wait().expect("it ends");
        assert!(
            lines.iter().all(|l| l.starts_with('{') == json),
            "{settings:?}: {lines:#?}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("the folder is removed");
}

#[test]
fn help_lists_the_commands_and_each_has_its_own() {
    let output = huckleberry(&["--help"], &[]).output().expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "dev"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from:\n{help}"
        );
        let output = huckleberry(&[command, "--help"], &[])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{command} --help");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&format!("huckleberry {command}")),
            "{command} --help shows its usage"
        );
    }
    let output = huckleberry(&["servee"], &[]).output().expect("runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown command is refused"
    );
}

/// Names passed to `get("...")` or `required("...")` in a source file.
fn variables_read_by(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for call in ["get(\"", "required(\""] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at + call.len()..];
            if let Some(end) = rest.find('"') {
                names.push(rest[..end].to_owned());
            }
        }
    }
    names
}

#[test]
fn env_example_documents_every_variable_the_service_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("a source file");
    let example = read(".env.example");
    let mut names: Vec<String> = [
        "src/config.rs",
        "src/startup.rs",
        "inngest-sdk/src/config.rs",
    ]
    .into_iter()
    .flat_map(|path| variables_read_by(&read(path)))
    .collect();
    names.sort();
    names.dedup();
    assert!(names.len() > 30, "too few variables found: {names:?}");
    let undocumented: Vec<&String> = names
        .iter()
        .filter(|name| !example.contains(&format!("{name}=")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "missing from .env.example: {undocumented:?}"
    );
}

#[test]
fn serve_refuses_the_sandbox_and_dev_names_a_bad_setting_of_it() {
    let port = free_port().to_string();
    let vars = [
        ("PORT", port.as_str()),
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/huckleberry",
        ),
        ("INNGEST_DEV", "1"),
        ("SANDBOX", "on"),
    ];
    let text = stderr(&run(huckleberry(&["serve"], &vars)));
    assert!(
        text.contains(
            "  - SANDBOX is set, but the sandbox stand-ins exist only in `huckleberry dev`: \
             `serve` never serves them. Unset SANDBOX and configure the providers' keys\n"
        ),
        "{text}"
    );
    let vars = [vars[0], vars[1], vars[2], ("SANDBOX", "maybe")];
    let text = stderr(&run(huckleberry(
        &["dev", "--env-file", "/dev/null"],
        &vars,
    )));
    assert!(
        text.contains("  - SANDBOX is neither on nor off: \"maybe\""),
        "{text}"
    );
}
