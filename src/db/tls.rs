//! TLS to PostgreSQL: the URL's `sslmode` decides, rustls verifies the server's certificate
//! (against `DATABASE_CA_CERT`, or the public web roots), and a connection whose certificate
//! does not verify is refused with a message that says what to set. No OpenSSL, no libpq.
//!
//! | `sslmode` | connection |
//! |---|---|
//! | absent, `disable`, `allow`, `prefer` | plain TCP (a local or private-network database) |
//! | `require`, `verify-ca`, `verify-full` | TLS, certificate and host name verified |
//!
//! rustls always checks the certificate chain and the host name, so `require` and `verify-ca`
//! are as strict as `verify-full` here: stricter than libpq, never weaker.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How connections reach the server.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS verified against these roots (described for error messages).
    Tls {
        /// The rustls configuration, roots included.
        config: Arc<rustls::ClientConfig>,
        /// Where the roots came from, e.g. `DATABASE_CA_CERT=/etc/ssl/rds.pem`.
        roots: String,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain => f.write_str("Plain"),
            Transport::Tls { roots, .. } => write!(f, "Tls({roots})"),
        }
    }
}

/// A database URL split into what tokio-postgres reads and whether TLS is required.
#[derive(Debug)]
pub struct Target {
    /// Host, port, user, database... without `sslmode`.
    pub config: tokio_postgres::Config,
    /// `sslmode` asked for TLS.
    pub tls: bool,
}

/// Reads `url`: `sslmode` (which tokio-postgres only partly knows) is taken out and decided
/// here; everything else is tokio-postgres's.
pub fn target(url: &str) -> Result<Target, String> {
    let mut tls = false;
    let stripped = match url::Url::parse(url) {
        Ok(mut parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {
            let mut kept = Vec::new();
            for (key, value) in parsed.query_pairs() {
                if key == "sslmode" {
                    tls = match value.as_ref() {
                        "disable" | "allow" | "prefer" => false,
                        "require" | "verify-ca" | "verify-full" => true,
                        other => {
                            return Err(format!("sslmode={other} is not a PostgreSQL sslmode"));
                        }
                    };
                } else {
                    kept.push((key.into_owned(), value.into_owned()));
                }
            }
            if kept.is_empty() {
                parsed.set_query(None);
            } else {
                parsed.query_pairs_mut().clear().extend_pairs(kept);
            }
            parsed.to_string()
        }
        // `host=... dbname=...` strings go to tokio-postgres as they are.
        _ => url.to_owned(),
    };
    let mut config = tokio_postgres::Config::from_str(&stripped)
        .map_err(|e| format!("the database URL does not parse: {e}"))?;
    config.ssl_mode(if tls {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    Ok(Target { config, tls })
}

/// The transport for `target`: TLS roots from the PEM file `ca_cert`, else the public web
/// roots (what managed databases with a public CA need).
pub fn transport(target: &Target, ca_cert: Option<&Path>) -> Result<Transport, String> {
    if !target.tls {
        return Ok(Transport::Plain);
    }
    let mut roots = rustls::RootCertStore::empty();
    let described = match ca_cert {
        Some(path) => {
            let certs = read_pem(path)?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "DATABASE_CA_CERT={}: no usable certificate in the file",
                    path.display()
                ));
            }
            format!("DATABASE_CA_CERT={}", path.display())
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            "the public web roots (DATABASE_CA_CERT unset)".to_owned()
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::Tls {
        config: Arc::new(config),
        roots: described,
    })
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let described = || format!("DATABASE_CA_CERT={}", path.display());
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", described()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", described()))
}

/// Opens one connection over `transport`.
pub async fn connect(
    target: &tokio_postgres::Config,
    transport: &Transport,
) -> Result<AsyncPgConnection, ConnectionError> {
    match transport {
        Transport::Plain => {
            let (client, connection) = target
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| ConnectionError::BadConnection(describe(&e)))?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
        Transport::Tls { config, roots } => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**config).clone());
            let (client, connection) = target
                .connect(tls)
                .await
                .map_err(|e| ConnectionError::BadConnection(explain(&e, roots)))?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
    }
}

/// Opens a bare tokio-postgres client over `transport` (the start-up checks, which run before
/// the pool); its connection runs on a task of its own until the client is dropped.
pub async fn connect_client(
    target: &tokio_postgres::Config,
    transport: &Transport,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    match transport {
        Transport::Plain => {
            let (client, connection) = target.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok(client)
        }
        Transport::Tls { config, .. } => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**config).clone());
            let (client, connection) = target.connect(tls).await?;
            tokio::spawn(connection);
            Ok(client)
        }
    }
}

/// A failure to connect over `transport`, in words an operator can act on.
pub fn explain_failure(error: &tokio_postgres::Error, transport: &Transport) -> String {
    match transport {
        Transport::Plain => describe(error),
        Transport::Tls { roots, .. } => explain(error, roots),
    }
}

/// A TLS failure in words an operator can act on; other failures as they are.
fn explain(error: &tokio_postgres::Error, roots: &str) -> String {
    match rustls_cause(error) {
        Some(rustls::Error::InvalidCertificate(why)) => format!(
            "the database server's TLS certificate did not verify against {roots} ({why:?}); \
             refusing to connect: set DATABASE_CA_CERT to the CA that signed it"
        ),
        Some(other) => format!("TLS with the database server failed: {other}"),
        None if error.to_string().contains("TLS") => format!(
            "TLS with the database server failed ({error}); sslmode in DATABASE_URL asks for TLS"
        ),
        None => describe(error),
    }
}

/// tokio-postgres prints a server's refusal as just `db error`: the server's words matter.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("the database server refused the connection: {db}"),
        None => error.to_string(),
    }
}

/// The rustls error under a tokio-postgres one: tokio-rustls wraps it in an `io::Error`.
fn rustls_cause(error: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn sslmode_require_and_verify_ask_for_tls_and_leave_the_rest_of_the_url() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let url = format!(
                "postgres://app:pw@db.example.com:6543/academy?sslmode={mode}&application_name=x"
            );
            let target = target(&url).expect("parses");
            assert!(target.tls, "{mode}");
            assert_eq!(target.config.get_hosts().len(), 1);
            assert_eq!(target.config.get_ports(), [6543]);
            assert_eq!(target.config.get_dbname(), Some("academy"));
            assert_eq!(target.config.get_application_name(), Some("x"));
        }
    }

    #[test]
    fn no_sslmode_or_disable_keeps_plain_tcp_and_a_typo_is_refused() {
        for url in [
            "postgres://postgres@127.0.0.1:5433/postgres",
            "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable",
            "postgresql://postgres@127.0.0.1/postgres?sslmode=prefer",
        ] {
            assert!(!target(url).expect("parses").tls, "{url}");
        }
        let error = target("postgres://h/db?sslmode=verify_full").expect_err("a typo");
        assert!(error.contains("verify_full"), "{error}");
    }
}
