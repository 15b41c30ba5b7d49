//! What the floors (`examples/*_floor.rs`) share: start-up ids, the per-request id, the clock, the
//! `--bind` argument and form decoding. Included by each floor with `#[path]`; not an example itself
//! (cargo builds `examples/*.rs` and `examples/*/main.rs` only).

#![allow(dead_code, reason = "each floor uses a part")]

use std::borrow::Cow;
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn other(msg: &str) -> io::Error {
    io::Error::other(msg.to_owned())
}

/// `prefix` + `len` base62 characters from the system's random source (start-up only).
pub fn random_id(rng: &SystemRandom, prefix: &str, len: usize) -> io::Result<String> {
    let mut out = String::from(prefix);
    while out.len() < prefix.len() + len {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)
            .map_err(|_| other("no system randomness"))?;
        for b in bytes {
            if b < 248 && out.len() < prefix.len() + len {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

thread_local! {
    /// Each worker thread's request-id counter; its start is drawn once per thread.
    static NEXT_ID: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        let _ = SystemRandom::new().fill(&mut seed);
        u64::from_le_bytes(seed)
    });
}

/// SplitMix64's output function: consecutive counters give unrelated-looking values.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `req_` + 24 base62 characters, unique per request (as Tessera's `X-Request-Id`).
pub fn request_id() -> HeaderValue {
    let n = NEXT_ID.with(|c| {
        let n = c.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(n);
        n
    });
    let mut out = [0u8; 28];
    out[..4].copy_from_slice(b"req_");
    for (i, chunk) in out[4..].chunks_mut(8).enumerate() {
        let mut x = mix(n ^ (i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
        for slot in chunk {
            *slot = BASE62[(x & 63) as usize % 62];
            x >>= 6;
        }
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("req_0"))
}

/// `--bind ADDR` or `--bind=ADDR`; nothing else. `name`: the floor's, for the usage line.
pub fn bind_address(name: &str) -> io::Result<SocketAddr> {
    let usage = || other(&format!("usage: {name} --bind 127.0.0.1:PORT"));
    let mut args = std::env::args().skip(1);
    let mut bind = None;
    while let Some(arg) = args.next() {
        if arg == "--bind" {
            bind = args.next();
        } else if let Some(v) = arg.strip_prefix("--bind=") {
            bind = Some(v.to_owned());
        } else {
            return Err(usage());
        }
    }
    bind.ok_or_else(usage)?
        .parse()
        .map_err(|e: std::net::AddrParseError| other(&format!("--bind: {e}")))
}

/// `application/x-www-form-urlencoded` decoding, only when there is something to decode.
pub fn form_decode(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b == b'%' || b == b'+') {
        let decoded: String = url::form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(s)
    }
}

/// `X-RateLimit-*` with fixed figures: the floors do not count.
pub fn rate_limit_headers(res: &mut actix_web::HttpResponseBuilder, limit: u32) {
    use actix_web::http::header::HeaderName;
    res.insert_header((
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(limit),
    ))
    .insert_header((
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(limit - 1),
    ))
    .insert_header((
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(now() + 1),
    ));
}

/// The client authenticated by `Authorization: Basic id:secret`: base64 decoded, split at the colon,
/// each part percent-decoded when it has escapes (RFC 6749 §2.3.1); `find` looks the client up by id
/// and gives its secret's tag, checked as a constant-time HMAC-SHA256 comparison (ring), as Tessera
/// stores client secrets.
pub fn basic_client<C>(
    req: &actix_web::HttpRequest,
    key: &ring::hmac::Key,
    find: impl FnOnce(&str) -> Option<(C, [u8; 32])>,
) -> Option<C> {
    use base64::Engine as _;
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = std::str::from_utf8(&decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let (id, secret) = (form_decode(id), form_decode(secret));
    let (client, tag) = find(id.as_ref())?;
    let mut data = Vec::with_capacity(14 + secret.len());
    data.extend_from_slice(b"client_secret\0");
    data.extend_from_slice(secret.as_bytes());
    ring::hmac::verify(key, &data, &tag).ok()?;
    Some(client)
}

/// The headers on every answer of Tessera's (its outermost middleware adds them).
pub fn common_headers(res: &mut actix_web::HttpResponseBuilder) {
    use actix_web::http::header::{self, HeaderName};
    res.insert_header((
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .insert_header((
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
    .insert_header((HeaderName::from_static("x-request-id"), request_id()));
}

/// An answer of an OAuth endpoint that carries tokens or their state: `no-store`, `no-cache` and the
/// common headers.
pub fn oauth_answer(status: actix_web::http::StatusCode) -> actix_web::HttpResponseBuilder {
    use actix_web::http::header;
    let mut res = actix_web::HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
    common_headers(&mut res);
    res
}
