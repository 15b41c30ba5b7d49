//! Failed attempts (sign-ins, client authentications) counted per IP and per account, with growing
//! delays: successes never count. A key that failed too often is refused *before* any password or
//! secret is checked, until its delay or its window is over.
//!
//! The in-process store is bounded ([`CAPACITY`] keys); Redis (when configured) shares the counts
//! between nodes with the same rule in one Lua script.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What failed; each kind has its own counters and rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A failed sign-in, per client IP.
    SignInIp,
    /// A failed sign-in, per account (the HMAC of the normalised e-mail address).
    SignInAccount,
    /// A failed client authentication at the token, revocation or introspection endpoint, per IP.
    ClientAuthIp,
}

impl Failure {
    /// The `limiter` label of this kind's refusals (one of [`super::LIMITERS`]).
    pub fn label(self) -> &'static str {
        match self {
            Self::SignInIp => "sign_in_ip",
            Self::SignInAccount => "sign_in_account",
            Self::ClientAuthIp => "client_auth_ip",
        }
    }

    /// How many kinds there are (the in-process store keeps one map per kind).
    const COUNT: usize = 3;

    /// This kind's map in the in-process store.
    fn index(self) -> usize {
        match self {
            Self::SignInIp => 0,
            Self::SignInAccount => 1,
            Self::ClientAuthIp => 2,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::SignInIp => "signin-ip",
            Self::SignInAccount => "signin-account",
            Self::ClientAuthIp => "client-ip",
        }
    }
}

/// How failures of one kind are judged: the first `free` failures in a window cost nothing; each
/// further one blocks the key for `base` doubling up to `max_delay`; `limit` failures in one window
/// block the key until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub free: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// At most this many failures per window (0: no such cap).
    pub limit: u32,
    pub window: Duration,
}

impl Rule {
    /// The rule for `kind`: `per_ip_limit` failures per IP in 15 minutes (`TESSERA_AUTH_RATE_LIMIT`,
    /// the seeds' 50). Failed sign-ins from one IP past a fifth of that (at least 10) also wait,
    /// 1 s doubling up to 30 s; an account is delayed from its 6th failure on, 1 s doubling up to
    /// 15 minutes. Failed client authentications only have the limit: clients are programs, which
    /// do not guess.
    pub fn for_kind(kind: Failure, per_ip_limit: u32) -> Self {
        let window = Duration::from_secs(15 * 60);
        let limit = per_ip_limit.max(1);
        match kind {
            Failure::SignInIp => Self {
                free: (limit / 5).max(10),
                base: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                limit,
                window,
            },
            Failure::ClientAuthIp => Self {
                free: limit,
                base: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                limit,
                window,
            },
            Failure::SignInAccount => Self {
                free: 5,
                base: Duration::from_secs(1),
                max_delay: window,
                limit: 0,
                window,
            },
        }
    }

    /// Until when (ms) a key with `failures` in a window ending at `window_end` is blocked.
    fn blocked_until(&self, failures: u32, now: i64, window_end: i64) -> i64 {
        if self.limit > 0 && failures >= self.limit {
            return window_end;
        }
        if failures <= self.free {
            return 0;
        }
        let doublings = (failures - self.free - 1).min(30);
        let delay = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        now + delay.as_millis() as i64
    }
}

/// The counters of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    failures: u32,
    window_end: i64,
    blocked_until: i64,
}

impl State {
    fn expires_at(&self) -> i64 {
        self.window_end.max(self.blocked_until)
    }
}

/// How many keys the in-process store holds at most, per node. Past it, expired keys go first, then
/// keys that are not blocked: an attacker spraying new IPs or accounts cannot grow the memory, and
/// a key that is blocked stays blocked.
pub const CAPACITY: usize = 100_000;

/// The keys of each kind of failure (indexed by `Failure::index`): a map per kind is looked up by
/// the key's text, so the check every token request makes copies nothing.
type Keys = [HashMap<String, State>; Failure::COUNT];

