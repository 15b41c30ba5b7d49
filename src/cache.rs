//! A per-node cache of verified credentials, so that verifying an API key or an access token on the hot
//! path needs no database round trip. Generic: each feature names its own (the API keys' `KeyCache`,
//! the access tokens' `TokenCache` of `/v1/auth/check`, the OAuth clients' and APIs' caches).
//!
//! Entries are keyed by the credential's HMAC under the pepper (never the credential) and hold what
//! the database said: the stored row, or that there is none. An entry is used as it is for half of
//! `TESSERA_API_KEY_CACHE_TTL` (default 2 s, at most 5 s). Past that, the next request looks the key
//! up again while requests arriving meanwhile keep the old answer, for at most twice the TTL and never
//! more than 5 s: a busy key never sends a burst of queries to the database, and a revocation nobody
//! announced (made by hand in the database) takes effect here within 5 s. Starting the re-read at half
//! the TTL leaves it 1.5 TTL to finish before the old answer runs out: on a saturated machine one
//! database round trip can take seconds, and a re-read that outlives the old answer would send every
//! request to the database at once. A revocation or rotation made through this node drops the key's entries at once, and every
//! drop is published ([`crate::invalidate`]): on PostgreSQL the other nodes drop the same entries within
//! a fraction of a second, the TTL being only the fallback. Status (expired, revoked) is always
//! judged against the current time from the cached row, so an expiry needs no refresh.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};

/// An answer that a cache hit gives at once (ready), and a miss in a boxed future of its own: the
/// common case then adds no async state machine, nor the miss's state, to the future that awaits
/// it (every request's, on the hot paths).
pub type NowOrLater<'a, T> = futures_util::future::Either<
    std::future::Ready<T>,
    futures_util::future::LocalBoxFuture<'a, T>,
>;

/// A [`NowOrLater`] ready now.
pub fn now<'a, T>(value: T) -> NowOrLater<'a, T> {
    futures_util::future::Either::Left(std::future::ready(value))
}

/// A [`NowOrLater`] that `later` answers.
pub fn later<'a, T>(later: impl std::future::Future<Output = T> + 'a) -> NowOrLater<'a, T> {
    futures_util::future::Either::Right(Box::pin(later))
}

/// How many hashes a node keeps at most (a few MB); past it, stale entries go, then all.
pub const CAPACITY: usize = 20_000;

/// The raw HMAC of a presented credential: the cache's index.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// An HMAC under the secret pepper is already uniformly random and unpredictable to an attacker, so
/// its first 8 bytes are a good hash (no second hash function on the hot path).
impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes the `u64` a [`KeyHash`] writes through unchanged.
#[derive(Debug, Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Entries<V> = HashMap<KeyHash, Entry<V>, BuildHasherDefault<PassThrough>>;

/// What the database said about a hash: the row, or nothing.
pub type Found<V> = Option<Arc<V>>;

#[derive(Debug)]
struct Entry<V> {
    stored_at: Instant,
    found: Found<V>,
    /// A request is looking the key up again (the entry is past its TTL): others keep using this
    /// answer meanwhile, within the stale limit, instead of all querying the database at once.
    refreshing: bool,
}

#[derive(Debug)]
pub struct HashCache<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries<V>>,
    /// Bumped by every local invalidation: a lookup that started before one does not store its answer.
    generation: AtomicU64,
    /// Where this cache's drops are published, under `name` ([`HashCache::publishing`]).
    name: &'static str,
    bus: crate::invalidate::Bus,
    /// Hits and misses of [`HashCache::lookup`], under `name` ([`HashCache::counted_in`]).
    counts: crate::metrics::CacheCounters,
}

/// A cached row's fields that name it (ids, never secrets), so an entry can be dropped on every node by
/// sending the id ([`HashCache::forget_field`]).
pub trait Fields {
    fn field(&self, name: &str) -> Option<&str>;
}

