//! The benchmark's check floor: the least `GET /v1/auth/check` and `POST /v1/keys/verify` can do on
//! Tessera's HTTP stack (actix-web 4 and ring).
//!
//! `bench/run` puts Tessera's forward-auth and verify endpoints beside this server (see "The floors"
//! in bench/README.md). It does what any server doing the same job must do per request, and nothing
//! more:
//!
//! - `GET|POST /v1/auth/check` with `Authorization: Bearer <API key>`: HMAC-SHA256 of the presented key
//!   (ring, the key made once), a lookup of the HMAC in a hash map behind a read lock (a node's cache
//!   of known keys, as a real server keeps one in front of its database), and a 200 with the same
//!   headers as Tessera's (`X-Auth-Subject`, `X-Auth-Scopes`, `X-Auth-Key-Id`, `X-Auth-Env`,
//!   `X-RateLimit-*`, `Cache-Control: no-store`, `X-Content-Type-Options`, `Referrer-Policy`,
//!   `X-Request-Id`). The header values of a key are built once, when it enters the map.
//! - the same with a JWT access token (two dots): HMAC-SHA256 of the token and a lookup in a second
//!   map of tokens verified before, then the expiry against the clock, as Tessera's verified-token
//!   cache does; a token not in the map is verified (Ed25519, ring), its claims parsed and checked
//!   (issuer, expiry) and put in the map. Under load every request is a hit, so the steady state is
//!   the key path's work plus the expiry check. Headers: `X-Auth-Subject`, `X-Auth-Scopes`,
//!   `X-Auth-Client-Id`, `X-Auth-Audience` and the rest as above.
//! - `POST /v1/keys/verify {"key": …}`: the JSON body parsed with actix's `Json` extractor into the
//!   same request type as Tessera's, the same HMAC and lookup, and Tessera's JSON answer (`valid`,
//!   `code`, the key's facts, `ratelimit`) with its headers (`Content-Language`, `X-RateLimit-*`,
//!   `Cache-Control`, `X-Content-Type-Options`, `Referrer-Policy`, `X-Request-Id`).
//!
//! Not done, because the least server need not: no key format or checksum check, no rate limiting
//! (the `X-RateLimit-*` headers carry fixed figures and the current time), no usage counting, no
//! metrics, no middleware, no database behind the maps (a key or token not in them is refused, 401).
//! The request id is unique per request (a per-thread counter from a random start, mixed and written
//! in base62 like Tessera's `req_` ids) without asking the OS for randomness.
//!
//! ```sh
//! cargo run --release --example check_floor -- --bind 127.0.0.1:18285
//! ```
//!
//! At start it makes one API key (as Tessera's: `sk_live_` + 49 characters) and signs one access
//! token (RFC 9068 claims as Tessera's), puts the key in its map, and prints one line when it is
//! ready with the key, the token and the Ed25519 public key (base64url), so the benchmark can send
//! them and check the answers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

#[path = "floor/mod.rs"]
mod floor;
use floor::{bind_address, common_headers, now, other, random_id, rate_limit_headers};

/// The floor's access token lives a day: the benchmark keeps the floor up for its whole run.
const TOKEN_TTL_SECS: i64 = 86_400;
/// The `X-RateLimit-Limit` figures Tessera sends by default (per key, per IP for verify).
const KEY_LIMIT: u32 = 3000;
const IP_LIMIT: u32 = 500;

/// The raw HMAC of a presented credential, the maps' index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CredentialHash([u8; 32]);

/// An HMAC is already uniformly random: its first 8 bytes are the hash (no second hash function).
impl Hash for CredentialHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes the `u64` a [`CredentialHash`] writes through unchanged.
#[derive(Debug, Default)]
struct PassThrough(u64);

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

type Map<V> = RwLock<HashMap<CredentialHash, Arc<V>, BuildHasherDefault<PassThrough>>>;

/// A known API key: what the answers say about it, the headers built once.
#[derive(Debug)]
struct KnownKey {
    id: String,
    name: String,
    key_type: String,
    env: String,
    scopes: Vec<String>,
    subject_header: HeaderValue,
    scopes_header: HeaderValue,
    id_header: HeaderValue,
    env_header: HeaderValue,
}

/// The claims of an access token (RFC 9068, as Tessera issues them).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    scope: String,
    jti: String,
    iat: i64,
    exp: i64,
}

/// A token verified once: its expiry and its answer headers.
#[derive(Debug)]
struct VerifiedToken {
    exp: i64,
    subject: HeaderValue,
    scopes: HeaderValue,
    client_id: HeaderValue,
    audience: HeaderValue,
}

