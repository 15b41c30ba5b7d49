//! The benchmark's introspection floor: the least `POST /oauth/introspect` (RFC 7662) can do on
//! Tessera's HTTP stack (actix-web 4 and ring), for a JWT access token and a confidential client
//! authenticating with `client_secret_basic`.
//!
//! `bench/run` puts Tessera's introspection beside this server (see "The floors" in
//! bench/README.md). Per request it does what any server doing the job must, and nothing more:
//!
//! 1. reads the form body (`token`, `token_type_hint`; `application/x-www-form-urlencoded`);
//! 2. authenticates the caller: `Authorization: Basic`, base64 decoded, split at the colon
//!    (percent-decoded when it has escapes, RFC 6749 §2.3.1), the client looked up in a hash map
//!    behind a read lock and the secret checked as a constant-time HMAC-SHA256 comparison with the
//!    stored tag (ring), as Tessera stores client secrets;
//! 3. checks the token, one of two ways (two routes):
//!    - `POST /oauth/introspect`: HMAC-SHA256 of the token and a lookup in a map of tokens verified
//!      before, then the expiry against the clock, as Tessera's verified-token cache does (a token
//!      not in the map is verified as below and put in it). Under load every request is a hit.
//!    - `POST /oauth/introspect/verify-each`: one Ed25519 verification per request (ring), then
//!      the claims parsed from JSON and checked (issuer, expiry): issue 14's definition of the floor.
//! 4. checks that the token's audience is one the client may introspect, and answers Tessera's JSON
//!    (`active`, `token_type`, `scope`, `client_id`, `sub`, `aud`, `iss`, `exp`, `iat`, `jti`) with
//!    its headers (`Cache-Control: no-store`, `Pragma: no-cache`, `X-RateLimit-*`,
//!    `X-Content-Type-Options`, `Referrer-Policy`, `X-Request-Id`).
//!
//! Not done: no rate limiting (the `X-RateLimit-*` headers carry fixed figures and the current
//! time), no failed-authentication throttling, no revocation list, no metrics, no middleware, no
//! database behind the maps. The request id is unique per request (a per-thread counter from a
//! random start, mixed and written in base62 like Tessera's `req_` ids) without asking the OS for
//! randomness.
//!
//! ```sh
//! cargo run --release --example introspect_floor -- --bind 127.0.0.1:18286
//! ```
//!
//! At start it makes one client (`cli_` + 24 characters, a 43-character secret) allowed to
//! introspect tokens for its own issuer, signs one access token (RFC 9068 claims as Tessera's), and
//! prints one line when it is ready with the client's `id:secret`, the token and the Ed25519 public
//! key (base64url).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

#[path = "floor/mod.rs"]
mod floor;
use floor::{basic_client, bind_address, now, oauth_answer, other, random_id, rate_limit_headers};

/// The floor's access token lives a day: the benchmark keeps the floor up for its whole run.
const TOKEN_TTL_SECS: i64 = 86_400;
/// The `X-RateLimit-Limit` Tessera sends for introspection by default.
const INTROSPECTION_LIMIT: u32 = 6000;

/// The raw HMAC of a presented token, the map's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenHash([u8; 32]);

/// An HMAC is already uniformly random: its first 8 bytes are the hash (no second hash function).
impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes the `u64` a [`TokenHash`] writes through unchanged.
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

/// A confidential client: the HMAC tag of its secret and the audience it may introspect.
#[derive(Debug)]
struct Client {
    secret_tag: [u8; 32],
    audience: String,
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

#[derive(Debug)]
struct Floor {
    hmac: hmac::Key,
    clients: RwLock<HashMap<String, Arc<Client>>>,
    tokens: RwLock<HashMap<TokenHash, Arc<Claims>, BuildHasherDefault<PassThrough>>>,
    /// The Ed25519 public key that verifies access tokens.
    public_key: Vec<u8>,
    /// base64url of the one JWS header the floor accepts.
    token_header: String,
    issuer: String,
}

impl Floor {
    fn tag(&self, purpose: &[u8], secret: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(purpose);
        ctx.update(&[0]);
        ctx.update(secret);
        ctx.sign()
    }

    /// The client of `Authorization: Basic …` if its secret is right.
    fn authenticate(&self, req: &HttpRequest) -> Option<Arc<Client>> {
        basic_client(req, &self.hmac, |id| {
            let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
            let client = clients.get(id)?;
            Some((client.clone(), client.secret_tag))
        })
    }

    /// A token verified before (a map hit), or verified now and remembered. Expiry is checked on
    /// every request.
    fn cached(&self, token: &str) -> Option<Arc<Claims>> {
        let hash = TokenHash(self.tag(b"at", token.as_bytes()).as_ref().try_into().ok()?);
        let hit = self
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hash)
            .cloned();
        let claims = match hit {
            Some(c) => c,
            None => {
                let c = Arc::new(self.verify(token)?);
                self.tokens
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(hash, c.clone());
                c
            }
        };
        (claims.exp >= now()).then_some(claims)
    }