/// An API's audience and scope names: nothing to name it by but its hash.
impl Fields for (String, Vec<String>) {
    fn field(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A cached value with the response headers that describe it (forward-auth's `X-Auth-*`), made once
/// when the value enters the cache: a hit clones reference-counted header values instead of copying
/// each string and checking its bytes again on every request. `headers` is `None` when a value cannot
/// be sent as a header (never for what Tessera stores: ids, scope tokens, environments and URLs are
/// visible ASCII); the caller answers that as an error rather than leave a header out.
#[derive(Debug)]
pub struct WithHeaders<T> {
    pub value: T,
    pub headers: Option<Box<[(HeaderName, HeaderValue)]>>,
}

impl<T> WithHeaders<T> {
    /// `value` with the headers named in `pairs` (texts borrowed from `value` or made for it), each
    /// value checked once here.
    pub fn new(value: T, pairs: impl FnOnce(&T) -> Vec<(HeaderName, &str)>) -> Self {
        let headers = pairs(&value)
            .into_iter()
            .map(|(name, text)| HeaderValue::from_str(text).ok().map(|v| (name, v)))
            .collect();
        Self { value, headers }
    }
}

impl<T> std::ops::Deref for WithHeaders<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Fields> Fields for WithHeaders<T> {
    fn field(&self, name: &str) -> Option<&str> {
        self.value.field(name)
    }
}

/// What [`HashCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup<V> {
    /// An answer to use as it is.
    Hit(Found<V>),
    /// An answer still good to use, which this caller is to re-read (past half the TTL).
    Refresh(Found<V>),
    /// Nothing usable: look it up.
    Miss,
}

impl<V> HashCache<V> {
    /// A cache keeping answers for `ttl` (zero: no caching), holding at most `capacity` hashes.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
            generation: AtomicU64::new(0),
            name: "",
            bus: crate::invalidate::Bus::disabled(),
            counts: crate::metrics::CacheCounters::detached(),
        }
    }

    /// This cache with its hits and misses counted in `metrics` under its name (call it after
    /// [`HashCache::publishing`], which names it).
    pub fn counted_in(self, metrics: &crate::metrics::Metrics) -> Self {
        Self {
            counts: metrics.cache_counters(self.name),
            ..self
        }
    }

    /// This cache with its drops published on `bus` as the cache `name` (the same on every node).
    pub fn publishing(self, name: &'static str, bus: &crate::invalidate::Bus) -> Self {
        Self {
            name,
            bus: bus.clone(),
            ..self
        }
    }

    fn publish(&self, selector: crate::invalidate::Selector) {
        self.bus.publish(crate::invalidate::Event::Cache {
            cache: self.name.to_owned(),
            selector,
        });
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `hash`, if fresh; `None` is a miss.
    /// The cached answer when it can be used without a database round trip, else `None` (the caller
    /// looks it up; past half the TTL the first caller does, while the others keep the old answer).
    pub fn get(&self, hash: &KeyHash) -> Option<Found<V>> {
        match self.lookup(hash) {
            Lookup::Hit(found) => Some(found),
            Lookup::Refresh(_) | Lookup::Miss => None,
        }
    }

    /// As [`HashCache::get`], not counted in the hits and misses: a second look after a counted miss
    /// (another request may have stored the answer meanwhile).
    pub fn recheck(&self, hash: &KeyHash) -> Option<Found<V>> {
        match self.find(hash) {
            Lookup::Hit(found) => Some(found),
            Lookup::Refresh(_) | Lookup::Miss => None,
        }
    }

    /// As [`HashCache::get`], but the caller that is to refresh an entry gets its old answer too
    /// ([`Lookup::Refresh`]), so it can re-read the entry in the background without waiting for it.
    pub fn lookup(&self, hash: &KeyHash) -> Lookup<V> {
        let found = self.find(hash);
        self.count(&found);
        found
    }

    /// Counts what [`HashCache::find`] found as a hit or a miss.
    pub fn count(&self, found: &Lookup<V>) {
        match found {
            Lookup::Hit(_) | Lookup::Refresh(_) => self.counts.hit(),
            Lookup::Miss => self.counts.miss(),
        }
    }

    /// [`HashCache::lookup`] without counting, for a caller that may yet decide the credential was
    /// never worth a lookup (it counts with [`HashCache::count`] once it has).
    pub fn find(&self, hash: &KeyHash) -> Lookup<V> {
        if !self.enabled() {
            return Lookup::Miss;
        }
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(hash) else {
            return Lookup::Miss;
        };
        let age = entry.stored_at.elapsed();
        if age < self.ttl / 2 {
            return Lookup::Hit(entry.found.clone());
        }
        if age >= self.stale_limit() {
            return Lookup::Miss;
        }
        if entry.refreshing {
            return Lookup::Hit(entry.found.clone());
        }
        // This caller refreshes; the ones arriving meanwhile use the old answer.
        entry.refreshing = true;
        Lookup::Refresh(entry.found.clone())
    }

    /// Drops one entry (a background re-read found the credential no longer good), on every node.
    pub fn forget(&self, hash: &KeyHash) {
        self.entries().remove(hash);
        self.publish(crate::invalidate::Selector::Hash(hash.0));
    }

    fn stale_limit(&self) -> Duration {
        (self.ttl * 2).min(Duration::from_secs(5)).max(self.ttl)
    }

    /// The generation to pass to [`HashCache::put`]: read it before the database lookup.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores the answer of a lookup that began at `generation`, unless an invalidation happened since.
    pub fn put(&self, hash: KeyHash, found: Found<V>, generation: u64) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            let ttl = self.ttl;
            entries.retain(|_, e| e.stored_at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            hash,
            Entry {
                stored_at: Instant::now(),
                found,
                refreshing: false,
            },
        );
    }