#[derive(Debug)]
struct Floor {
    hmac: hmac::Key,
    keys: Map<KnownKey>,
    tokens: Map<VerifiedToken>,
    /// The Ed25519 public key that verifies access tokens.
    public_key: Vec<u8>,
    /// base64url of the one JWS header the floor accepts.
    token_header: String,
    issuer: String,
}

impl Floor {
    fn hash(&self, purpose: &[u8], credential: &[u8]) -> CredentialHash {
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(purpose);
        ctx.update(&[0]);
        ctx.update(credential);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        CredentialHash(out)
    }

    fn known_key(&self, key: &str) -> Option<Arc<KnownKey>> {
        let hash = self.hash(b"api_key", key.as_bytes());
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hash)
            .cloned()
    }

    /// A token verified before (a map hit), or verified now and remembered; `None` when it is not
    /// one of ours. Expiry is checked on every request.
    fn verified_token(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        let hash = self.hash(b"at", token.as_bytes());
        let hit = self
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hash)
            .cloned();
        let verified = match hit {
            Some(v) => v,
            None => {
                let v = Arc::new(self.verify(token)?);
                self.tokens
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(hash, v.clone());
                v
            }
        };
        (verified.exp >= now()).then_some(verified)
    }

    /// One Ed25519 verification of a compact JWS, then its claims.
    fn verify(&self, token: &str) -> Option<VerifiedToken> {
        let (signed, sig) = token.rsplit_once('.')?;
        let (head, payload) = signed.split_once('.')?;
        if head != self.token_header {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(signed.as_bytes(), &sig)
            .ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if claims.iss != self.issuer || claims.exp < now() {
            return None;
        }
        Some(VerifiedToken {
            exp: claims.exp,
            subject: HeaderValue::from_str(&claims.sub).ok()?,
            scopes: HeaderValue::from_str(&claims.scope).ok()?,
            client_id: HeaderValue::from_str(&claims.client_id).ok()?,
            audience: HeaderValue::from_str(&claims.aud).ok()?,
        })
    }
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    error: &'a str,
    message: &'a str,
}

fn unauthorized() -> HttpResponse {
    let mut res = HttpResponse::Unauthorized();
    common_headers(&mut res);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tessera""#))
        .json(ErrorAnswer {
            error: "invalid_api_key",
            message: "The API key or access token is not valid.",
        })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"status": "ok"}))
}

/// `GET|POST /v1/auth/check`: the credential from `Authorization: Bearer`.
async fn check(floor: web::Data<Floor>, req: HttpRequest) -> HttpResponse {
    let Some(credential) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim())
    else {
        return unauthorized();
    };
    let mut res = HttpResponse::Ok();
    if credential.bytes().filter(|b| *b == b'.').count() == 2 {
        let Some(token) = floor.verified_token(credential) else {
            return unauthorized();
        };
        rate_limit_headers(&mut res, KEY_LIMIT);
        res.insert_header((
            HeaderName::from_static("x-auth-subject"),
            token.subject.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-scopes"),
            token.scopes.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-client-id"),
            token.client_id.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-audience"),
            token.audience.clone(),
        ));
    } else {
        let Some(key) = floor.known_key(credential) else {
            return unauthorized();
        };
        rate_limit_headers(&mut res, KEY_LIMIT);
        res.insert_header((
            HeaderName::from_static("x-auth-subject"),
            key.subject_header.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-scopes"),
            key.scopes_header.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-key-id"),
            key.id_header.clone(),
        ))
        .insert_header((
            HeaderName::from_static("x-auth-env"),
            key.env_header.clone(),
        ));
    }
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    common_headers(&mut res);
    res.finish()
}

/// Scopes from a list or a space/comma-separated string (Tessera's request type).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "parsed like Tessera's; the floor's key grants every scope"
)]
enum Scopes {
    List(Vec<String>),
    Text(String),
}

/// The body of `POST /v1/keys/verify`, as Tessera's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "parsed like Tessera's; the floor's key grants every scope"
)]
struct VerifyRequest {
    key: String,
    required_scopes: Option<Scopes>,
    required_env: Option<String>,
}

#[derive(Serialize)]
struct RateLimitFacts {
    limit: u32,
    remaining: u32,
    reset: i64,
}

