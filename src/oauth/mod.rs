//! OAuth 2.0: clients, APIs and scopes, client authentication, the token endpoint and metadata.

mod access;
mod assertion;
pub mod authorize;
pub mod client_keys;
mod credentials;
mod introspect;
pub mod logout;
mod metadata;
pub mod model;
pub mod oidc;
mod pages;
mod params;
mod revoke;
pub mod scopes;
mod store;
pub mod token;

/// Access-token verification with the node's cache, for the forward-auth check.
pub use access::check_bearer;

use actix_web::web;

/// The registry of APIs and scopes lives in [`crate::apis`]; these two are named here too.
pub use crate::apis::{create_api, create_scope};
use crate::audit::{self, Actor, Origin};
use crate::config::SecretBytes;
use crate::crypto::{Hasher, random_id, random_token};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
pub use client_keys::JwksCache;
pub use credentials::{BasicCredentials, basic_credentials, forget_client};
pub use model::{Client, ClientId, GrantType, RedirectUri, TokenAuthMethod};
pub use pages::app_named_by_return_to;
pub use params::parse_form;
pub use scopes::grant_scopes;

/// OAuth clients by HMAC of the id, for client authentication (the secret is still checked on every request).
pub type ClientCache = crate::cache::HashCache<Client>;

/// The state of OAuth: its caches, the signing keys, the rate limits, and the features it builds on
/// (API keys for introspection and revocation, the APIs), beside the
/// [`AppState`](crate::state::AppState) it derefs to.
#[derive(Debug)]
pub struct OAuth {
    pub core: web::Data<crate::state::AppState>,
    /// The keys that sign access tokens.
    pub keyring: web::Data<crate::jwt::Keyring>,
    pub limits: web::Data<crate::ratelimit::RateLimits>,
    pub keys: web::Data<crate::apikeys::ApiKeys>,
    pub apis: web::Data<crate::apis::Apis>,
    /// Recently read OAuth clients, by HMAC of the client id, for the credential-cache TTL; a
    /// change through this node (secret regenerated, client deleted) drops the entry at once.
    pub client_cache: ClientCache,
    /// Recently verified access tokens (signature, expiry and revocation checked), by HMAC.
    pub token_cache: crate::jwt::TokenCache,
    /// Client JWKS fetched from their `jwks_uri`.
    pub jwks_cache: JwksCache,
    /// Logout tokens waiting for the clients' back-channels.
    pub backchannel: logout::Backchannel,
    /// Tokens issued per client, counted since the last flush.
    pub usage: crate::apikeys::usage::Usage,
}
crate::feature_state!(OAuth);

impl crate::cache::Fields for Client {
    fn field(&self, name: &str) -> Option<&str> {
        (name == "id").then_some(self.id.as_str())
    }
}

/// Purpose string of client-secret hashes (keeps them apart from other HMACs under the same pepper).
pub const CLIENT_SECRET_PURPOSE: &str = "client_secret";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The busiest first: routing tries the routes in order.
    token::configure(cfg);
    introspect::configure(cfg);
    revoke::configure(cfg);
    authorize::configure(cfg);
    metadata::configure(cfg);
    cfg.service(
        web::resource("/oauth/userinfo")
            .route(web::get().to(oidc::userinfo))
            .route(web::post().to(oidc::userinfo)),
    )
    .service(
        web::resource("/oauth/logout")
            .route(web::get().to(logout::end_session))
            .route(web::post().to(logout::end_session)),
    );
}

/// The OpenAPI description of the JSON routes `configure` adds (the authorization pages are HTML).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = token::Docs::openapi();
    doc.merge(metadata::Docs::openapi());
    doc.merge(revoke::Docs::openapi());
    doc.merge(introspect::Docs::openapi());
    doc.merge(oidc::Docs::openapi());
    doc
}

