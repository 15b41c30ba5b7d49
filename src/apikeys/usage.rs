//! Usage of API keys (requests) and OAuth clients (tokens issued), counted in memory on the request
//! path and added to the database in batches (every `TESSERA_USAGE_FLUSH_INTERVAL` and at shutdown),
//! so verifying a key or issuing a token never writes a counter.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection as _;

use crate::db::DbConn;

/// What happened to one request that presented a known key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    RateLimited,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    allowed: i64,
    denied: i64,
    rate_limited: i64,
    last_used_at: i64,
}

/// What a [`Usage`] counts: requests with API keys, or tokens issued to OAuth clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Meter {
    #[default]
    ApiKeys,
    Clients,
}

impl Meter {
    /// Where its counts go: (usage table, id column, owning table).
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::ApiKeys => ("api_key_usage", "key_id", "api_keys"),
            Self::Clients => ("client_usage", "client_id", "oauth_clients"),
        }
    }
}

/// Counts per UTC day and key (or client), keyed day first so that counting a request for an id
/// already seen today allocates nothing. FxHash: the ids are keys' and clients' own (found in the
/// database), never a presented value.
type ByDay = FxHashMap<i64, FxHashMap<String, Counts>>;

/// How many [`Shard`]s a [`Usage`] has: threads beyond this share them.
const SHARDS: usize = 8;

/// One part of the counts, on a cache line of its own: each thread counts into the shard of its
/// index, so two workers counting the same busy key do not pass one lock's line back and forth on
/// every request.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<ByDay>);

/// The shard of the calling thread: threads are numbered as they first count.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// Counts since the last flush, per day and key (or client), in [`SHARDS`] shards that a flush
/// adds together.
#[derive(Debug, Default)]
pub struct Usage {
    meter: Meter,
    shards: [Shard; SHARDS],
}

/// Key ids are `key_` + base62: anything else is never written into SQL text.
fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Usage {
    /// Counters for `meter`'s ids.
    pub fn new(meter: Meter) -> Self {
        Self {
            meter,
            shards: Default::default(),
        }
    }

    /// Counts one request (a few hundred nanoseconds: a map update under a short lock).
    pub fn record(&self, key_id: &str, outcome: Outcome, now: i64) {
        let day = now.div_euclid(86_400) * 86_400;
        let Ok(mut pending) = self.shards[shard_index()].0.lock() else {
            return;
        };
        let today = pending.entry(day).or_default();
        let c = match today.get_mut(key_id) {
            Some(c) => c,
            None => today.entry(key_id.to_owned()).or_default(),
        };
        match outcome {
            Outcome::Allowed => {
                c.allowed += 1;
                c.last_used_at = c.last_used_at.max(now);
            }
            Outcome::Denied => c.denied += 1,
            Outcome::RateLimited => c.rate_limited += 1,
        }
    }

    /// The (key or client, day) counts waiting for the next flush.
    pub fn pending(&self) -> usize {
        let mut waiting = FxHashSet::default();
        for shard in &self.shards {
            if let Ok(p) = shard.0.lock() {
                for (day, ids) in p.iter() {
                    waiting.extend(ids.keys().map(|id| (*day, id.clone())));
                }
            }
        }
        waiting.len()
    }

    /// Takes everything counted so far (the counts start again from zero), for one flush.
    pub fn take(&self) -> Pending {
        let mut counts: HashMap<(String, i64), Counts> = HashMap::new();
        for shard in &self.shards {
            let by_day = shard
                .0
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            for (day, ids) in by_day {
                for (id, c) in ids {
                    counts.entry((id, day)).or_default().add(&c);
                }
            }
        }
        Pending {
            meter: self.meter,
            counts,
        }
    }

    /// Puts back the counts of a flush that failed, for the next one.
    pub fn put_back(&self, failed: Pending) {
        let Ok(mut pending) = self.shards[shard_index()].0.lock() else {
            return;
        };
        for ((id, day), c) in failed.counts {
            pending
                .entry(day)
                .or_default()
                .entry(id)
                .or_default()
                .add(&c);
        }
    }
}

impl Counts {
    fn add(&mut self, other: &Self) {
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.rate_limited += other.rate_limited;
        self.last_used_at = self.last_used_at.max(other.last_used_at);
    }
}

