//! `GET /oauth/authorize` and the consent form's `POST /oauth/authorize`: the request validated once
//! ([`AuthorizeRequest`]), then the signed-in user's answer (remembered consent, the consent page,
//! Allow or Deny) and a single-use code bound to the client, redirect URI, user, scope, API and PKCE
//! challenge. One database round trip per request; the client is read once, through the node's cache.

mod request;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use url::Url;

pub use request::{
    AuthorizeError, AuthorizeRequest, ClientError, OpenIdParams, redirect_matches, scope_string,
};

use super::params::{printable, repeated};
use super::store;
use crate::db::{self, Conn};
use crate::error::AppError;
use crate::i18n::{Detail, Lang};
use crate::oauth::OAuth;
use crate::pages::{csrf_token, html, verify_csrf};
use crate::request::RequestContext;

/// Purpose string of authorization-code hashes.
pub const CODE_PURPOSE: &str = "authorization_code";
/// The name under which a grant carries its PKCE challenge (oxide-auth's `Pkce` identifier).
pub const PKCE_EXTENSION: &str = "pkce";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(authorize_get).service(authorize_post);
}

/// `GET /oauth/authorize`: the authorization request from the client, via the browser.
#[get("/oauth/authorize")]
async fn authorize_get(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<OAuth>,
) -> Result<HttpResponse, AppError> {
    let params = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    authorize(req, ctx, state, params, None).await
}

/// `POST /oauth/authorize`: the consent form (Allow or Deny), CSRF-checked, with the request's parameters.
#[post("/oauth/authorize")]
async fn authorize_post(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<OAuth>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The consent form's own fields may not repeat either (the OAuth ones are checked by
    // `AuthorizeRequest::validate`).
    let ours: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k == "csrf_token" || k == "decision")
        .cloned()
        .collect();
    if let Some(name) = repeated(&ours) {
        return Err(AppError::bad_request(
            "invalid_request",
            Detail::RepeatedParameter {
                name: printable(name),
            },
        ));
    }
    let mut csrf = None;
    let mut decision = None;
    let mut params = Vec::new();
    for (k, v) in form {
        match k.as_str() {
            "csrf_token" => csrf = Some(v),
            "decision" => decision = Some(v),
            _ => params.push((k, v)),
        }
    }
    verify_csrf(&state, &req, csrf.as_deref().unwrap_or(""))?;
    let decision = match decision.as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return Err(AppError::bad_request(
                "invalid_request",
                Detail::DecisionAllowOrDeny,
            ));
        }
    };
    authorize(req, ctx, state, params, Some(decision)).await
}

/// What the user answered on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

/// The signed-in user, and what the consent page needs besides the request.
#[derive(Debug)]
struct Owner {
    user_id: String,
    email: String,
    lang: Lang,
    csrf_token: String,
    /// When the session signed in, and its public id.
    auth_time: i64,
    sid: String,
}

