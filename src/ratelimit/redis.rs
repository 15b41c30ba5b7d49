//! Shared counters in Redis: the same GCRA as the in-process limiter, in one Lua script that reads
//! the Redis clock, so every node agrees and no two requests race.

use std::time::Duration;

use std::sync::atomic::{AtomicI64, Ordering};

use redis::aio::ConnectionManager;

use super::Decision;
use super::failures::{self, Failure, Rule, now_ms};

/// KEYS[1]: the bucket; ARGV[1]: emission interval (ms); ARGV[2]: the limit (burst).
/// Returns {allowed, remaining, retry_after_ms, reset_ms}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * limit
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
local remaining = math.floor((interval * limit - (new_tat - now)) / interval)
return {1, remaining, 0, new_tat - now}
";

/// Every Redis call gives up after this long: a slow Redis must never hang a request.
const TIMEOUT: Duration = Duration::from_millis(250);

pub struct RedisLimiter {
    conn: ConnectionManager,
    script: redis::Script,
    record_failure: redis::Script,
    failure_wait: redis::Script,
    breaker: Breaker,
}

/// The circuit breaker in front of Redis: after a failed call Redis is skipped (the failure policy
/// applies at once, no request waits on the timeout) for a backoff that starts at [`MIN_BACKOFF`]
/// and doubles while Redis keeps failing, up to [`MAX_BACKOFF`]; then a single request probes it and
/// the others keep skipping until the probe has answered.
#[derive(Debug, Default)]
struct Breaker {
    /// Unix ms until which calls are skipped; 0 while Redis answers.
    skip_until: AtomicI64,
    /// The backoff after the next failure, in ms.
    backoff: AtomicI64,
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a Redis call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisError {
    /// Skipped: the breaker is open after a recent failure.
    Skipped,
    /// Redis failed or did not answer in time.
    Failed(String),
}

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped => f.write_str("skipped after a recent failure"),
            Self::Failed(e) => f.write_str(e),
        }
    }
}

impl Breaker {
    /// Whether this call may go to Redis (it is the probe when the breaker was open).
    fn admit(&self, now: i64) -> bool {
        let until = self.skip_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        // Past the backoff: exactly one caller probes; it holds the breaker open meanwhile.
        let hold = now + MAX_BACKOFF.as_millis() as i64;
        self.skip_until
            .compare_exchange(until, hold, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn succeeded(&self) {
        if self.skip_until.load(Ordering::Acquire) != 0 {
            self.skip_until.store(0, Ordering::Release);
            self.backoff.store(0, Ordering::Release);
        }
    }

    fn failed(&self, now: i64) {
        let min = MIN_BACKOFF.as_millis() as i64;
        let backoff = self.backoff.load(Ordering::Acquire).max(min);
        self.skip_until.store(now + backoff, Ordering::Release);
        self.backoff.store(
            (backoff * 2).min(MAX_BACKOFF.as_millis() as i64),
            Ordering::Release,
        );
    }
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter")
    }
}

impl RedisLimiter {
    /// Connects lazily (a Redis that is down at start is only a warning; it is retried in the background).
    pub fn new(url: &str) -> Result<Self, ::redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = client.get_connection_manager_lazy(config)?;
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA),
            record_failure: redis::Script::new(failures::RECORD),
            failure_wait: redis::Script::new(failures::WAIT),
            breaker: Breaker::default(),
        })
    }

    /// Runs one Redis call through the breaker, with the timeout.
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        if !self.breaker.admit(now_ms()) {
            return Err(RedisError::Skipped);
        }
        let out = match actix_web::rt::time::timeout(TIMEOUT, call).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(RedisError::Failed(e.to_string())),
            Err(_) => Err(RedisError::Failed(
                "Redis did not answer in time".to_owned(),
            )),
        };
        match &out {
            Ok(_) => self.breaker.succeeded(),
            Err(_) => self.breaker.failed(now_ms()),
        }
        out
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        self.guarded(invocation.invoke_async::<T>(&mut conn)).await
    }

    /// Milliseconds until `key` may try again after its failures.
    pub async fn failure_wait(&self, kind: Failure, key: &str) -> Result<i64, RedisError> {
        let invocation = self
            .failure_wait
            .key(format!("tessera:fail:{}:{key}", kind.name()));
        self.invoke(&invocation).await
    }

    /// Counts one failure of `key`; the milliseconds it must now wait.
    pub async fn record_failure(
        &self,
        kind: Failure,
        key: &str,
        rule: &Rule,
    ) -> Result<i64, RedisError> {
        let mut invocation = self
            .record_failure
            .key(format!("tessera:fail:{}:{key}", kind.name()));
        invocation
            .arg(rule.free)
            .arg(rule.base.as_millis() as u64)
            .arg(rule.max_delay.as_millis() as u64)
            .arg(rule.limit)
            .arg(rule.window.as_millis() as u64);
        self.invoke(&invocation).await
    }

    /// Forgets the failures of `key`.
    pub async fn clear_failures(&self, kind: Failure, key: &str) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        let name = format!("tessera:fail:{}:{key}", kind.name());
        let mut del = redis::cmd("DEL");
        del.arg(name);
        self.guarded(del.query_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// One request against `limit` per `period` for `key`; `Err` when Redis did not answer in time or
    /// the breaker skipped it.
    pub async fn check(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
    ) -> Result<Decision, RedisError> {
        let limit = limit.max(1);
        let interval = (period.as_millis() as u64 / u64::from(limit)).max(1);
        let mut invocation = self.script.key(format!("tessera:rl:{key}"));
        invocation.arg(interval).arg(limit);
        let out: Vec<i64> = self.invoke(&invocation).await?;
        let [allowed, remaining, retry_ms, reset_ms] = out[..] else {
            return Err(RedisError::Failed(
                "unexpected answer from the rate-limit script".into(),
            ));
        };
        let now = crate::db::now();
        Ok(Decision {
            allowed: allowed == 1,
            limit,
            remaining: remaining.max(0) as u32,
            retry_after: if allowed == 1 {
                0
            } else {
                ((retry_ms.max(1) + 999) / 1000) as u64
            },
            reset: now + (reset_ms.max(0) + 999) / 1000,
        })
    }
}