/// The in-process failure counters of one node.
#[derive(Debug, Default)]
pub struct LocalFailures {
    keys: Mutex<Keys>,
    /// Whether each kind counts any key, read without the lock: while nobody has failed at a kind
    /// (the common case), its check takes no lock and needs no key. Written under the lock.
    any: [std::sync::atomic::AtomicBool; Failure::COUNT],
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl LocalFailures {
    /// Whether any key counts failures of `kind` (when not, every key may go on).
    pub fn any(&self, kind: Failure) -> bool {
        self.any[kind.index()].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`Self::any`] from the maps, after a change to them.
    fn note(&self, keys: &Keys) {
        for (any, of_kind) in self.any.iter().zip(keys.iter()) {
            any.store(!of_kind.is_empty(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Milliseconds until `key` may try again (0: now).
    pub fn wait(&self, kind: Failure, key: &str, now: i64) -> i64 {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys[kind.index()]
            .get(key)
            .map_or(0, |s| (s.blocked_until - now).max(0))
    }

    /// Counts one failure of `key`; returns the milliseconds it must now wait.
    pub fn record(&self, kind: Failure, key: &str, rule: &Rule, now: i64) -> i64 {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if total(&keys) >= CAPACITY && !keys[kind.index()].contains_key(key) {
            make_room(&mut keys, now);
        }
        let window = rule.window.as_millis() as i64;
        let state = keys[kind.index()].entry(key.to_owned()).or_insert(State {
            failures: 0,
            window_end: now + window,
            blocked_until: 0,
        });
        if now >= state.window_end {
            *state = State {
                failures: 0,
                window_end: now + window,
                blocked_until: 0,
            };
        }
        state.failures = state.failures.saturating_add(1);
        state.blocked_until = rule.blocked_until(state.failures, now, state.window_end);
        let wait = (state.blocked_until - now).max(0);
        self.note(&keys);
        wait
    }

    /// Forgets the failures of `key` (a success of the account).
    pub fn clear(&self, kind: Failure, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys[kind.index()].remove(key);
        self.note(&keys);
    }

    /// Drops keys whose window and delay are over (called by the janitor).
    pub fn forget_expired(&self, now: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for of_kind in keys.iter_mut() {
            of_kind.retain(|_, s| s.expires_at() > now);
            of_kind.shrink_to_fit();
        }
        self.note(&keys);
    }

    pub fn len(&self) -> usize {
        total(&self.keys.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many keys the store holds, of every kind.
fn total(keys: &Keys) -> usize {
    keys.iter().map(HashMap::len).sum()
}

/// Frees at least a tenth of the store: expired keys, then keys that are not blocked.
fn make_room(keys: &mut Keys, now: i64) {
    for of_kind in keys.iter_mut() {
        of_kind.retain(|_, s| s.expires_at() > now);
    }
    if total(keys) < CAPACITY {
        return;
    }
    let mut excess = total(keys) - CAPACITY * 9 / 10;
    for of_kind in keys.iter_mut() {
        of_kind.retain(|_, s| {
            if excess > 0 && s.blocked_until <= now {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
    if total(keys) >= CAPACITY {
        // Everything is blocked: the oldest windows go.
        let mut ends: Vec<i64> = keys
            .iter()
            .flat_map(|of_kind| of_kind.values().map(|s| s.window_end))
            .collect();
        ends.sort_unstable();
        let cut = ends[ends.len() / 10];
        for of_kind in keys.iter_mut() {
            of_kind.retain(|_, s| s.window_end > cut);
        }
    }
}

/// KEYS[1]: the key; ARGV: free, base ms, max delay ms, limit, window ms.
/// Counts one failure; returns the milliseconds to wait.
pub(super) const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free, base, maxd, limit, window =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'f', 'w')
local f, w = tonumber(v[1]) or 0, tonumber(v[2]) or 0
if now >= w then f = 0; w = now + window end
f = f + 1
local b = 0
if limit > 0 and f >= limit then
  b = w
elseif f > free then
  local d = base * (2 ^ math.min(f - free - 1, 30))
  if d > maxd then d = maxd end
  b = now + d
end
redis.call('HSET', KEYS[1], 'f', f, 'w', w, 'b', b)
redis.call('PEXPIRE', KEYS[1], math.max(w, b) - now + 1000)
return math.max(b - now, 0)
";

/// KEYS[1]: the key. Returns the milliseconds to wait (0: now).
pub(super) const WAIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = tonumber(redis.call('HGET', KEYS[1], 'b')) or 0
return math.max(b - now, 0)
";

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_rule(limit: u32) -> Rule {
        Rule::for_kind(Failure::SignInIp, limit)
    }

    #[test]
    fn the_first_free_failures_cost_nothing_then_delays_double_up_to_the_cap() {
        let store = LocalFailures::default();
        let rule = Rule::for_kind(Failure::SignInAccount, 50);
        let now = 1_000_000;
        for _ in 0..5 {
            assert_eq!(store.record(Failure::SignInAccount, "a", &rule, now), 0);
        }
        assert_eq!(store.record(Failure::SignInAccount, "a", &rule, now), 1_000);
        assert_eq!(store.wait(Failure::SignInAccount, "a", now), 1_000);
        assert_eq!(store.wait(Failure::SignInAccount, "a", now + 1_000), 0);
        assert_eq!(store.record(Failure::SignInAccount, "a", &rule, now), 2_000);
        assert_eq!(store.record(Failure::SignInAccount, "a", &rule, now), 4_000);
        for _ in 0..40 {
            store.record(Failure::SignInAccount, "a", &rule, now);
        }
        assert_eq!(store.wait(Failure::SignInAccount, "a", now), 15 * 60 * 1000);
        // Another account and another kind are not affected.
        assert_eq!(store.wait(Failure::SignInAccount, "b", now), 0);
        assert_eq!(store.wait(Failure::SignInIp, "a", now), 0);
        store.clear(Failure::SignInAccount, "a");
        assert_eq!(store.wait(Failure::SignInAccount, "a", now), 0);
    }

    #[test]
    fn the_limit_blocks_until_the_window_ends_and_a_new_window_starts_afresh() {
        let store = LocalFailures::default();
        let rule = Rule {
            free: 100,
            ..ip_rule(3)
        };
        let now = 5_000;
        assert_eq!(store.record(Failure::SignInIp, "ip", &rule, now), 0);
        assert_eq!(store.record(Failure::SignInIp, "ip", &rule, now + 10), 0);
        let window = 15 * 60 * 1000;
        assert_eq!(
            store.record(Failure::SignInIp, "ip", &rule, now + 20),
            window - 20
        );
        assert_eq!(store.wait(Failure::SignInIp, "ip", now + window), 0);
        assert_eq!(
            store.record(Failure::SignInIp, "ip", &rule, now + window),
            0
        );
    }

    #[test]
    fn the_store_says_which_kinds_count_any_key() {
        let store = LocalFailures::default();
        let rule = Rule::for_kind(Failure::ClientAuthIp, 50);
        let now = 1_000_000;
        assert!(!store.any(Failure::ClientAuthIp));
        store.record(Failure::ClientAuthIp, "192.0.2.1", &rule, now);
        assert!(store.any(Failure::ClientAuthIp));
        assert!(!store.any(Failure::SignInAccount), "another kind");
        store.clear(Failure::ClientAuthIp, "192.0.2.1");
        assert!(!store.any(Failure::ClientAuthIp));
        store.record(Failure::ClientAuthIp, "192.0.2.1", &rule, now);
        store.forget_expired(now + 16 * 60 * 1000);
        assert!(!store.any(Failure::ClientAuthIp), "expired");
    }

    #[test]
    fn the_store_stays_bounded_and_keeps_blocked_keys() {
        let store = LocalFailures::default();
        let rule = Rule {
            free: 0,
            ..ip_rule(1_000)
        };
        let now = 1;
        store.record(Failure::ClientAuthIp, "blocked", &rule, now);
        for i in 0..CAPACITY + 5_000 {
            let spare = Rule { free: 10, ..rule };
            store.record(Failure::ClientAuthIp, &format!("k{i}"), &spare, now);
        }
        assert!(store.len() <= CAPACITY);
        assert!(store.wait(Failure::ClientAuthIp, "blocked", now) > 0);
        store.forget_expired(now + 16 * 60 * 1000);
        assert!(store.is_empty());
    }
}