/// What a new client is made of (validated by [`create_client`]).
#[derive(Debug, Default)]
pub struct ClientInput {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub owner_user_id: Option<String>,
    /// `client_secret_basic` (default for confidential clients; `client_secret_post` also works),
    /// `client_secret_jwt`, `private_key_jwt`, or `none` (public clients).
    pub auth_method: Option<String>,
    /// `private_key_jwt`: the URL of the client's JWKS (https, or http on loopback)…
    pub jwks_uri: Option<String>,
    /// …or its public keys inline: a JWKS, a JWK, or PEM.
    pub jwks: Option<String>,
    /// A resource server: the audiences of the registered APIs whose tokens it may introspect.
    /// Empty: the client may not introspect.
    pub introspect: Vec<String>,
    /// OpenID Connect: `public` (default) or `pairwise` subjects.
    pub subject_type: Option<String>,
    /// `pairwise`: the sector (a host name) its subjects are computed for; by default the one host
    /// of its redirect URIs.
    pub sector_identifier: Option<String>,
    /// OpenID Connect: `RS256` (default), `ES256`, `EdDSA` (or `Ed25519`) for its ID tokens.
    pub id_token_signed_response_alg: Option<String>,
    /// RP-Initiated Logout: where the end-session endpoint may send the user afterwards (matched
    /// exactly).
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-Channel Logout: where logout tokens are POSTed when a session it signed in to ends.
    pub backchannel_logout_uri: Option<String>,
}

