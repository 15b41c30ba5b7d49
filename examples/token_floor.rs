//! The benchmark's token floor: the least a token endpoint can do on Tessera's HTTP stack.
//!
//! `bench/run` puts Tessera's `POST /oauth/token` (client_credentials, EdDSA JWT) beside this server
//! (see "The floors" in bench/README.md). Per request it does what any such endpoint must do on
//! actix-web 4 and ring, and nothing more:
//!
//! 1. reads the form body (`grant_type=client_credentials` must be in it);
//! 2. authenticates the client (RFC 6749 §4.4.2: the client MUST authenticate): `Authorization:
//!    Basic`, base64 decoded, split at the colon (percent-decoded when it has escapes, §2.3.1), the
//!    client looked up in a hash map behind a read lock and the secret checked as a constant-time
//!    HMAC-SHA256 comparison with the stored tag (ring), as Tessera stores client secrets; a wrong
//!    one is `401 invalid_client`;
//! 3. builds RFC 9068-shaped claims (`iss`, `sub`, `aud`, `client_id`, `scope`, a random `jti`,
//!    `iat`, `exp`), signs them with one Ed25519 key generated at start and answers the token as JSON
//!    with Tessera's headers (`Cache-Control: no-store`, `Pragma: no-cache`, `X-RateLimit-*`,
//!    `X-Content-Type-Options`, `Referrer-Policy`, `X-Request-Id`).
//!
//! Not done: no database, no cache, no rate limiting (the `X-RateLimit-*` headers carry fixed
//! figures and the current time), no failed-authentication throttling, no usage counting, no
//! metrics, no middleware. Before 2026-11-30 this floor did not authenticate the client nor send
//! those headers, so its figures from earlier runs are not comparable with later ones.
//!
//! ```sh
//! cargo run --release --example token_floor -- --bind 127.0.0.1:18284
//! ```
//!
//! It prints one line when it is ready with its client's `id:secret` and the public key (base64url)
//! that verifies its tokens, so a benchmark can authenticate and check that every answer is a real
//! signature.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::Serialize;

#[path = "floor/mod.rs"]
mod floor;
use floor::{basic_client, bind_address, now, oauth_answer, other, random_id, rate_limit_headers};

const TTL_SECS: i64 = 900;
const SCOPE: &str = "read";
/// The `X-RateLimit-Limit` Tessera sends at the token endpoint by default (per client).
const TOKEN_LIMIT: u32 = 6000;

/// A confidential client: its id (the tokens' `sub` and `client_id`) and the HMAC tag of its secret.
#[derive(Debug)]
struct Client {
    id: String,
    secret_tag: [u8; 32],
}

/// What every request shares: the key, the random source, the clients, the pre-encoded JWT header
/// and the issuer.
#[derive(Debug)]
struct Floor {
    key: Ed25519KeyPair,
    rng: SystemRandom,
    hmac: hmac::Key,
    clients: RwLock<HashMap<String, Arc<Client>>>,
    /// base64url of `{"alg":"EdDSA","typ":"at+jwt","kid":"floor"}`, encoded once.
    header: String,
    /// `http://ADDR`, also the audience (as Tessera's default API).
    issuer: String,
}

#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, Serialize)]
struct TokenResponse<'a> {
    access_token: String,
    token_type: &'a str,
    expires_in: i64,
    scope: &'a str,
}

#[derive(Debug, Serialize)]
struct ErrorResponse<'a> {
    error: &'a str,
}

impl Floor {
    fn new(issuer: String) -> io::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| other("key generation failed"))?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| other(&e.to_string()))?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"floor"}"#);
        let mut hmac_key = [0u8; 32];
        rng.fill(&mut hmac_key)
            .map_err(|_| other("no system randomness"))?;
        Ok(Self {
            key,
            rng,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &hmac_key),
            clients: RwLock::default(),
            header,
            issuer,
        })
    }

    /// A new client with a random secret; returns `id:secret`.
    fn add_client(&self) -> io::Result<String> {
        let id = random_id(&self.rng, "cli_", 24)?;
        let mut secret = [0u8; 32];
        self.rng
            .fill(&mut secret)
            .map_err(|_| other("no system randomness"))?;
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let mut data = b"client_secret\0".to_vec();
        data.extend_from_slice(secret.as_bytes());
        let mut secret_tag = [0u8; 32];
        secret_tag.copy_from_slice(hmac::sign(&self.hmac, &data).as_ref());
        let client = Arc::new(Client {
            id: id.clone(),
            secret_tag,
        });
        self.clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), client);
        Ok(format!("{id}:{secret}"))
    }

    /// The client of `Authorization: Basic …` if its secret is right.
    fn authenticate(&self, req: &HttpRequest) -> Option<Arc<Client>> {
        basic_client(req, &self.hmac, |id| {
            let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
            let client = clients.get(id)?;
            Some((client.clone(), client.secret_tag))
        })
    }

    /// `header.claims.signature`, base64url without padding (RFC 7515 compact serialization).
    fn sign(&self, client: &Client) -> Result<String, ring::error::Unspecified> {
        let mut id = [0u8; 16];
        self.rng.fill(&mut id)?;
        let now = now();
        let claims = Claims {
            iss: &self.issuer,
            sub: &client.id,
            aud: &self.issuer,
            client_id: &client.id,
            scope: SCOPE,
            jti: format!("at_{}", URL_SAFE_NO_PAD.encode(id)),
            iat: now,
            exp: now + TTL_SECS,
        };
        let claims = serde_json::to_vec(&claims).map_err(|_| ring::error::Unspecified)?;
        let mut token = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 96);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

/// Tessera's headers on a token endpoint answer (`X-RateLimit-*` with fixed figures: the floor does
/// not count).
fn answer(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut res = oauth_answer(status);
    rate_limit_headers(&mut res, TOKEN_LIMIT);
    res
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"status": "ok"}))
}

async fn token(floor: web::Data<Floor>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    const GRANT: &[u8] = b"grant_type=client_credentials";
    if !body.windows(GRANT.len()).any(|w| w == GRANT) {
        return answer(StatusCode::BAD_REQUEST).json(ErrorResponse {
            error: "unsupported_grant_type",
        });
    }
    let Some(client) = floor.authenticate(&req) else {
        return answer(StatusCode::UNAUTHORIZED)
            .insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#))
            .json(ErrorResponse {
                error: "invalid_client",
            });
    };
    match floor.sign(&client) {
        Ok(access_token) => answer(StatusCode::OK).json(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: TTL_SECS,
            scope: SCOPE,
        }),
        Err(_) => answer(StatusCode::INTERNAL_SERVER_ERROR).json(ErrorResponse {
            error: "server_error",
        }),
    }
}

fn main() -> ExitCode {
    let result = bind_address("token_floor").and_then(|addr| {
        let floor = Floor::new(format!("http://{addr}"))?;
        let client = floor.add_client()?;
        actix_web::rt::System::new().block_on(serve(addr, floor, client))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, floor: Floor, client: String) -> io::Result<()> {
    let public_key = URL_SAFE_NO_PAD.encode(floor.key.public_key().as_ref());
    let floor = web::Data::new(floor);
    // Workers: actix's default (one per core), as Tessera's unless TESSERA_WORKERS is set.
    let server = HttpServer::new(move || {
        App::new()
            .app_data(floor.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/oauth/token", web::post().to(token))
    })
    .bind(addr)?;
    println!("token_floor listening on {addr}, client {client}, Ed25519 public key {public_key}");
    server.run().await
}