    /// Drops every entry whose row matches `dropped` (after a revocation or deletion through this
    /// node); a lookup that raced it does not store its answer. The other nodes cannot run the
    /// closure: they drop the whole cache (prefer [`HashCache::forget_field`] where a field names it).
    pub fn forget_where(&self, dropped: impl Fn(&V) -> bool) {
        self.drop_local(dropped);
        self.publish(crate::invalidate::Selector::All);
    }

    fn drop_local(&self, dropped: impl Fn(&V) -> bool) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| e.found.as_deref().is_none_or(|v| !dropped(v)));
    }

    /// Drops every entry, "no such key" answers too, here only (a flush from another node, or the
    /// invalidation listener reconnected and may have missed drops).
    pub fn clear(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Drops every entry whose row has `field` equal to `value`, here and on every node.
    pub fn forget_field(&self, field: &str, value: &str)
    where
        V: Fields,
    {
        self.drop_local(|v| v.field(field) == Some(value));
        self.publish(crate::invalidate::Selector::Field(
            field.to_owned(),
            value.to_owned(),
        ));
    }

    /// Applies a drop another node published, here only. The generation moves on, so a lookup that
    /// began before the change (and may have read the old row) does not store its answer.
    pub fn apply(&self, selector: &crate::invalidate::Selector)
    where
        V: Fields,
    {
        use crate::invalidate::Selector;
        match selector {
            Selector::All => self.clear(),
            Selector::Field(field, value) => self.drop_local(|v| v.field(field) == Some(value)),
            Selector::Hash(hash) => {
                let mut entries = self.entries();
                self.generation.fetch_add(1, Ordering::AcqRel);
                entries.remove(&KeyHash(*hash));
            }
        }
    }

    /// Drops every expired entry (called by the janitor so an idle cache does not hold memory).
    pub fn forget_stale(&self) {
        let limit = self.stale_limit();
        self.entries().retain(|_, e| e.stored_at.elapsed() < limit);
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_made_once_and_a_value_that_cannot_be_one_leaves_none() {
        let name = HeaderName::from_static("x-auth-subject");
        let made = WithHeaders::new("usr_1".to_owned(), |v| vec![(name.clone(), v.as_str())]);
        let headers = made.headers.as_deref().expect("a plain value is a header");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].1, "usr_1");
        assert_eq!(made.len(), 5, "derefs to the value");
        let bad = WithHeaders::new("a\nb".to_owned(), |v| vec![(name.clone(), v.as_str())]);
        assert!(bad.headers.is_none());
    }

    /// A cached row, as a feature's would be.
    #[derive(Debug)]
    struct Row {
        id: String,
    }

    impl Fields for Row {
        fn field(&self, name: &str) -> Option<&str> {
            (name == "id").then_some(self.id.as_str())
        }
    }

    type KeyCache = HashCache<Row>;

    fn h(n: u8) -> KeyHash {
        KeyHash([n; 32])
    }

    fn key(id: &str) -> Found<Row> {
        Some(Arc::new(Row { id: id.to_owned() }))
    }

    #[test]
    fn answers_are_kept_for_the_ttl_and_forgotten_by_key() {
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        assert!(cache.get(&h(1)).is_none(), "a miss");
        cache.put(h(1), key("key_1"), cache.generation());
        cache.put(h(2), None, cache.generation());
        assert_eq!(
            cache.get(&h(1)).flatten().map(|k| k.id.clone()),
            Some("key_1".into())
        );
        assert!(
            matches!(cache.get(&h(2)), Some(None)),
            "an unknown hash is cached too"
        );
        cache.forget_where(|k| k.id == "key_1");
        assert!(cache.get(&h(1)).is_none());
        assert!(cache.get(&h(2)).is_some());
    }

    #[test]
    fn a_lookup_that_raced_an_invalidation_is_not_stored() {
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        let before = cache.generation();
        cache.forget_where(|k| k.id == "key_1");
        cache.put(h(1), key("key_1"), before);
        assert!(cache.get(&h(1)).is_none());
    }

    #[test]
    fn size_is_bounded_and_zero_ttl_disables() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.put(h(i), None, cache.generation());
            assert!(cache.len() <= 3);
        }
        let off = KeyCache::new(Duration::ZERO, 3);
        off.put(h(0), None, off.generation());
        assert!(off.get(&h(0)).is_none());
        assert!(off.is_empty());
    }

    #[test]
    fn one_caller_refreshes_an_entry_past_half_its_ttl_while_the_others_use_it_within_the_limit() {
        let cache = KeyCache::new(Duration::from_millis(200), 3);
        cache.put(h(1), key("key_1"), cache.generation());
        assert!(
            cache.get(&h(1)).is_some() && cache.get(&h(1)).is_some(),
            "used as it is for half the TTL, by every caller"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert!(
            cache.get(&h(1)).is_none(),
            "the first caller past half the TTL refreshes"
        );
        assert!(
            cache.get(&h(1)).is_some(),
            "the others use the old answer meanwhile"
        );
        cache.put(h(1), None, cache.generation());
        assert!(
            matches!(cache.get(&h(1)), Some(None)),
            "the refreshed answer"
        );
        std::thread::sleep(Duration::from_millis(420));
        assert!(
            cache.get(&h(1)).is_none(),
            "past twice the TTL nobody uses it"
        );
        assert!(cache.get(&h(1)).is_none());
    }

    #[test]
    fn the_caller_that_refreshes_gets_the_old_answer_from_lookup() {
        let cache = KeyCache::new(Duration::from_millis(200), 3);
        cache.put(h(1), key("key_1"), cache.generation());
        assert!(matches!(cache.lookup(&h(1)), Lookup::Hit(Some(_))));
        std::thread::sleep(Duration::from_millis(120));
        assert!(
            matches!(cache.lookup(&h(1)), Lookup::Refresh(Some(_))),
            "one caller re-reads, with the old answer in hand"
        );
        assert!(matches!(cache.lookup(&h(1)), Lookup::Hit(Some(_))));
        cache.forget(&h(1));
        assert!(matches!(cache.lookup(&h(1)), Lookup::Miss));
    }

    #[test]
    fn drops_published_by_another_node_are_applied_here_and_stop_racing_lookups() {
        use crate::invalidate::Selector;
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        cache.put(h(1), key("key_1"), cache.generation());
        cache.put(h(2), key("key_2"), cache.generation());
        cache.put(h(3), None, cache.generation());
        let before = cache.generation();
        cache.apply(&Selector::Field("id".into(), "key_1".into()));
        assert!(cache.get(&h(1)).is_none(), "the named key is dropped");
        assert!(cache.get(&h(2)).is_some() && cache.get(&h(3)).is_some());
        cache.put(h(1), key("key_1"), before);
        assert!(
            cache.get(&h(1)).is_none(),
            "a lookup that began before the drop does not store its answer"
        );
        cache.apply(&Selector::Hash(h(2).0));
        assert!(cache.get(&h(2)).is_none(), "dropped by hash");
        cache.apply(&Selector::All);
        assert!(cache.is_empty(), "a flush drops everything");
    }

    #[test]
    fn entries_expire() {
        let cache = KeyCache::new(Duration::from_millis(20), 3);
        cache.put(h(0), None, cache.generation());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&h(0)).is_none());
        cache.forget_stale();
        assert!(cache.is_empty());
    }
}
