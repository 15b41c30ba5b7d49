//! Shared counters in Redis: the same GCRA as the in-process limiter, in one Lua script that reads
//! the Redis clock, so every node agrees and no two requests race.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::Decision;

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
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter")
    }
}

impl RedisLimiter {
    /// Connects lazily (a Redis that is down at start is only a warning; it is retried in the background).
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_lazy(config)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA),
        })
    }

    /// One request against `limit` per `period` for `key`; `Err` when Redis did not answer in time.
    pub async fn check(&self, key: &str, limit: u32, period: Duration) -> Result<Decision, String> {
        let limit = limit.max(1);
        let interval = (period.as_millis() as u64 / u64::from(limit)).max(1);
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(format!("tessera:rl:{key}"));
        invocation.arg(interval).arg(limit);
        let call = invocation.invoke_async::<Vec<i64>>(&mut conn);
        let out = actix_web::rt::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| "Redis did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let [allowed, remaining, retry_ms, reset_ms] = out[..] else {
            return Err("unexpected answer from the rate-limit script".into());
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
