//! OpenID Connect's vocabulary (Core 1.0): the identity scopes and the claims each releases, the
//! `claims` request parameter, the subject a client sees of a user (public or pairwise), and the
//! `/oauth/userinfo` endpoint.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use super::access::{access_token_hash, cached_access, verify_access};
use super::model::Client;
use crate::accounts::User;
use crate::crypto::Hasher;
use crate::db;
use crate::error::AppError;
use crate::oauth::OAuth;

/// The claims of each identity scope (Core §5.4), of those Tessera keeps.
const PROFILE_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "locale",
    "updated_at",
];
const EMAIL_CLAIMS: &[&str] = &["email", "email_verified"];

/// Every claim Tessera can release about a user, for discovery's `claims_supported`.
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "locale",
    "updated_at",
    "email",
    "email_verified",
];

/// The Authentication Context Class of a password sign-in (ISO/IEC 29115 level 1).
pub const ACR: &str = "1";
/// How the user authenticated (RFC 8176): a password.
pub const AMR: &str = "pwd";

/// Whether a space-separated scope holds `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}

/// Where claims are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    IdToken,
    UserInfo,
}

impl Target {
    fn member(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::UserInfo => "userinfo",
        }
    }
}

/// The `claims` request parameter (Core §5.5) checked and kept as its two members, each a JSON
/// object of claim names to `null` or `{"essential", "value", "values"}`. `None` for anything that
/// is not such an object: the request is refused with `invalid_request`.
pub fn parse_claims_request(raw: &str) -> Option<String> {
    let Value::Object(top) = serde_json::from_str::<Value>(raw).ok()? else {
        return None;
    };
    let mut kept = Map::new();
    for (member, claims) in top {
        if member != "id_token" && member != "userinfo" {
            continue; // other members are for extensions (Core §5.5): ignored
        }
        let Value::Object(claims) = claims else {
            return None;
        };
        for (name, spec) in &claims {
            let ok = match spec {
                Value::Null => true,
                Value::Object(o) => {
                    o.get("essential").is_none_or(Value::is_boolean)
                        && o.get("values").is_none_or(Value::is_array)
                }
                _ => false,
            };
            if !ok || name.is_empty() || name.len() > 64 {
                return None;
            }
        }
        kept.insert(member, Value::Object(claims));
    }
    Some(Value::Object(kept).to_string())
}

/// The claim names a stored `claims` request asks for at `target`.
fn requested_claims(claims: Option<&str>, target: Target) -> Vec<String> {
    let Some(Ok(Value::Object(top))) = claims.map(serde_json::from_str::<Value>) else {
        return Vec::new();
    };
    match top.get(target.member()) {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Whether a stored `claims` request has a member for `target`.
pub fn requests(claims: &str, target: Target) -> bool {
    !requested_claims(Some(claims), target).is_empty()
}

/// The user's claims a grant of `scope` (and its `claims` request) releases at `target`, added to
/// `out`. A claim without a value (no name set) is left out (Core §5.3.2).
pub fn user_claims(
    user: &User,
    scope: &str,
    claims: Option<&str>,
    target: Target,
    out: &mut Map<String, Value>,
) {
    let mut names: Vec<String> = Vec::new();
    if has_scope(scope, "profile") {
        names.extend(PROFILE_CLAIMS.iter().map(|s| (*s).to_owned()));
    }
    if has_scope(scope, "email") {
        names.extend(EMAIL_CLAIMS.iter().map(|s| (*s).to_owned()));
    }
    names.extend(requested_claims(claims, target));
    let p = &user.profile;
    for name in names {
        let value = match name.as_str() {
            "name" => p.name.clone().map(Value::from),
            "given_name" => p.given_name.clone().map(Value::from),
            "family_name" => p.family_name.clone().map(Value::from),
            "preferred_username" => p.preferred_username.clone().map(Value::from),
            "picture" => p.picture.clone().map(Value::from),
            "locale" => p.locale.clone().map(Value::from),
            "updated_at" => Some(Value::from(user.updated_at)),
            "email" => Some(Value::from(user.email.clone())),
            "email_verified" => Some(Value::from(user.email_verified)),
            _ => None,
        };
        if let Some(value) = value {
            out.insert(name, value);
        }
    }
}

/// Whether a release at `target` needs the user's row (a scope or a `claims` member that asks for
/// more than `sub`).
pub fn needs_user(scope: &str, claims: Option<&str>, target: Target) -> bool {
    has_scope(scope, "profile")
        || has_scope(scope, "email")
        || requested_claims(claims, target)
            .iter()
            .any(|c| PROFILE_CLAIMS.contains(&c.as_str()) || EMAIL_CLAIMS.contains(&c.as_str()))
}

/// The algorithm of a client's ID tokens (and logout tokens): the one it registered, else RS256.
pub fn id_token_alg(client: &Client) -> crate::jwt::SigningAlg {
    client
        .id_token_signed_response_alg
        .as_deref()
        .and_then(crate::jwt::SigningAlg::from_jose)
        .unwrap_or(crate::jwt::SigningAlg::RS256)
}

/// The `sub` a client sees of a user: the user id (`public`), or for a `pairwise` client an HMAC
/// of its sector and the user id under the pepper (Core §8.1), the same for every client of one
/// sector and unrelated across sectors.
pub fn subject(hasher: &Hasher, client: &Client, user_id: &str) -> String {
    match (client.subject_type.as_str(), &client.sector_identifier) {
        ("pairwise", Some(sector)) => {
            let mut message = Vec::with_capacity(sector.len() + 1 + user_id.len());
            message.extend_from_slice(sector.as_bytes());
            message.push(0);
            message.extend_from_slice(user_id.as_bytes());
            hasher.tag("pairwise_subject", &message)
        }
        _ => user_id.to_owned(),
    }
}

/// The claims UserInfo answers with: `sub` and those the token's scopes release.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct UserInfo {
    /// The user as this client knows them (public or pairwise).
    sub: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    preferred_username: Option<String>,
    picture: Option<String>,
    locale: Option<String>,
    updated_at: Option<i64>,
    email: Option<String>,
    email_verified: Option<bool>,
}

/// The form of a UserInfo POST (RFC 6750 §2.2).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct UserInfoForm {
    /// The access token, when it is not in the `Authorization` header.
    access_token: Option<String>,
}

