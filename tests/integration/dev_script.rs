//! `scripts/dev.sh`, run as a newcomer would (no DATABASE_URL), twice: it starts its own
//! PostgreSQL cluster, creates and migrates the database, loads the demo data and serves in
//! dev mode; an in-band sync answers; SIGTERM stops every process it started and frees every
//! port; the second run finds the data of the first. The Inngest dev server is switched off
//! (it cannot be downloaded offline).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huckleberry::demo;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Whether PostgreSQL's server binaries can be found the way the script finds them.
fn postgres_installed() -> bool {
    Command::new("bash")
        .args([
            "-c",
            "source scripts/postgres.sh && _test_postgres_find_bindir",
        ])
        .current_dir(REPO)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind a free port")
        .local_addr()
        .expect("address")
        .port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// A running `scripts/dev.sh`; SIGTERM on drop, so a failing test leaves nothing behind.
struct DevScript {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl DevScript {
    fn start(dir: &Path, port: u16) -> Self {
        // The script's own settings come from the env file, as `.env.example` says they may.
        let env_file = dir.join("dev.env");
        let settings = format!(
            "PORT={port}\nexport HUCKLEBERRY_DEV_DIR=\"{}\"\nHUCKLEBERRY_NO_INNGEST_DEV=1\n",
            dir.display()
        );
        std::fs::write(&env_file, settings).expect("the env file");
        let mut child = Command::new("bash")
            .arg("scripts/dev.sh")
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(REPO)
            .env_remove("DATABASE_URL")
            .env("HUCKLEBERRY_BIN", env!("CARGO_BIN_EXE_huckleberry"))
            .env_remove("HUCKLEBERRY_DEV_DIR")
            .env_remove("HUCKLEBERRY_NO_INNGEST_DEV")
            .env_remove("PORT")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("the output lock").push(line);
                }
            });
        }
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().expect("the output lock").join("\n")
    }

    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM and waits for the script to end; returns its exit code.
    async fn stop(&mut self) -> Option<i32> {
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "dev.sh still running 45 s after SIGTERM:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DevScript {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
            let deadline = Instant::now() + Duration::from_secs(45);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Removes the script's folder at the end, whatever happens.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_until_healthy(script: &DevScript, http: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let health = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy within 90 s:\n{}",
            script.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn demo_rows(pg_port: u16) -> (i64, i64) {
    let url = format!("postgres://postgres@127.0.0.1:{pg_port}/huckleberry");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to the dev database");
    tokio::spawn(connection);
    let count = |table: &'static str, ids: Vec<uuid::Uuid>| {
        let client = &client;
        async move {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            client
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE id::text = ANY($1)"),
                    &[&ids],
                )
                .await
                .expect("count the demo rows")
                .get::<_, i64>(0)
        }
    };
    (
        count("mentors", demo::MENTOR_IDS.to_vec()).await,
        count("mentorship_products", demo::PRODUCT_IDS.to_vec()).await,
    )
}

#[tokio::test]
async fn the_run_command_serves_the_demo_and_leaves_nothing_behind_on_sigterm() {
    if !postgres_installed() {
        eprintln!(
            "notice: PostgreSQL's server binaries were not found; skipping the scripts/dev.sh \
             test (bash scripts/test.sh installs them)"
        );
        return;
    }
    let dir = TempDir(
        std::env::temp_dir().join(format!("huckleberry-dev-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).expect("the dev folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");

    for run in 1..=2 {
        let port = free_port();
        let mut script = DevScript::start(&dir.0, port);
        wait_until_healthy(&script, &http, port).await;

        let sync = http
            .put(format!("http://127.0.0.1:{port}/api/inngest"))
            .header("x-inngest-sync-kind", "in_band")
            .json(&serde_json::json!({ "url": format!("http://localhost:{port}/api/inngest") }))
            .send()
            .await
            .expect("the sync request");
        assert_eq!(sync.status(), 200, "run {run}");
        let sync: serde_json::Value = sync.json().await.expect("a JSON answer");
        assert!(
            sync["functions"].as_array().is_some_and(|f| !f.is_empty()),
            "run {run}: {sync}"
        );

        let pg_port: u16 = std::fs::read_to_string(dir.0.join("pg/port"))
            .expect("the cluster's port file")
            .trim()
            .parse()
            .expect("a port");
        assert_eq!(
            demo_rows(pg_port).await,
            (
                demo::MENTOR_IDS.len() as i64,
                demo::PRODUCT_IDS.len() as i64
            ),
            "run {run}"
        );

        let code = script.stop().await;
        let output = script.output();
        assert_eq!(code, Some(143), "run {run}: exit code\n{output}");
        assert!(
            !port_open(port),
            "run {run}: port {port} still open\n{output}"
        );
        assert!(
            !port_open(pg_port),
            "run {run}: PostgreSQL's port {pg_port} still open\n{output}"
        );
        let left = processes_mentioning(&dir.0.display().to_string());
        assert!(
            left.is_empty(),
            "run {run}: processes left: {left:#?}\n{output}"
        );
        assert!(
            output.contains("Inngest dev server not started (HUCKLEBERRY_NO_INNGEST_DEV=1); to start it: npx --yes inngest-cli@"),
            "run {run}: {output}"
        );
    }
}
