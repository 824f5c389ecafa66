//! The pool against a PostgreSQL that accepts TLS connections only (`hostssl`), with a
//! certificate signed by a CA of its own: `scripts/test.sh` starts it (`start_tls_test_postgres`
//! in `scripts/postgres.sh`) and says where through `TLS_DATABASE_URL`,
//! `TLS_DATABASE_CA_CERT` and `TLS_DATABASE_WRONG_CA_CERT`. Without them these tests say so
//! and pass without connecting.

use std::path::PathBuf;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use huckleberry::db::{self, PoolSettings};
use huckleberry::startup::{self, Environment, Mode};

struct TlsServer {
    url: String,
    ca: PathBuf,
    wrong_ca: PathBuf,
}

fn tls_server() -> Option<TlsServer> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("TLS_DATABASE_URL"),
        var("TLS_DATABASE_CA_CERT"),
        var("TLS_DATABASE_WRONG_CA_CERT"),
    ) {
        (Some(url), Some(ca), Some(wrong_ca)) => Some(TlsServer {
            url,
            ca: ca.into(),
            wrong_ca: wrong_ca.into(),
        }),
        _ => {
            eprintln!("notice: TLS_DATABASE_URL is unset; run scripts/test.sh for the TLS tests");
            None
        }
    }
}

/// One connection from a fresh pool for `url` trusting `ca`, or the error's text.
async fn connect(url: &str, ca: Option<PathBuf>) -> Result<db::DbConn, String> {
    let settings = PoolSettings {
        max_size: 1,
        ca_cert: ca,
        ..PoolSettings::default()
    };
    let pool = db::pool_with(url, &settings).map_err(|e| e.to_string())?;
    db::conn(&pool).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_database_requiring_tls_is_reached_with_the_ca_that_signed_its_certificate() {
    let Some(server) = tls_server() else { return };
    let mut conn = connect(&server.url, Some(server.ca))
        .await
        .expect("a TLS connection");
    #[derive(QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .expect("query over TLS");
    assert!(row.ssl);
}

#[tokio::test]
async fn a_certificate_signed_by_another_ca_is_refused_with_a_clear_message() {
    let Some(server) = tls_server() else { return };
    let error = connect(&server.url, Some(server.wrong_ca.clone()))
        .await
        .err()
        .expect("refused");
    assert!(
        error.contains("did not verify")
            && error.contains(&format!("DATABASE_CA_CERT={}", server.wrong_ca.display()))
            && error.contains("refusing to connect"),
        "{error}"
    );
}

#[tokio::test]
async fn without_a_ca_file_a_private_ca_is_not_trusted() {
    let Some(server) = tls_server() else { return };
    let error = connect(&server.url, None).await.err().expect("refused");
    assert!(
        error.contains("did not verify") && error.contains("public web roots"),
        "{error}"
    );
}

#[tokio::test]
async fn sslmode_disable_connects_in_plain_tcp_which_this_server_refuses() {
    let Some(server) = tls_server() else { return };
    let plain = server.url.replace("sslmode=require", "sslmode=disable");
    assert_ne!(plain, server.url);
    let error = connect(&plain, Some(server.ca))
        .await
        .err()
        .expect("refused");
    assert!(error.contains("no encryption"), "{error}");
}

#[tokio::test]
async fn a_missing_ca_file_is_a_set_up_error_naming_the_variable() {
    let url = "postgres://postgres@127.0.0.1:1/postgres?sslmode=require";
    let error = connect(url, Some("/nonexistent/ca.pem".into()))
        .await
        .err()
        .expect("refused");
    assert!(
        error.contains("DATABASE_CA_CERT=/nonexistent/ca.pem"),
        "{error}"
    );
}

/// What the start-up check says of `url` with `ca` trusted, run as `huckleberry migrate`
/// runs it (the TLS server's database is not migrated, and migrating needs no migrations).
async fn start_up_check(url: &str, ca: &std::path::Path) -> Option<String> {
    let ca = ca.display().to_string();
    let env = Environment::from_pairs([("DATABASE_URL", url), ("DATABASE_CA_CERT", ca.as_str())]);
    startup::check_database(&env, Mode::Migrate).await
}

#[tokio::test]
async fn the_start_up_check_reaches_a_database_requiring_tls_as_the_pool_does() {
    let Some(server) = tls_server() else { return };
    // tokio-postgres alone knows neither verify-ca nor verify-full; the pool reads them.
    for sslmode in ["require", "verify-ca", "verify-full"] {
        let url = server
            .url
            .replace("sslmode=require", &format!("sslmode={sslmode}"));
        let env = Environment::from_pairs([("DATABASE_URL", url.as_str())]);
        assert_eq!(
            startup::check_settings(&env, Mode::Migrate),
            Vec::<String>::new()
        );
        assert_eq!(start_up_check(&url, &server.ca).await, None, "{sslmode}");
    }
}

#[tokio::test]
async fn the_start_up_check_says_what_to_set_when_tls_is_missing_or_does_not_verify() {
    let Some(server) = tls_server() else { return };
    let unverified = start_up_check(&server.url, &server.wrong_ca)
        .await
        .expect("refused");
    assert!(
        unverified.contains("did not verify") && unverified.contains("DATABASE_CA_CERT"),
        "{unverified}"
    );
    // The server takes TLS only; without sslmode the connection is plain, and refused.
    let plain = server.url.replace("?sslmode=require", "");
    let refused = start_up_check(&plain, &server.ca).await.expect("refused");
    assert!(refused.contains("sslmode=require"), "{refused}");
}