/// The operations of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(userinfo))]
pub(super) struct Docs;

/// `GET|POST /oauth/userinfo` (Core §5.3): the claims of the user behind a Bearer access token that
/// carries `openid`, as far as its scopes (and the `claims` request of its grant) allow. The token
/// comes in the `Authorization` header or, on a POST, as the form's `access_token` (RFC 6750 §2.2);
/// refusals are RFC 6750 §3 challenges.
#[utoipa::path(
    method(get, post),
    path = "/oauth/userinfo",
    operation_id = "userinfo",
    tag = "oauth",
    request_body(content = UserInfoForm, content_type = "application/x-www-form-urlencoded"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The user's claims (OpenID Connect Core §5.3)", body = UserInfo),
        (status = 400, description = "invalid_request: the token sent twice, or a malformed header or form"),
        (status = 401, description = "missing_token or invalid_token, with an RFC 6750 `WWW-Authenticate` challenge"),
        (status = 403, description = "insufficient_scope: the token was not granted `openid`"),
        (status = 413, description = "The body is too large"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let token = presented_token(&req, &body)?;
    state.metrics.userinfo("requested");
    let hash = access_token_hash(&state, &token);
    let claims = match cached_access(&state, &hash, &token) {
        Some(claims) => claims,
        None => {
            let st = state.clone();
            db::run(&state.pool, move |conn| {
                verify_access(conn, &st, hash, &token)
            })
            .await?
            .ok_or_else(|| {
                state.metrics.userinfo("invalid_token");
                AppError::Unauthorized("invalid_token")
            })?
        }
    };
    if !has_scope(&claims.scope, "openid") {
        state.metrics.userinfo("insufficient_scope");
        return Err(AppError::forbidden(
            "insufficient_scope",
            crate::i18n::Detail::Value {
                value: "openid".into(),
            },
        ));
    }
    let (client_id, user_id, jti) = (
        claims.client_id.clone(),
        claims.sub.clone(),
        claims.jti.clone(),
    );
    let found = db::run(&state.pool, move |conn| {
        let client = super::store::find_client(conn, &client_id)?;
        let user = crate::accounts::find_user(conn, &crate::accounts::UserId::from(user_id))
            .map(Some)
            .or_else(|e| match e {
                AppError::NotFound => Ok(None),
                e => Err(e),
            })?;
        let grant = super::store::find_grant_claims(conn, &jti)?;
        Ok((client, user, grant))
    })
    .await?;
    let (Some(client), Some(user), grant) = found else {
        // A service token (its subject is no user), or the user is gone.
        state.metrics.userinfo("invalid_token");
        return Err(AppError::Unauthorized("invalid_token"));
    };
    let mut out = Map::new();
    out.insert(
        "sub".into(),
        Value::from(subject(&state.hasher, &client, user.id.as_str())),
    );
    user_claims(
        &user,
        &claims.scope,
        grant.as_deref(),
        Target::UserInfo,
        &mut out,
    );
    state.metrics.userinfo("ok");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(out)))
}

fn malformed() -> AppError {
    AppError::bad_request(
        "invalid_request",
        crate::i18n::Detail::BearerRequestMalformed,
    )
}

/// The access token of a UserInfo request: the `Authorization: Bearer` header, or the form body's
/// `access_token` (not both: RFC 6750 §2 allows one method per request).
fn presented_token(req: &HttpRequest, body: &[u8]) -> Result<String, AppError> {
    let from_header = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| malformed())?;
            match v.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Some(token.trim().to_owned())
                }
                _ => return Err(malformed()),
            }
        }
    };
    let from_body = if req.method() == actix_web::http::Method::POST && !body.is_empty() {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let form = super::params::parse_form(content_type, body).map_err(|_| malformed())?;
        form.into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(malformed()),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(AppError::Unauthorized("missing_token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_request_keeps_its_two_members_and_refuses_other_shapes() {
        let kept = parse_claims_request(
            r#"{"userinfo":{"email":{"essential":true},"name":null},"id_token":{"auth_time":{"essential":true}},"x":1}"#,
        )
        .expect("valid");
        let v: Value = serde_json::from_str(&kept).expect("json");
        assert!(v.get("x").is_none());
        assert_eq!(
            requested_claims(Some(&kept), Target::UserInfo).len(),
            2,
            "{kept}"
        );
        for bad in [
            "[]",
            "nope",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"name":1}}"#,
            r#"{"id_token":{"name":{"essential":"yes"}}}"#,
        ] {
            assert!(parse_claims_request(bad).is_none(), "{bad}");
        }
    }
}