/// A client secret, shown once. `Debug` never prints it.
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// Registers a client with its redirect URIs and an audit event, in one transaction. Confidential clients
/// get a 256-bit secret from ring, stored only as its HMAC; the plaintext is returned once.
pub fn create_client(
    conn: &mut DbConn,
    hasher: &Hasher,
    master: &SecretBytes,
    input: &ClientInput,
    actor: Actor,
    origin: Origin,
) -> Result<(Client, Vec<String>, Option<ClientSecret>), AppError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(model::bad_request(Detail::TextLength {
            field: "name",
            max: 100,
        }));
    }
    let mut grants: Vec<GrantType> = Vec::new();
    for g in &input.grant_types {
        let grant = GrantType::parse_registration(g).ok_or_else(|| {
            model::bad_request(Detail::UnknownGrantType {
                value: g.chars().take(64).collect(),
            })
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        grants.push(GrantType::AuthorizationCode);
    }
    if input.public && grants.contains(&GrantType::ClientCredentials) {
        return Err(model::bad_request(Detail::PublicClientCredentials));
    }
    let mut uris: Vec<RedirectUri> = Vec::new();
    for raw in &input.redirect_uris {
        let uri = RedirectUri::parse(raw).map_err(|why| {
            model::bad_request(Detail::RedirectUriInvalid {
                uri: raw.chars().take(256).collect(),
                why: Box::new(why),
            })
        })?;
        if uris.contains(&uri) {
            return Err(model::bad_request(Detail::RedirectUriTwice {
                uri: raw.chars().take(256).collect(),
            }));
        }
        uris.push(uri);
    }
    if grants.contains(&GrantType::AuthorizationCode) && uris.is_empty() {
        return Err(model::bad_request(Detail::CodeGrantNeedsRedirectUri));
    }
    let mut scopes: Vec<&str> = Vec::new();
    for s in &input.scopes {
        for s in s.split(' ').filter(|s| !s.is_empty()) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
    }
    let method = match input.auth_method.as_deref() {
        None if input.public => TokenAuthMethod::None,
        None => TokenAuthMethod::ClientSecretBasic,
        Some(m) => TokenAuthMethod::parse(m).ok_or_else(|| {
            model::bad_request(Detail::UnknownAuthMethod {
                value: m.chars().take(64).collect(),
            })
        })?,
    };
    if input.public != (method == TokenAuthMethod::None) {
        return Err(model::bad_request(Detail::PublicMeansNone));
    }
    if grants.contains(&GrantType::JwtBearer) && !method.uses_jwt() {
        return Err(model::bad_request(Detail::JwtBearerNeedsJwtAuth));
    }
    let (jwks_uri, jwks) = match (method, &input.jwks_uri, &input.jwks) {
        (TokenAuthMethod::PrivateKeyJwt, Some(uri), None) => {
            let uri = RedirectUri::parse(uri)
                .map_err(|why| model::bad_request(Detail::JwksUriInvalid { why: Box::new(why) }))?;
            (Some(uri.as_str().to_owned()), None)
        }
        (TokenAuthMethod::PrivateKeyJwt, None, Some(keys)) => {
            let keys = client_keys::normalize_registered_keys(keys).map_err(|why| {
                model::bad_request(Detail::PublicKeyInvalid { why: Box::new(why) })
            })?;
            (None, Some(keys))
        }
        (TokenAuthMethod::PrivateKeyJwt, _, _) => {
            return Err(model::bad_request(Detail::PrivateKeyJwtNeedsKeys));
        }
        (_, None, None) => (None, None),
        _ => {
            return Err(model::bad_request(Detail::KeysOnlyForPrivateKeyJwt));
        }
    };
    let (subject_type, sector) = subject_of(input, &uris)?;
    let id_token_alg = match input.id_token_signed_response_alg.as_deref() {
        None => None,
        Some(a) => Some(
            crate::jwt::SigningAlg::from_jose(a)
                .ok_or_else(|| {
                    model::bad_request(Detail::IdTokenAlgUnknown {
                        value: a.chars().take(32).collect(),
                    })
                })?
                .as_str(),
        ),
    };
    let mut after_logout: Vec<String> = Vec::new();
    for raw in &input.post_logout_redirect_uris {
        let uri = RedirectUri::parse(raw).map_err(|why| {
            model::bad_request(Detail::RedirectUriInvalid {
                uri: raw.chars().take(256).collect(),
                why: Box::new(why),
            })
        })?;
        if !after_logout.iter().any(|u| u == uri.as_str()) {
            after_logout.push(uri.as_str().to_owned());
        }
    }
    let after_logout = after_logout.join(" ");
    let backchannel = input
        .backchannel_logout_uri
        .as_deref()
        .map(|raw| {
            RedirectUri::parse(raw)
                .map(|u| u.as_str().to_owned())
                .map_err(|why| {
                    model::bad_request(Detail::RedirectUriInvalid {
                        uri: raw.chars().take(256).collect(),
                        why: Box::new(why),
                    })
                })
        })
        .transpose()?;
    let id = random_id("cli", 24);
    let NewSecret {
        secret,
        hash: secret_hash,
        encrypted: secret_encrypted,
    } = new_secret(hasher, master, &id, method)?;
    let grant_types = grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let allowed = scopes.join(" ");
    let now = db::now();
    crate::db::transaction(conn, |conn| {
        let known = crate::apis::registered_scope_names(conn)?;
        if let Some(unknown) = scopes.iter().find(|s| !known.iter().any(|k| k == *s)) {
            return Err(model::bad_request(Detail::ScopeNotRegistered {
                scope: unknown.chars().take(128).collect(),
            }));
        }
        let introspect = crate::apis::registered_audiences(conn, &input.introspect)?;
        if !introspect.is_empty() && input.public {
            return Err(model::bad_request(Detail::PublicCannotIntrospect));
        }
        let introspect = (!introspect.is_empty()).then(|| introspect.join(" "));
        store::insert_client(
            conn,
            &store::NewClient {
                id: &id,
                name,
                owner_user_id: input.owner_user_id.as_deref(),
                is_public: input.public,
                secret_hash: secret_hash.as_deref(),
                auth_method: method.as_str(),
                grant_types: &grant_types,
                allowed_scopes: &allowed,
                secret_encrypted: secret_encrypted.as_deref(),
                jwks_uri: jwks_uri.as_deref(),
                jwks: jwks.as_deref(),
                introspect_audiences: introspect.as_deref(),
                subject_type,
                sector_identifier: sector.as_deref(),
                id_token_signed_response_alg: id_token_alg,
                post_logout_redirect_uris: &after_logout,
                backchannel_logout_uri: backchannel.as_deref(),
            },
            now,
        )?;
        for uri in &uris {
            store::insert_redirect_uri(conn, &id, uri.as_str(), now)?;
        }
        let event = audit::Event::new(actor, "client.create")
            .target("client", &id)
            .origin(origin)
            .details(serde_json::json!({
                "name": name, "public": input.public, "grant_types": grant_types,
                "token_endpoint_auth_method": method.as_str(), "jwks_uri": jwks_uri,
                "scopes": allowed, "introspect": introspect, "redirect_uris": uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                "subject_type": subject_type, "sector_identifier": sector,
                "post_logout_redirect_uris": after_logout, "backchannel_logout_uri": backchannel,
            }));
        audit::record(conn, event)?;
        let client = store::find_client(conn, &id)?.ok_or(AppError::NotFound)?;
        let uris = store::find_redirect_uris(conn, &id)?;
        Ok((client, uris, secret.map(ClientSecret)))
    })
}

/// A client's subject type, and for `pairwise` its sector: the one given (a host name), else the
/// one host all its redirect URIs share (OpenID Connect Core §8.1).
fn subject_of(
    input: &ClientInput,
    uris: &[RedirectUri],
) -> Result<(&'static str, Option<String>), AppError> {
    match input.subject_type.as_deref() {
        None | Some("public") => Ok(("public", None)),
        Some("pairwise") => {
            if let Some(sector) = &input.sector_identifier {
                let sector = sector.trim().to_ascii_lowercase();
                let valid = !sector.is_empty()
                    && sector.len() <= 253
                    && sector
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !valid {
                    return Err(model::bad_request(Detail::SectorIdentifierNeeded));
                }
                return Ok(("pairwise", Some(sector)));
            }
            let mut hosts = uris
                .iter()
                .filter_map(|u| url::Url::parse(u.as_str()).ok())
                .filter_map(|u| u.host_str().map(str::to_owned));
            let first = hosts.next();
            match first {
                Some(host) if hosts.all(|h| h == host) => Ok(("pairwise", Some(host))),
                _ => Err(model::bad_request(Detail::SectorIdentifierNeeded)),
            }
        }
        Some(other) => Err(model::bad_request(Detail::SubjectTypeUnknown {
            value: other.chars().take(32).collect(),
        })),
    }
}

/// A fresh client secret (for the methods that have one) and how it is kept at rest.
struct NewSecret {
    secret: Option<String>,
    hash: Option<String>,
    encrypted: Option<Vec<u8>>,
}

fn new_secret(
    hasher: &Hasher,
    master: &SecretBytes,
    id: &str,
    method: TokenAuthMethod,
) -> Result<NewSecret, AppError> {
    let secret = matches!(
        method,
        TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretJwt
    )
    .then(random_token);
    // client_secret_jwt needs the secret itself (it is the HMAC key): kept under the master key,
    // and not hashed, so it cannot be used as a plain secret. Other secrets are only hashed.
    let (hash, encrypted) = match (&secret, method) {
        (Some(s), TokenAuthMethod::ClientSecretJwt) => (
            None,
            Some(
                crate::jwt::keys::seal(master, &assertion::secret_aad(id), s.as_bytes())
                    .map_err(AppError::internal)?,
            ),
        ),
        (Some(s), _) => (Some(hasher.hash(CLIENT_SECRET_PURPOSE, s.as_bytes())), None),
        (None, _) => (None, None),
    };
    Ok(NewSecret {
        secret,
        hash,
        encrypted,
    })
}

/// Redirect URIs typed one per line (blank lines skipped). Every bad line is reported with its
/// number and why: not absolute, a fragment, a wildcard, http on a non-loopback host, a duplicate.
pub fn parse_redirect_uri_lines(text: &str) -> Result<Vec<RedirectUri>, Vec<Detail>> {
    let mut uris: Vec<RedirectUri> = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match RedirectUri::parse(line) {
            Ok(uri) if uris.contains(&uri) => {
                errors.push(Detail::OnLine {
                    line: n + 1,
                    what: Box::new(Detail::RedirectUriTwice {
                        uri: line.chars().take(256).collect(),
                    }),
                });
            }
            Ok(uri) => uris.push(uri),
            Err(why) => errors.push(Detail::OnLine {
                line: n + 1,
                what: Box::new(Detail::RedirectUriInvalid {
                    uri: line.chars().take(256).collect(),
                    why: Box::new(why),
                }),
            }),
        }
    }
    if errors.is_empty() {
        Ok(uris)
    } else {
        Err(errors)
    }
}