/// Counts taken from a [`Usage`] by one flush ([`Usage::take`]).
#[derive(Debug, Clone)]
pub struct Pending {
    meter: Meter,
    counts: HashMap<(String, i64), Counts>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Adds the counts to the usage table and moves `last_used_at` forward, inside the caller's
    /// write (`db::Conn::write`: on SQLite, the writer's transaction). Returns the rows written. On
    /// failure the caller rolls back and puts the counts back ([`Usage::put_back`]).
    pub fn write(&self, conn: &mut DbConn) -> Result<usize, diesel::result::Error> {
        if self.counts.is_empty() {
            return Ok(0);
        }
        let (table, column, owner) = self.meter.tables();
        let mut sql = String::new();
        for ((id, day), c) in &self.counts {
            if !safe_id(id) {
                continue;
            }
            sql.push_str(&format!(
                "INSERT INTO {table} ({column}, day, allowed, denied, rate_limited) \
                 SELECT '{id}', {day}, {a}, {d}, {r} WHERE EXISTS (SELECT 1 FROM {owner} WHERE id = '{id}') \
                 ON CONFLICT ({column}, day) DO UPDATE SET allowed = {table}.allowed + excluded.allowed, \
                 denied = {table}.denied + excluded.denied, \
                 rate_limited = {table}.rate_limited + excluded.rate_limited;\n",
                a = c.allowed,
                d = c.denied,
                r = c.rate_limited,
            ));
            if c.last_used_at > 0 && owner == "api_keys" {
                sql.push_str(&format!(
                    "UPDATE api_keys SET last_used_at = {t} WHERE id = '{id}' \
                     AND (last_used_at IS NULL OR last_used_at < {t});\n",
                    t = c.last_used_at
                ));
            }
        }
        conn.batch_execute(&sql)?;
        Ok(self.counts.len())
    }
}

/// One day of usage: (UTC day start in unix seconds, allowed, denied, rate limited).
pub type DayCounts = (i64, i64, i64, i64);

/// Usage per day since `since_day` of the keys `key_ids`, summed over the keys, oldest day first
/// (only days with traffic).
pub fn daily(
    conn: &mut DbConn,
    key_ids: &[super::ApiKeyId],
    since_day: i64,
) -> diesel::QueryResult<Vec<DayCounts>> {
    use diesel::prelude::*;

    use crate::db::schema::api_key_usage as u;
    if key_ids.is_empty() {
        return Ok(Vec::new());
    }
    let key_ids: Vec<&str> = key_ids.iter().map(|k| k.as_str()).collect();
    let rows: Vec<DayCounts> = u::table
        .filter(u::key_id.eq_any(key_ids))
        .filter(u::day.ge(since_day))
        .select((u::day, u::allowed, u::denied, u::rate_limited))
        .load(conn)?;
    let mut by_day: std::collections::BTreeMap<i64, DayCounts> = Default::default();
    for (day, a, d, r) in rows {
        let e = by_day.entry(day).or_insert((day, 0, 0, 0));
        e.1 += a;
        e.2 += d;
        e.3 += r;
    }
    Ok(by_day.into_values().collect())
}

/// Tokens issued per day since `since_day` to the client `client_id`, oldest day first.
pub fn client_daily(
    conn: &mut DbConn,
    client_id: &str,
    since_day: i64,
) -> diesel::QueryResult<Vec<DayCounts>> {
    use diesel::prelude::*;

    use crate::db::schema::client_usage as u;
    u::table
        .filter(u::client_id.eq(client_id))
        .filter(u::day.ge(since_day))
        .order(u::day.asc())
        .select((u::day, u::allowed, u::denied, u::rate_limited))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush that failed puts its counts back, merged with what was counted meanwhile.
    #[test]
    fn counts_put_back_after_a_failed_flush_are_merged_into_the_next() {
        let usage = Usage::new(Meter::ApiKeys);
        usage.record("key_a", Outcome::Allowed, 100);
        usage.record("key_a", Outcome::Denied, 100);
        let failed = usage.take();
        assert_eq!(usage.pending(), 0, "taken");
        usage.record("key_a", Outcome::Allowed, 200);
        usage.record("key_b", Outcome::RateLimited, 200);
        usage.put_back(failed);
        let next = usage.take();
        let a = next.counts[&("key_a".to_owned(), 0)];
        assert_eq!(
            (a.allowed, a.denied, a.rate_limited, a.last_used_at),
            (2, 1, 0, 200)
        );
        let b = next.counts[&("key_b".to_owned(), 0)];
        assert_eq!((b.allowed, b.rate_limited), (0, 1));
        assert_eq!(next.counts.len(), 2);
    }

    /// Threads count into their own shards; a flush adds them together, and counts each (id, day)
    /// once in what is pending.
    #[test]
    fn counts_from_many_threads_are_added_together() {
        let usage = std::sync::Arc::new(Usage::new(Meter::Clients));
        let threads: Vec<_> = (0..(SHARDS + 3))
            .map(|t| {
                let usage = usage.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        usage.record("cli_a", Outcome::Allowed, 86_400 + t as i64 * 10 + i);
                        usage.record("cli_b", Outcome::Denied, 3 * 86_400);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("counted");
        }
        assert_eq!(usage.pending(), 2);
        let all = usage.take();
        let a = all.counts[&("cli_a".to_owned(), 86_400)];
        let n = (SHARDS + 3) as i64 * 100;
        assert_eq!((a.allowed, a.denied), (n, 0));
        assert_eq!(a.last_used_at, 86_400 + (SHARDS as i64 + 2) * 10 + 99);
        let b = all.counts[&("cli_b".to_owned(), 3 * 86_400)];
        assert_eq!((b.allowed, b.denied), (0, n));
        assert_eq!(all.counts.len(), 2);
        assert_eq!(usage.pending(), 0);
    }
}
