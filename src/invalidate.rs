//! Cross-node invalidation on PostgreSQL: what one node drops from its caches (a revoked key, a deleted
//! client, a rotated signing key) every other node drops too, within a poll interval (≈ 50 ms), through
//! PostgreSQL `LISTEN`/`NOTIFY` on the channel [`CHANNEL`].
//!
//! Each node runs one thread with one connection of its own: it sends what its caches publish
//! ([`Bus::publish`], never blocking the caller) and receives what the others sent. A node skips its
//! own messages. When the connection drops, the thread reconnects and, since messages may have been
//! missed meanwhile, tells the node to clear its caches and re-read its signing keys. Payloads are
//! small and hold no secret: a cache name and an HMAC in hex, or an id. The caches' TTL stays the
//! fallback. SQLite is single-node: there the bus is disabled and publishing does nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::db::DbConn;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "tessera_invalidate";

/// How often the listener looks for notifications (and sends what was published meanwhile at once).
const POLL: Duration = Duration::from_millis(50);
/// How often an idle listener checks that its connection is still alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Messages waiting to be sent; past it, publishing drops them (the TTL still applies).
const QUEUE: usize = 4096;

/// Which entries of a cache to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every entry (the change cannot be named more precisely, or messages may have been missed).
    All,
    /// The entry of one HMAC.
    Hash([u8; 32]),
    /// Every entry whose cached row has `field` equal to the value (an id, never a secret).
    Field(String, String),
}

/// What a message tells the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Drop entries of the named cache.
    Cache { cache: String, selector: Selector },
    /// The signing keys changed: re-read them now.
    SigningKeys,
}

/// What the listener hands to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Event(Event),
    /// The listener (re)connected: messages may have been missed; drop everything cached.
    Reconnected,
}

impl Event {
    /// `<origin> <kind> …`: `flush <cache>`, `hash <cache> <hex>`, `field <cache> <field> <value>`,
    /// `signing-keys`.
    fn encode(&self, origin: &str) -> String {
        match self {
            Self::SigningKeys => format!("{origin} signing-keys"),
            Self::Cache { cache, selector } => match selector {
                Selector::All => format!("{origin} flush {cache}"),
                Selector::Hash(h) => format!("{origin} hash {cache} {}", hex(h)),
                Selector::Field(f, v) => format!("{origin} field {cache} {f} {v}"),
            },
        }
    }

    /// The origin and the event of a payload; `None` for anything malformed.
    fn decode(payload: &str) -> Option<(&str, Self)> {
        let mut parts = payload.splitn(5, ' ');
        let origin = parts.next()?;
        let kind = parts.next()?;
        let event = match kind {
            "signing-keys" => Self::SigningKeys,
            "flush" | "hash" | "field" => {
                let cache = parts.next()?.to_owned();
                let selector = match kind {
                    "flush" => Selector::All,
                    "hash" => Selector::Hash(unhex(parts.next()?)?),
                    _ => Selector::Field(parts.next()?.to_owned(), parts.next()?.to_owned()),
                };
                Self::Cache { cache, selector }
            }
            _ => return None,
        };
        Some((origin, event))
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Sends `event` to every node from inside the caller's work on `conn`: on PostgreSQL it is delivered
/// when the caller's transaction commits (and never if it rolls back); on SQLite it does nothing. The
/// CLI's changes reach the running nodes this way.
pub fn notify(conn: &mut DbConn, event: &Event) -> QueryResult<()> {
    match conn {
        DbConn::Pg(pg) => send(pg, &event.encode("-")),
        DbConn::Sqlite(_) => Ok(()),
    }
}

fn send(conn: &mut PgConnection, payload: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .map(drop)
}

/// A node's end of the invalidation channel; cloning shares it. [`Bus::disabled`] (SQLite, or a
/// cache used alone) publishes nothing.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// This node's random id: the listener skips messages carrying it.
    node: String,
    tx: SyncSender<String>,
    rx: Mutex<Option<Receiver<String>>>,
    /// What the metrics read of the listener thread.
    gauges: Arc<Gauges>,
}

/// The listener thread's state, for the metrics.
#[derive(Debug, Default)]
struct Gauges {
    /// Messages queued and not yet sent (the `cache_invalidation` queue length).
    queued: AtomicUsize,
    /// The listener is connected and listening.
    connected: AtomicBool,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("node", &self.inner.as_ref().map(|i| i.node.as_str()))
            .finish()
    }
}