/// Clients by name; only `owner_user_id`'s when given.
pub fn list_clients(
    conn: &mut DbConn,
    owner_user_id: Option<&str>,
) -> Result<Vec<Client>, AppError> {
    Ok(store::find_clients(conn, owner_user_id)?)
}

/// A client and its redirect URIs; 404 when unknown.
pub fn find_client(conn: &mut DbConn, id: &ClientId) -> Result<(Client, Vec<String>), AppError> {
    let client = store::find_client(conn, id)?.ok_or(AppError::NotFound)?;
    let uris = store::find_redirect_uris(conn, id)?;
    Ok((client, uris))
}

/// Replaces a client's redirect URIs (already validated), audited, in one transaction.
pub fn set_redirect_uris(
    conn: &mut DbConn,
    id: &ClientId,
    uris: &[RedirectUri],
    actor: Actor,
    origin: Origin,
) -> Result<Vec<String>, AppError> {
    crate::db::transaction(conn, |conn| {
        let client = store::find_client(conn, id)?.ok_or(AppError::NotFound)?;
        if uris.is_empty() && client.has_grant(GrantType::AuthorizationCode) {
            return Err(model::bad_request(Detail::CodeGrantNeedsRedirectUri));
        }
        let now = db::now();
        store::delete_redirect_uris(conn, id)?;
        for uri in uris {
            store::insert_redirect_uri(conn, id, uri.as_str(), now)?;
        }
        store::touch_client(conn, id, now)?;
        let list: Vec<&str> = uris.iter().map(RedirectUri::as_str).collect();
        audit::record(
            conn,
            audit::Event::new(actor, "client.redirect_uris.update")
                .target("client", id)
                .origin(origin)
                .details(serde_json::json!({ "redirect_uris": list })),
        )?;
        Ok(store::find_redirect_uris(conn, id)?)
    })
}