    /// One Ed25519 verification of a compact JWS, then its claims.
    fn verify(&self, token: &str) -> Option<Claims> {
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
        (claims.iss == self.issuer && claims.exp >= now()).then_some(claims)
    }
}

/// The answer for an active token, serialized from the claims.
#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    token_type: &'a str,
    scope: &'a str,
    client_id: &'a str,
    sub: &'a str,
    aud: &'a str,
    iss: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
}

#[derive(Serialize)]
struct Inactive {
    active: bool,
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    error: &'a str,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"status": "ok"}))
}

async fn introspect_cached(
    floor: web::Data<Floor>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    introspect(&floor, &req, &body, Floor::cached)
}

async fn introspect_verify_each(
    floor: web::Data<Floor>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    introspect(&floor, &req, &body, |f, t| f.verify(t).map(Arc::new))
}

fn introspect(
    floor: &Floor,
    req: &HttpRequest,
    body: &[u8],
    check: impl Fn(&Floor, &str) -> Option<Arc<Claims>>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    // `token_type_hint` changes nothing here: the floor knows one kind of token.
    let token = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value);
    let Some(client) = floor.authenticate(req) else {
        return oauth_answer(StatusCode::UNAUTHORIZED)
            .insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#))
            .json(ErrorAnswer {
                error: "invalid_client",
            });
    };
    let Some(token) = token else {
        return oauth_answer(StatusCode::BAD_REQUEST).json(ErrorAnswer {
            error: "invalid_request",
        });
    };
    let mut res = oauth_answer(StatusCode::OK);
    rate_limit_headers(&mut res, INTROSPECTION_LIMIT);
    match check(floor, &token) {
        Some(c) if c.aud == client.audience => res.json(Active {
            active: true,
            token_type: "Bearer",
            scope: &c.scope,
            client_id: &c.client_id,
            sub: &c.sub,
            aud: &c.aud,
            iss: &c.iss,
            exp: c.exp,
            iat: c.iat,
            jti: &c.jti,
        }),
        _ => res.json(Inactive { active: false }),
    }
}

/// The floor with one client in its map, and one access token signed for its issuer (not yet
/// verified: the first request that presents it verifies it). Returns `id:secret` and the token.
fn setup(addr: SocketAddr) -> io::Result<(Floor, String, String)> {
    let rng = SystemRandom::new();
    let issuer = format!("http://{addr}");
    let mut key = [0u8; 32];
    rng.fill(&mut key)
        .map_err(|_| other("no system randomness"))?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| other("key generation failed"))?;
    let signer = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| other(&e.to_string()))?;
    let kid = random_id(&rng, "key_", 16)?;
    let floor = Floor {
        hmac: hmac::Key::new(hmac::HMAC_SHA256, &key),
        clients: RwLock::default(),
        tokens: RwLock::default(),
        public_key: signer.public_key().as_ref().to_vec(),
        token_header: URL_SAFE_NO_PAD
            .encode(format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"at+jwt"}}"#).as_bytes()),
        issuer,
    };

    let client_id = random_id(&rng, "cli_", 24)?;
    let mut secret = [0u8; 32];
    rng.fill(&mut secret)
        .map_err(|_| other("no system randomness"))?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let mut secret_tag = [0u8; 32];
    secret_tag.copy_from_slice(floor.tag(b"client_secret", secret.as_bytes()).as_ref());
    floor
        .clients
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            client_id.clone(),
            Arc::new(Client {
                secret_tag,
                audience: floor.issuer.clone(),
            }),
        );

    let iat = now();
    let claims = Claims {
        iss: floor.issuer.clone(),
        sub: client_id.clone(),
        aud: floor.issuer.clone(),
        client_id: client_id.clone(),
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
    Ok((floor, format!("{client_id}:{secret}"), token))
}

fn main() -> ExitCode {
    let result = bind_address("introspect_floor").and_then(|addr| {
        let (floor, client, token) = setup(addr)?;
        actix_web::rt::System::new().block_on(serve(addr, floor, client, token))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("introspect_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, floor: Floor, client: String, token: String) -> io::Result<()> {
    let public_key = URL_SAFE_NO_PAD.encode(&floor.public_key);
    let floor = web::Data::new(floor);
    // Workers: actix's default (one per core), as Tessera's unless TESSERA_WORKERS is set.
    let server = HttpServer::new(move || {
        App::new()
            .app_data(floor.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/oauth/introspect", web::post().to(introspect_cached))
            .route(
                "/oauth/introspect/verify-each",
                web::post().to(introspect_verify_each),
            )
    })
    .bind(addr)?;
    println!(
        "introspect_floor listening on {addr}, client {client}, access token {token}, \
         Ed25519 public key {public_key}"
    );
    server.run().await
}
