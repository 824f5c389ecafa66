//! A loopback TCP proxy between the app's pool and PostgreSQL that a test can cut and restore:
//! the database going away (connections dropped mid-query, new ones refused) and coming back,
//! without touching the server the other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy; it stops accepting when dropped (connections in flight end with their ends).
pub struct DbProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    inner: Arc<Inner>,
    accept: tokio::task::JoinHandle<()>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped on every cut: each connection ends when it changes.
    cuts: watch::Sender<u64>,
    /// How many connections are being relayed to the server right now.
    relayed: watch::Sender<usize>,
}

#[derive(Default)]
struct State {
    /// Refuses every new connection while set.
    down: bool,
    /// Accepts new connections and never answers while set (and not down).
    silent: bool,
    /// When the client sends these bytes (in one read), the proxy goes down before
    /// forwarding them: the statement never reaches the server, and the open transaction dies
    /// with its connection.
    trigger: Option<Vec<u8>>,
    refused: usize,
    accepted: usize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every open connection and refuses new ones until restored.
    fn go_down(&self) {
        self.lock().down = true;
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Whether `bytes`, sent by a client, trip the armed trigger (which is then disarmed).
    fn trips(&self, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        let tripped = state
            .trigger
            .as_deref()
            .is_some_and(|pattern| bytes.windows(pattern.len()).any(|w| w == pattern));
        if tripped {
            state.trigger = None;
        }
        tripped
    }
}

impl DbProxy {
    /// A proxy to the PostgreSQL server of `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let url = url::Url::parse(database_url).expect("a database URL");
        let host = url.host_str().expect("a database host");
        let port = url.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host, port))
            .await
            .expect("resolve the database host")
            .next()
            .expect("an address for the database host");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            cuts: watch::channel(0).0,
            relayed: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, inner.clone()));
        Self {
            addr,
            upstream,
            inner,
            accept,
        }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url(&self, database_url: &str) -> String {
        let mut url = url::Url::parse(database_url).expect("a database URL");
        url.set_host(Some(&self.addr.ip().to_string()))
            .expect("a host");
        url.set_port(Some(self.addr.port())).expect("a port");
        url.to_string()
    }

    /// The database goes away: every open connection is dropped, new ones are refused.
    pub fn cut(&self) {
        self.inner.go_down();
    }

    /// The database is back.
    pub fn restore(&self) {
        let mut state = self.inner.lock();
        state.down = false;
        state.silent = false;
    }

    /// The database stops answering without refusing anything (a network partition, a frozen
    /// host): open connections are dropped, new ones are accepted and then hear nothing.
    /// Returns once every relayed connection is closed, so that no statement sent afterwards
    /// can still reach the server, however busy the machine.
    pub async fn go_silent(&self) {
        self.inner.lock().silent = true;
        self.inner.cuts.send_modify(|n| *n += 1);
        let mut relayed = self.inner.relayed.subscribe();
        relayed
            .wait_for(|open| *open == 0)
            .await
            .expect("the proxy owns the sender");
    }

    /// Goes down (as [`DbProxy::cut`]) the moment a client sends `pattern`, before the bytes
    /// carrying it are forwarded: a statement that never ran, in a transaction that dies.
    pub fn cut_when_sent(&self, pattern: &str) {
        self.inner.lock().trigger = Some(pattern.as_bytes().to_vec());
    }

    /// Whether the proxy is down.
    pub fn is_down(&self) -> bool {
        self.inner.lock().down
    }

    /// How many connections were refused, and how many were let through.
    pub fn connections(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.refused, state.accepted)
    }

    /// The server behind the proxy.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.inner.go_down();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, inner: Arc<Inner>) {
    while let Ok((client, _)) = listener.accept().await {
        let mut state = inner.lock();
        if state.down {
            // Closed at once: the client's start-up fails as against a server that is
            // shutting down.
            state.refused += 1;
            drop(client);
            continue;
        }
        state.accepted += 1;
        // Subscribed (and counted) under the lock that `go_silent` takes: a cut that comes
        // before the task first runs still ends this connection, and `go_silent` waits for it.
        let cuts = inner.cuts.subscribe();
        if state.silent {
            drop(state);
            tokio::spawn(hold_unanswered(client, cuts));
            continue;
        }
        let open = Relayed::count(&inner);
        drop(state);
        tokio::spawn(relay(client, upstream, inner.clone(), cuts, open));
    }
}

/// Holds a connection open, unanswered, until the next cut or the proxy's end.
async fn hold_unanswered(client: TcpStream, mut cuts: watch::Receiver<u64>) {
    let _ = cuts.changed().await;
    drop(client);
}

/// Carries one connection until either end closes it or the proxy is cut.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    inner: Arc<Inner>,
    mut cuts: watch::Receiver<u64>,
    _open: Relayed,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upward = async {
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if inner.trips(&buf[..n]) {
                inner.go_down();
                return;
            }
            if to_server.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downward = async {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    };
    tokio::select! {
        () = upward => {}
        () = downward => {}
        _ = cuts.changed() => {}
    }
    // Dropping both halves of both sockets closes the two connections.
}

/// Counts one relayed connection for as long as it lives.
struct Relayed(Arc<Inner>);

impl Relayed {
    fn count(inner: &Arc<Inner>) -> Self {
        inner.relayed.send_modify(|open| *open += 1);
        Self(inner.clone())
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        self.0.relayed.send_modify(|open| *open -= 1);
    }
}