/// An answer for the client at its redirect URI: the parameters (RFC 9207 `iss` is added), in
/// the query or, with `response_mode=form_post`, POSTed by a page.
struct Reply {
    redirect_uri: Url,
    params: Vec<(&'static str, String)>,
    form_post: bool,
}

/// How an authorization request is answered.
enum Answer {
    /// The error page: the client or its redirect URI cannot be trusted.
    Page,
    /// Back to the client: a code, or an error.
    Client(Reply),
    /// The user must sign in (again): to the sign-in page, which returns here.
    SignIn(Url),
    /// The consent page.
    Consent(String),
}

async fn authorize(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<OAuth>,
    params: Vec<(String, String)>,
    decision: Option<Decision>,
) -> Result<HttpResponse, AppError> {
    let (csrf, csrf_cookie) = csrf_token(&state, &req);
    let owner = crate::accounts::current_user(&req)
        .await?
        .map(|current| Owner {
            user_id: current.user.id.to_string(),
            email: current.user.email.clone(),
            lang: ctx.lang,
            csrf_token: csrf,
            auth_time: current.auth_time,
            sid: current.sid,
        });
    let st = state.clone();
    let answer = db::run_writing(&state.pool, move |conn| {
        let request = match AuthorizeRequest::validate(conn, &st, params) {
            Ok(request) => request,
            Err(AuthorizeError::Page) => return Ok(Answer::Page),
            Err(AuthorizeError::Failed(e)) => return Err(e),
            Err(AuthorizeError::Redirect(refusal)) => {
                let ClientError {
                    redirect_uri,
                    error,
                    detail,
                    state: client_state,
                    form_post,
                } = *refusal;
                return Ok(Answer::Client(error_reply(
                    redirect_uri,
                    client_state.as_deref(),
                    error,
                    detail,
                    form_post,
                )));
            }
        };
        let Some(owner) = owner else {
            if request.oidc.prompt_none {
                return Ok(Answer::Client(refused(&request, "login_required", None)));
            }
            return sign_in(&st, &request, None).map(Answer::SignIn);
        };
        if let Some(required) = sign_in_required(&st, &request, &owner)? {
            return Ok(required);
        }
        answer(conn, &st, &request, &owner, decision)
    })
    .await?;
    let issuer = state.settings.issuer_str();
    let mut res = match answer {
        Answer::Page => {
            let page = super::pages::error_page(ctx.lang, ctx.id.as_str())?;
            return Ok(html(StatusCode::BAD_REQUEST, page));
        }
        Answer::Consent(page) => html(StatusCode::OK, page),
        Answer::SignIn(login) => see_other(&login),
        Answer::Client(mut reply) => {
            reply.params.push(("iss", issuer.to_owned()));
            if reply.form_post {
                let page = super::pages::form_post_page(
                    ctx.lang,
                    reply.redirect_uri.as_str(),
                    &reply.params,
                )?;
                let mut res = html(StatusCode::OK, page);
                res.headers_mut().insert(
                    header::REFERRER_POLICY,
                    header::HeaderValue::from_static("no-referrer"),
                );
                res
            } else {
                let mut to = reply.redirect_uri;
                to.query_pairs_mut().extend_pairs(reply.params.iter());
                see_other(&to)
            }
        }
    };
    if let Some(c) = csrf_cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// The sign-in page, returning to this request afterwards. A sign-in the request requires
/// (`prompt=login`, `max_age`, another user's `id_token_hint`) marks the return with the time from
/// which a session satisfies it (`forced`), so the request does not ask again once it is met.
fn sign_in(
    state: &OAuth,
    request: &AuthorizeRequest,
    forced: Option<i64>,
) -> Result<Url, AppError> {
    let kept = request
        .params
        .iter()
        .filter(|(k, _)| k != request::SIGNED_IN_AFTER);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(kept);
    if let Some(time) = forced {
        query.append_pair(
            request::SIGNED_IN_AFTER,
            &request::signed_in_after(state, time),
        );
    }
    let query = query.finish();
    let mut login = Url::parse(&format!("{}/login", state.settings.issuer_str()))
        .map_err(|_| AppError::internal("bad issuer URL"))?;
    login
        .query_pairs_mut()
        .append_pair("return_to", &format!("/oauth/authorize?{query}"))
        .extend_pairs(request.oidc.login_hint.as_ref().map(|h| ("login_hint", h)))
        .extend_pairs(request.oidc.ui_locales.map(|l| ("ui_locales", l.tag())));
    Ok(login)
}

/// When the signed-in session does not do for this request: `prompt=login`, a sign-in older than
/// `max_age`, or an `id_token_hint` naming another user. With `prompt=none` that is an error for
/// the client (`login_required`), else the sign-in page; `None` when the session does.
fn sign_in_required(
    state: &OAuth,
    request: &AuthorizeRequest,
    owner: &Owner,
) -> Result<Option<Answer>, AppError> {
    let oidc = &request.oidc;
    let now = db::now();
    if let Some(hint) = &oidc.id_token_hint {
        let Some(claims) = state
            .keyring
            .verify_own(hint, "JWT", state.settings.issuer_str())
        else {
            return Ok(Some(Answer::Client(refused(
                request,
                "invalid_request",
                Some(Detail::IdTokenHintInvalid),
            ))));
        };
        let expected = super::oidc::subject(&state.hasher, &request.client, &owner.user_id);
        if claims["sub"].as_str() != Some(expected.as_str()) {
            if oidc.prompt_none {
                return Ok(Some(Answer::Client(refused(
                    request,
                    "login_required",
                    None,
                ))));
            }
            return sign_in(state, request, Some(now)).map(|u| Some(Answer::SignIn(u)));
        }
    }
    let satisfied = oidc
        .signed_in_after
        .is_some_and(|after| owner.auth_time >= after);
    // `max_age=0` asks for a sign-in every time, as `prompt=login` (Core §3.1.2.1).
    let stale = oidc.prompt_login
        || oidc
            .max_age
            .is_some_and(|max_age| max_age == 0 || now - owner.auth_time > max_age);
    if !stale || satisfied {
        return Ok(None);
    }
    if oidc.prompt_none {
        return Ok(Some(Answer::Client(refused(
            request,
            "login_required",
            None,
        ))));
    }
    sign_in(state, request, Some(now)).map(|u| Some(Answer::SignIn(u)))
}

/// An error for the client of a valid request.
fn refused(request: &AuthorizeRequest, error: &'static str, detail: Option<Detail>) -> Reply {
    error_reply(
        request.redirect_uri.clone(),
        request.state.as_deref(),
        error,
        detail,
        request.form_post,
    )
}

/// The signed-in user's answer: Allow (remembered, then a code), Deny (`access_denied`), or, without
/// a decision, a code at once when an earlier consent covers the scopes (unless `prompt=consent`),
/// else the consent page.
fn answer(
    conn: &mut Conn,
    state: &OAuth,
    request: &AuthorizeRequest,
    owner: &Owner,
    decision: Option<Decision>,
) -> Result<Answer, AppError> {
    let client_id = &request.client.id;
    match decision {
        Some(Decision::Allow) => issue_code(conn, state, request, owner, true).map(Answer::Client),
        Some(Decision::Deny) => Ok(Answer::Client(refused(request, "access_denied", None))),
        None => {
            if !request.force_consent
                && let Some(given) =
                    store::find_consent(conn, &owner.user_id, client_id, &request.audience)?
            {
                let given: Vec<&str> = given.split(' ').collect();
                if request.scope.split(' ').all(|s| given.contains(&s)) {
                    return issue_code(conn, state, request, owner, false).map(Answer::Client);
                }
            }
            if request.oidc.prompt_none {
                return Ok(Answer::Client(refused(request, "consent_required", None)));
            }
            let page = super::pages::ConsentPage {
                lang: request.oidc.ui_locales.unwrap_or(owner.lang),
                csrf_token: &owner.csrf_token,
                user_email: &owner.email,
            };
            super::pages::consent_page(conn, request, &page).map(Answer::Consent)
        }
    }
}

/// How long a client's nonce is remembered (accepted once per client within this time).
const NONCE_RETENTION_SECS: i64 = 24 * 3600;

/// Stores a new code (256 random bits, kept only as its HMAC) bound to the client, redirect URI,
/// user, scope, API and PKCE challenge, valid for `code_ttl`, after remembering the consent when it
/// was just given (one write); the client's redirect URI with it. With `openid` the code also keeps
/// what the ID token will say of the sign-in (nonce, `auth_time`, `sid`, `claims`), and a nonce
/// this client used before is refused (`invalid_request`).
fn issue_code(
    conn: &mut Conn,
    state: &OAuth,
    request: &AuthorizeRequest,
    owner: &Owner,
    consented: bool,
) -> Result<Reply, AppError> {
    let code = crate::crypto::random_token();
    let hash = state.hasher.hash(CODE_PURPOSE, code.as_bytes());
    let now = db::now();
    let expires_at = now + state.settings.code_ttl.as_secs() as i64;
    let (client_id, user_id) = (request.client.id.to_string(), owner.user_id.clone());
    let (redirect_uri, scope) = (request.redirect_uri.to_string(), request.scope.clone());
    let (audience, challenge) = (request.audience.clone(), request.challenge.clone());
    let oidc = super::oidc::has_scope(&request.scope, "openid").then(|| store::CodeOidc {
        nonce: request.oidc.nonce.clone(),
        auth_time: owner.auth_time,
        sid: owner.sid.clone(),
        claims: request.oidc.claims.clone(),
    });
    let nonce_hash = request
        .oidc
        .nonce
        .as_ref()
        .map(|n| state.hasher.hash("nonce", n.as_bytes()));
    let fresh = conn.write(move |conn| -> Result<bool, AppError> {
        if let Some(nonce_hash) = &nonce_hash
            && !store::insert_used_nonce(conn, &client_id, nonce_hash, now + NONCE_RETENTION_SECS)?
        {
            return Ok(false);
        }
        if consented {
            store::upsert_consent(conn, &user_id, &client_id, &audience, &scope, now)?;
        }
        if let Some(o) = &oidc {
            store::insert_session_client(conn, &o.sid, &client_id, &user_id, now)?;
        }
        store::insert_code(
            conn,
            &store::NewCode {
                code_hash: &hash,
                client_id: &client_id,
                user_id: &user_id,
                redirect_uri: &redirect_uri,
                scope: &scope,
                audience: &audience,
                code_challenge: &challenge,
                created_at: now,
                expires_at,
                oidc: oidc.as_ref(),
            },
        )?;
        Ok(true)
    })?;
    if !fresh {
        return Ok(refused(
            request,
            "invalid_request",
            Some(Detail::NonceReused),
        ));
    }
    let mut params = vec![("code", code)];
    params.extend(request.state.clone().map(|s| ("state", s)));
    Ok(Reply {
        redirect_uri: request.redirect_uri.clone(),
        params,
        form_post: request.form_post,
    })
}

/// An error for the client at its redirect URI (RFC 6749 §4.1.2.1): `state` when sent, `error`, and
/// `error_description` in the catalogue's en-US text (ASCII, as the RFC asks).
fn error_reply(
    redirect_uri: Url,
    client_state: Option<&str>,
    error: &'static str,
    detail: Option<Detail>,
    form_post: bool,
) -> Reply {
    let description = match detail {
        Some(detail) => detail.render(Lang::En),
        None => crate::i18n::message(Lang::En, error, None),
    };
    let mut params = Vec::with_capacity(4);
    params.extend(client_state.map(|s| ("state", s.to_owned())));
    params.push(("error", error.to_owned()));
    params.push(("error_description", description));
    Reply {
        redirect_uri,
        params,
        form_post,
    }
}

/// A 303 to `location` that no cache keeps and no referrer follows.
fn see_other(location: &Url) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}
