//! `GET /oauth/authorize` and the consent form's `POST /oauth/authorize`: the request validated once
//! ([`AuthorizeRequest`]), then the signed-in user's answer (remembered consent, the consent page,
//! Allow or Deny) and a single-use code bound to the client, redirect URI, user, scope, API and PKCE
//! challenge. One database round trip per request; the client is read once, through the node's cache.

mod request;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use url::Url;

pub use request::{AuthorizeError, AuthorizeRequest, ClientError, redirect_matches, scope_string};

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
}

/// How an authorization request is answered.
enum Answer {
    /// The error page: the client or its redirect URI cannot be trusted.
    Page,
    /// Back to the client: a code, or an error (RFC 9207 `iss` is added).
    Client(Url),
    /// Nobody is signed in: to the sign-in page, which returns here.
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
                } = *refusal;
                return Ok(Answer::Client(error_url(
                    redirect_uri,
                    client_state.as_deref(),
                    error,
                    detail,
                )));
            }
        };
        match owner {
            None => sign_in(&st, &request).map(Answer::SignIn),
            Some(owner) => answer(conn, &st, &request, &owner, decision),
        }
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
        Answer::Client(mut to) => {
            to.query_pairs_mut().append_pair("iss", issuer);
            see_other(&to)
        }
    };
    if let Some(c) = csrf_cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// The sign-in page, returning to this request afterwards.
fn sign_in(state: &OAuth, request: &AuthorizeRequest) -> Result<Url, AppError> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request.params.iter())
        .finish();
    let mut login = Url::parse(&format!("{}/login", state.settings.issuer_str()))
        .map_err(|_| AppError::internal("bad issuer URL"))?;
    login
        .query_pairs_mut()
        .append_pair("return_to", &format!("/oauth/authorize?{query}"));
    Ok(login)
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
        Some(Decision::Allow) => {
            issue_code(conn, state, request, &owner.user_id, true).map(Answer::Client)
        }
        Some(Decision::Deny) => Ok(Answer::Client(error_url(
            request.redirect_uri.clone(),
            request.state.as_deref(),
            "access_denied",
            None,
        ))),
        None => {
            if !request.force_consent
                && let Some(given) =
                    store::find_consent(conn, &owner.user_id, client_id, &request.audience)?
            {
                let given: Vec<&str> = given.split(' ').collect();
                if request.scope.split(' ').all(|s| given.contains(&s)) {
                    return issue_code(conn, state, request, &owner.user_id, false)
                        .map(Answer::Client);
                }
            }
            let page = super::pages::ConsentPage {
                lang: owner.lang,
                csrf_token: &owner.csrf_token,
                user_email: &owner.email,
            };
            super::pages::consent_page(conn, request, &page).map(Answer::Consent)
        }
    }
}

/// Stores a new code (256 random bits, kept only as its HMAC) bound to the client, redirect URI,
/// user, scope, API and PKCE challenge, valid for `code_ttl`, after remembering the consent when it
/// was just given (one write); the client's redirect URI with it.
fn issue_code(
    conn: &mut Conn,
    state: &OAuth,
    request: &AuthorizeRequest,
    user_id: &str,
    consented: bool,
) -> Result<Url, AppError> {
    let code = crate::crypto::random_token();
    let hash = state.hasher.hash(CODE_PURPOSE, code.as_bytes());
    let now = db::now();
    let expires_at = now + state.settings.code_ttl.as_secs() as i64;
    let (client_id, user_id) = (request.client.id.to_string(), user_id.to_owned());
    let (redirect_uri, scope) = (request.redirect_uri.to_string(), request.scope.clone());
    let (audience, challenge) = (request.audience.clone(), request.challenge.clone());
    conn.write(move |conn| -> Result<(), AppError> {
        if consented {
            store::upsert_consent(conn, &user_id, &client_id, &audience, &scope, now)?;
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
            },
        )?;
        Ok(())
    })?;
    let mut to = request.redirect_uri.clone();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .extend_pairs(request.state.as_ref().map(|s| ("state", s)));
    Ok(to)
}

/// An error for the client at its redirect URI (RFC 6749 §4.1.2.1): `state` when sent, `error`, and
/// `error_description` in the catalogue's en-US text (ASCII, as the RFC asks).
fn error_url(
    mut to: Url,
    client_state: Option<&str>,
    error: &'static str,
    detail: Option<Detail>,
) -> Url {
    let description = match detail {
        Some(detail) => detail.render(Lang::En),
        None => crate::i18n::message(Lang::En, error, None),
    };
    to.query_pairs_mut()
        .extend_pairs(client_state.map(|s| ("state", s)))
        .append_pair("error", error)
        .append_pair("error_description", &description);
    to
}

/// A 303 to `location` that no cache keeps and no referrer follows.
fn see_other(location: &Url) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}