/// Replaces a confidential client's secret: the old one stops working at once; the new one is
/// returned once. 409 for clients without a secret (public, `private_key_jwt`).
pub fn regenerate_secret(
    conn: &mut DbConn,
    hasher: &Hasher,
    master: &SecretBytes,
    id: &ClientId,
    actor: Actor,
    origin: Origin,
) -> Result<ClientSecret, AppError> {
    crate::db::transaction(conn, |conn| {
        let client = store::find_client(conn, id)?.ok_or(AppError::NotFound)?;
        let method = TokenAuthMethod::parse(&client.token_endpoint_auth_method)
            .unwrap_or(TokenAuthMethod::ClientSecretBasic);
        let fresh = new_secret(hasher, master, id, method)?;
        let Some(secret) = fresh.secret else {
            return Err(AppError::Conflict("client_has_no_secret"));
        };
        store::update_client_secret(
            conn,
            id,
            fresh.hash.as_deref(),
            fresh.encrypted.as_deref(),
            db::now(),
        )?;
        audit::record(
            conn,
            audit::Event::new(actor, "client.secret.regenerate")
                .target("client", id)
                .origin(origin),
        )?;
        Ok(ClientSecret(secret))
    })
}

/// Sets a client's own limit of token requests per minute (`None`: back to `TESSERA_TOKEN_RATE_LIMIT`);
/// audited. Nodes pick it up when their cached copy of the client expires (within the cache TTL).
pub fn set_token_rate_limit(
    conn: &mut DbConn,
    id: &ClientId,
    limit: Option<u32>,
    actor: Actor,
    origin: Origin,
) -> Result<(), AppError> {
    let stored = limit
        .map(|n| i32::try_from(n).ok().filter(|n| *n > 0))
        .map(|n| n.ok_or_else(|| model::bad_request(Detail::TokenRateLimitRange)))
        .transpose()?;
    crate::db::transaction(conn, |conn| {
        if !store::update_client_token_rate_limit(conn, id, stored, db::now())? {
            return Err(AppError::NotFound);
        }
        audit::record(
            conn,
            audit::Event::new(actor, "client.rate_limit")
                .target("client", id)
                .origin(origin)
                .details(serde_json::json!({ "token_rate_limit": stored })),
        )?;
        Ok(())
    })
}

/// Deletes a client with its redirect URIs, codes, consents, refresh tokens and the API keys it owns;
/// audited. Its access tokens fail introspection from now on.
pub fn delete_client(
    conn: &mut DbConn,
    id: &ClientId,
    actor: Actor,
    origin: Origin,
) -> Result<(), AppError> {
    crate::db::transaction(conn, |conn| {
        let client = store::find_client(conn, id)?.ok_or(AppError::NotFound)?;
        store::delete_client(conn, id)?;
        audit::record(
            conn,
            audit::Event::new(actor, "client.delete")
                .target("client", id)
                .origin(origin)
                .details(serde_json::json!({ "name": client.name })),
        )?;
        Ok(())
    })
}
