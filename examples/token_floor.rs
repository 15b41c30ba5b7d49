//! The benchmark's floor: the least a token endpoint can do on Tessera's HTTP stack.
//!
//! `bench/run` measures Tessera's `POST /oauth/token` (client_credentials, EdDSA JWT) as a ratio to its
//! own `GET /healthz`. This server answers the same request with nothing but what every such endpoint
//! has to do on actix-web 4 and ring: read the form body, build RFC 9068-shaped claims (`iss`, `sub`,
//! `aud`, `client_id`, `scope`, a random `jti`, `iat`, `exp`), sign them with one Ed25519 key generated
//! at start and answer the token as JSON. No client authentication (the `Authorization` header is
//! ignored), no database, no cache, no rate limits, no metrics, no middleware. Its `/healthz` answers
//! the same small JSON as Tessera's. Its ratio of `/oauth/token` to `/healthz` is therefore an upper
//! bound of what any token endpoint on this stack reaches on the machine it runs on; `bench/run` puts it
//! next to Tessera's figures (see "The floors" in bench/README.md).
//!
//! ```sh
//! cargo run --release --example token_floor -- --bind 127.0.0.1:18284
//! ```
//!
//! It prints one line when it is ready to listen, with the public key (base64url) that verifies its
//! tokens, so a benchmark can check that every answer is a real signature.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::Serialize;

/// The `sub` and `client_id` of every token: as long as one of Tessera's client ids (`cli_` + 24).
const CLIENT_ID: &str = "cli_floor0000000000000000000";
const TTL_SECS: i64 = 900;
const SCOPE: &str = "read";

/// What every request shares: the key, the random source, the pre-encoded JWT header and the issuer.
#[derive(Debug)]
struct Floor {
    key: Ed25519KeyPair,
    rng: SystemRandom,
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
        Ok(Self {
            key,
            rng,
            header,
            issuer,
        })
    }

    /// `header.claims.signature`, base64url without padding (RFC 7515 compact serialization).
    fn sign(&self) -> Result<String, ring::error::Unspecified> {
        let mut id = [0u8; 16];
        self.rng.fill(&mut id)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let claims = Claims {
            iss: &self.issuer,
            sub: CLIENT_ID,
            aud: &self.issuer,
            client_id: CLIENT_ID,
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

fn other(msg: &str) -> io::Error {
    io::Error::other(msg.to_owned())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"status": "ok"}))
}

async fn token(floor: web::Data<Floor>, body: web::Bytes) -> HttpResponse {
    const GRANT: &[u8] = b"grant_type=client_credentials";
    if !body.windows(GRANT.len()).any(|w| w == GRANT) {
        return HttpResponse::BadRequest()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(ErrorResponse {
                error: "unsupported_grant_type",
            });
    }
    match floor.sign() {
        Ok(access_token) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: TTL_SECS,
                scope: SCOPE,
            }),
        Err(_) => HttpResponse::InternalServerError().json(ErrorResponse {
            error: "server_error",
        }),
    }
}

/// `--bind ADDR` or `--bind=ADDR`; nothing else.
fn bind_address() -> io::Result<SocketAddr> {
    let usage = || other("usage: token_floor --bind 127.0.0.1:PORT");
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

fn main() -> ExitCode {
    let result = bind_address().and_then(|addr| {
        let floor = Floor::new(format!("http://{addr}"))?;
        actix_web::rt::System::new().block_on(serve(addr, floor))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, floor: Floor) -> io::Result<()> {
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
    println!("token_floor listening on {addr}, Ed25519 public key {public_key}");
    server.run().await
}