/// Tessera's answer for a valid key.
#[derive(Serialize)]
struct VerifyAnswer<'a> {
    valid: bool,
    code: &'a str,
    key_id: &'a str,
    name: &'a str,
    r#type: &'a str,
    env: &'a str,
    scopes: Vec<&'a str>,
    owner: Option<()>,
    expires_at: Option<i64>,
    ratelimit: RateLimitFacts,
}

/// Tessera's answer for an unknown key.
#[derive(Serialize)]
struct Refusal<'a> {
    valid: bool,
    code: &'a str,
    message: &'a str,
}

async fn verify(floor: web::Data<Floor>, body: web::Json<VerifyRequest>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    rate_limit_headers(&mut res, IP_LIMIT);
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::CONTENT_LANGUAGE, HeaderValue::from_static("en-US")));
    common_headers(&mut res);
    let Some(key) = floor.known_key(&body.key) else {
        return res.json(Refusal {
            valid: false,
            code: "invalid_api_key",
            message: "The API key or access token is not valid.",
        });
    };
    res.json(VerifyAnswer {
        valid: true,
        code: "valid",
        key_id: &key.id,
        name: &key.name,
        r#type: &key.key_type,
        env: &key.env,
        scopes: key.scopes.iter().map(String::as_str).collect(),
        owner: None,
        expires_at: None,
        ratelimit: RateLimitFacts {
            limit: KEY_LIMIT,
            remaining: KEY_LIMIT - 1,
            reset: now() + 1,
        },
    })
}

/// The floor with one API key in its map, and one access token signed for it (not yet verified:
/// the first request that presents it verifies it).
fn setup(addr: SocketAddr) -> io::Result<(Floor, String, String)> {
    let rng = SystemRandom::new();
    let issuer = format!("http://{addr}");
    let mut secret = [0u8; 32];
    rng.fill(&mut secret)
        .map_err(|_| other("no system randomness"))?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| other("key generation failed"))?;
    let signer = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| other(&e.to_string()))?;
    let kid = random_id(&rng, "key_", 16)?;
    let token_header = URL_SAFE_NO_PAD
        .encode(format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"at+jwt"}}"#).as_bytes());
    let floor = Floor {
        hmac: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        keys: RwLock::default(),
        tokens: RwLock::default(),
        public_key: signer.public_key().as_ref().to_vec(),
        token_header,
        issuer,
    };

    let api_key = random_id(&rng, "sk_live_", 49)?;
    let id = random_id(&rng, "key_", 20)?;
    let header = |v: &str| HeaderValue::from_str(v).map_err(|e| other(&e.to_string()));
    let known = KnownKey {
        subject_header: header(&id)?,
        scopes_header: header("*")?,
        id_header: header(&id)?,
        env_header: header("live")?,
        id,
        name: "bench".to_owned(),
        key_type: "sk".to_owned(),
        env: "live".to_owned(),
        scopes: vec!["*".to_owned()],
    };
    let hash = floor.hash(b"api_key", api_key.as_bytes());
    floor
        .keys
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(hash, Arc::new(known));

    let client = random_id(&rng, "cli_", 24)?;
    let iat = now();
    let claims = Claims {
        iss: floor.issuer.clone(),
        sub: client.clone(),
        aud: floor.issuer.clone(),
        client_id: client,
        scope: "read".to_owned(),
        jti: random_id(&rng, "at_", 22)?,
        iat,
        exp: iat + TOKEN_TTL_SECS,
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| other(&e.to_string()))?;
    let mut token = format!("{}.{}", floor.token_header, URL_SAFE_NO_PAD.encode(payload));
    let sig = signer.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
    Ok((floor, api_key, token))
}

fn main() -> ExitCode {
    let result = bind_address("check_floor").and_then(|addr| {
        let (floor, key, token) = setup(addr)?;
        actix_web::rt::System::new().block_on(serve(addr, floor, key, token))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("check_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, floor: Floor, key: String, token: String) -> io::Result<()> {
    let public_key = URL_SAFE_NO_PAD.encode(&floor.public_key);
    let floor = web::Data::new(floor);
    // Workers: actix's default (one per core), as Tessera's unless TESSERA_WORKERS is set.
    let server = HttpServer::new(move || {
        App::new()
            .app_data(floor.clone())
            .route("/healthz", web::get().to(healthz))
            .service(
                web::resource("/v1/auth/check")
                    .route(web::get().to(check))
                    .route(web::post().to(check)),
            )
            .route("/v1/keys/verify", web::post().to(verify))
    })
    .bind(addr)?;
    println!(
        "check_floor listening on {addr}, api key {key}, access token {token}, \
         Ed25519 public key {public_key}"
    );
    server.run().await
}