impl Bus {
    /// A bus for a node on PostgreSQL; nothing is sent until [`Bus::listen`] starts its thread.
    pub fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        Self {
            inner: Some(Arc::new(Inner {
                node: crate::crypto::random_id("n", 12),
                tx,
                rx: Mutex::new(Some(rx)),
                gauges: Arc::default(),
            })),
        }
    }

    /// A bus that publishes nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` for the other nodes; never blocks (a full queue drops it, the TTL still applies).
    pub fn publish(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        match inner.tx.try_send(event.encode(&inner.node)) {
            Ok(()) => {
                inner.gauges.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("cache invalidation queue full; other nodes rely on the cache TTL");
            }
        }
    }

    /// Messages this node published that are not sent yet (0 when disabled).
    pub fn queued(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |i| i.gauges.queued.load(Ordering::Acquire))
    }

    /// True while the listener thread is connected and listening (never when disabled).
    pub fn connected(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.gauges.connected.load(Ordering::Acquire))
    }

    /// Starts the listener thread on `database_url` (PostgreSQL): it sends what this node publishes and
    /// hands every other node's message to `handle` (on the thread: it may block briefly). It stops
    /// when the returned guard is dropped. `None` when the bus is disabled or already listening.
    pub fn listen(
        &self,
        database_url: String,
        handle: impl Fn(Incoming) + Send + 'static,
    ) -> Option<Listening> {
        let inner = self.inner.as_ref()?;
        let rx = inner
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let stop = Arc::new(AtomicBool::new(false));
        let node = inner.node.clone();
        let gauges = inner.gauges.clone();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-invalidate".into())
            .spawn(move || run(&database_url, &node, (&rx, &gauges), &flag, &handle));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the cache invalidation listener");
            return None;
        }
        Some(Listening { stop })
    }
}

/// Stops the listener thread when dropped.
#[derive(Debug)]
pub struct Listening {
    stop: Arc<AtomicBool>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The listener thread: connect, listen, pump both ways until the connection fails; then again.
/// `outbox`: the queue of messages to send, and the gauges (its length decremented as each one is
/// sent; connected while listening).
fn run(
    url: &str,
    node: &str,
    outbox: (&Receiver<String>, &Gauges),
    stop: &AtomicBool,
    handle: &dyn Fn(Incoming),
) {
    let mut backoff = Duration::from_millis(100);
    let mut pending: Option<String> = None;
    let mut first = true;
    while !stop.load(Ordering::Acquire) {
        let connected = PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())?;
                Ok(conn)
            });
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cache invalidation listener cannot connect; will retry");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if first {
            first = false;
        } else {
            tracing::info!("cache invalidation listener reconnected; dropping cached entries");
        }
        // Messages sent before this connection listened (a node's first moments, or a gap) are
        // lost: drop what is cached and re-read the signing keys (another node may have made the
        // first key while this one started).
        handle(Incoming::Reconnected);
        outbox.1.connected.store(true, Ordering::Release);
        let pumped = pump(&mut conn, node, outbox, stop, handle, &mut pending);
        outbox.1.connected.store(false, Ordering::Release);
        if let Err(e) = pumped {
            tracing::warn!(error = %e, "cache invalidation listener lost its connection; reconnecting");
        }
    }
}

/// Sends and receives on one connection until it fails or the node stops.
fn pump(
    conn: &mut PgConnection,
    node: &str,
    (rx, gauges): (&Receiver<String>, &Gauges),
    stop: &AtomicBool,
    handle: &dyn Fn(Incoming),
    pending: &mut Option<String>,
) -> QueryResult<()> {
    let mut checked = Instant::now();
    while !stop.load(Ordering::Acquire) {
        // A message that failed on the previous connection goes first.
        let mut next = match pending.take() {
            Some(p) => Some(p),
            None => match rx.recv_timeout(POLL) {
                Ok(p) => Some(p),
                Err(RecvTimeoutError::Timeout) => None,
                // The node is gone: nothing will be published any more.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(POLL);
                    None
                }
            },
        };
        while let Some(payload) = next {
            if let Err(e) = send(conn, &payload) {
                *pending = Some(payload);
                return Err(e);
            }
            gauges.queued.fetch_sub(1, Ordering::AcqRel);
            checked = Instant::now();
            next = rx.try_recv().ok();
        }
        let notes: Vec<_> = conn.notifications_iter().collect::<QueryResult<_>>()?;
        for note in notes {
            match Event::decode(&note.payload) {
                Some((origin, _)) if origin == node => {}
                Some((_, event)) => handle(Incoming::Event(event)),
                None => tracing::warn!("ignored a malformed cache invalidation message"),
            }
        }
        if checked.elapsed() >= HEARTBEAT {
            diesel::sql_query("SELECT 1").execute(conn)?;
            checked = Instant::now();
        }
    }
    Ok(())
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_malformed_ones_are_refused() {
        let events = [
            Event::SigningKeys,
            Event::Cache {
                cache: "keys".into(),
                selector: Selector::All,
            },
            Event::Cache {
                cache: "tokens".into(),
                selector: Selector::Hash([0xab; 32]),
            },
            Event::Cache {
                cache: "keys".into(),
                selector: Selector::Field("id".into(), "key_1 x".into()),
            },
        ];
        for event in events {
            let payload = event.encode("n_1");
            assert!(payload.len() < 200, "small payloads: {payload}");
            assert_eq!(Event::decode(&payload), Some(("n_1", event)));
        }
        for bad in [
            "",
            "n_1",
            "n_1 hash keys 12",
            "n_1 field keys id",
            "n_1 what",
        ] {
            assert_eq!(Event::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_disabled_bus_publishes_nothing_and_does_not_listen() {
        let bus = Bus::disabled();
        bus.publish(Event::SigningKeys);
        assert!(bus.listen("postgres://nowhere".into(), |_| {}).is_none());
    }
}
