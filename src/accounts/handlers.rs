//! HTTP handlers: `/`, `/login`, `/logout`, `/v1/users`. Thin: extract, authorize, validate, call, respond.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, LOCATION};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template as _;
use serde::Deserialize;

use super::pages::{AccountPage, AccountText, LoginPage, LoginText};
use super::{
    AppOfReturnTo, CurrentUser, Email, Password, SESSION_COOKIE, SESSION_PURPOSE, UserView,
};
use super::{create_user, current_user, password, session_cookie, store};
use crate::accounts::Accounts;
use crate::audit::{self, Actor};
use crate::db;
use crate::error::AppError;
use crate::i18n::{self, Lang};
use crate::pages::{
    AFTER_SIGN_IN, csrf_token, html_with_csrf, new_csrf, safe_return_path, verify_csrf,
};
use crate::ratelimit::{Network, failures::Failure};
use crate::request::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home)
        .service(login_page)
        .service(login)
        .service(logout)
        .service(account_page)
        .service(save_profile)
        .service(list_users)
        .service(post_user);
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The dashboard for a signed-in user; the sign-in page for everyone else.
#[get("/")]
async fn home(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Ok(match current_user(&req).await? {
        Some(_) => see_other(AFTER_SIGN_IN),
        None => see_other("/login"),
    })
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    /// OpenID Connect `login_hint`: the email the form starts with.
    login_hint: Option<String>,
    /// OpenID Connect `ui_locales`: the page's language when it speaks one of them.
    ui_locales: Option<String>,
}

/// "Sign in to continue to <app>" when `return_to` is an authorization request of a known app.
async fn continue_to(
    req: &HttpRequest,
    state: &Accounts,
    lang: Lang,
    return_to: &str,
) -> Result<Option<String>, AppError> {
    let Some(named) = req.app_data::<web::Data<AppOfReturnTo>>().map(|d| d.0) else {
        return Ok(None);
    };
    let return_to = return_to.to_owned();
    let name = db::run(&state.pool, move |conn| named(conn, &return_to)).await?;
    Ok(name.map(|value| {
        i18n::message(
            lang,
            "sign_in_to_continue",
            Some(&i18n::Detail::Value { value }),
        )
    }))
}

async fn login_form(
    state: &Accounts,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    return_to: &str,
    email: &str,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (token, cookie) = csrf_token(state, req);
    let continue_to = continue_to(req, state, lang, return_to).await?;
    let body = LoginPage {
        lang: lang.tag(),
        t: LoginText::for_lang(lang),
        csrf_token: &token,
        return_to,
        continue_to,
        email,
        error,
    }
    .render()?;
    html_with_csrf(status, body, cookie)
}

#[get("/login")]
async fn login_page(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<Accounts>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_path(&state.settings.issuer, query.return_to.as_deref());
    let lang = query
        .ui_locales
        .as_deref()
        .and_then(Lang::first_supported)
        .unwrap_or(ctx.lang);
    let hint: String = query
        .login_hint
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(254)
        .collect();
    login_form(&state, &req, lang, StatusCode::OK, &return_to, &hint, None).await
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
    return_to: Option<String>,
}

/// The key under which an account's failed sign-ins count: an HMAC of the address as typed
/// (trimmed, lower-cased), so neither memory nor Redis holds the address itself.
fn account_key(state: &Accounts, typed: &str) -> String {
    state.hasher.hash(
        "signin-account",
        typed.trim().to_ascii_lowercase().as_bytes(),
    )
}

/// Checks the password (Argon2id, behind the password gate), replaces any session with a new one,
/// 303s back. Failed sign-ins count per IP and per account with growing delays (successes do not);
/// while either must wait, the password is not even checked: 429 with `Retry-After`.
#[post("/login")]
#[tracing::instrument(skip_all)]
async fn login(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<Accounts>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    if let Err(e) = verify_csrf(&state, &req, &form.csrf_token) {
        state.metrics.sign_in_failed("csrf_failed");
        return Err(e);
    }
    let form = form.into_inner();
    let return_to = safe_return_path(&state.settings.issuer, form.return_to.as_deref());
    let refuse = async |status: StatusCode, message: String, retry_after: u64| {
        let mut res = login_form(
            &state,
            &req,
            ctx.lang,
            status,
            &return_to,
            &form.email,
            Some(message),
        )
        .await?;
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        Ok::<_, AppError>(res)
    };
    let ip = Network::of(crate::request::client_addr(&req)).to_string();
    let account = account_key(&state, &form.email);
    let gates = [(Failure::SignInIp, &ip), (Failure::SignInAccount, &account)];
    for (kind, key) in gates {
        if let Err(AppError::RateLimited { retry_after, .. }) =
            state.limits.failure_gate(kind, key).await
        {
            tracing::info!(?kind, "sign-in refused: too many failures");
            state.metrics.sign_in_failed("throttled");
            let wait = i18n::Detail::Seconds { n: retry_after };
            let message = i18n::message(ctx.lang, "too_many_failed_sign_ins", Some(&wait));
            return refuse(StatusCode::TOO_MANY_REQUESTS, message, retry_after).await;
        }
    }
    let email = Email::parse(&form.email).ok();
    let lookup = email.clone();
    let found = db::run(&state.pool, move |conn| match lookup {
        Some(e) => Ok(store::find_user_by_email(conn, e.as_str())?),
        None => Ok(None),
    })
    .await?;
    let stored = found
        .as_ref()
        .filter(|u| u.disabled_at.is_none())
        .map(|u| u.password_hash.clone());
    let password = form.password.clone();
    let ok = match state
        .password_gate
        .run(move || password::verify(stored.as_deref(), &password))
        .await
    {
        Ok(ok) => ok,
        Err(AppError::Busy) => {
            state.metrics.sign_in_failed("busy");
            let message = i18n::message(ctx.lang, "server_busy", None);
            return refuse(StatusCode::SERVICE_UNAVAILABLE, message, 1).await;
        }
        Err(e) => return Err(e),
    };
    let reason = match &found {
        None => "unknown_account",
        Some(u) if u.disabled_at.is_some() => "disabled_account",
        Some(_) => "wrong_password",
    };
    let Some(user) = found.filter(|_| ok) else {
        tracing::info!("sign-in refused");
        state.metrics.sign_in_failed(reason);
        for (kind, key) in gates {
            state.limits.record_failure(kind, key).await;
        }
        let message = i18n::message(ctx.lang, "invalid_credentials", None);
        return login_form(
            &state,
            &req,
            ctx.lang,
            StatusCode::UNAUTHORIZED,
            &return_to,
            &form.email,
            Some(message),
        )
        .await;
    };

    state
        .limits
        .clear_failures(Failure::SignInAccount, &account)
        .await;
    // A new session id at every sign-in (no fixation); the old one, if any, ends now.
    let token = crate::crypto::random_token();
    let hash = state.hasher.hash(SESSION_PURPOSE, token.as_bytes());
    let old = req
        .cookie(SESSION_COOKIE)
        .map(|c| state.hasher.hash(SESSION_PURPOSE, c.value().as_bytes()));
    let ttl = state.settings.session_ttl.as_secs() as i64;
    let user_id = user.id.clone();
    let origin = audit::Origin::of(&req);
    db::run(&state.pool, move |conn| {
        crate::db::transaction(conn, |conn| {
            if let Some(old) = old {
                store::delete_session(conn, &old)?;
            }
            let now = db::now();
            store::insert_session(
                conn,
                &hash,
                user_id.as_str(),
                now,
                now + ttl,
                origin.ip.as_deref(),
                origin.user_agent.as_deref(),
            )?;
            let event = audit::Event::new(Actor::User(user_id.to_string()), "user.login")
                .target("user", user_id.as_str())
                .origin(origin);
            audit::record(conn, event)?;
            Ok(())
        })
    })
    .await?;
    let (_, csrf_cookie) = new_csrf(&state);
    let mut res = see_other(&return_to);
    res.add_cookie(&session_cookie(&state, token, ttl))
        .map_err(AppError::internal)?;
    if let Some(c) = csrf_cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    state.metrics.signed_in();
    Ok(res)
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    saved: Option<String>,
}

/// What the account page shows besides the user: the profile in its form (as stored, or as just
/// typed when `error` says why it was not saved).
struct AccountView<'a> {
    status: StatusCode,
    profile: &'a super::Profile,
    saved: bool,
    error: Option<String>,
}

/// The account page of `current`.
fn account_response(
    state: &Accounts,
    req: &HttpRequest,
    lang: Lang,
    current: &CurrentUser,
    view: AccountView<'_>,
) -> Result<HttpResponse, AppError> {
    let AccountView {
        status,
        profile,
        saved,
        error,
    } = view;
    let (token, cookie) = csrf_token(state, req);
    let body = AccountPage {
        lang: lang.tag(),
        t: AccountText::for_lang(lang),
        csrf_token: &token,
        email: &current.user.email,
        profile,
        saved,
        error,
    }
    .render()?;
    html_with_csrf(status, body, cookie)
}

/// `/account`: the signed-in user's own page (their profile); the sign-in page for anyone else.
#[get("/account")]
async fn account_page(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<Accounts>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(current) = current_user(&req).await? else {
        return Ok(see_other("/login?return_to=%2Faccount"));
    };
    let profile = current.user.profile.clone();
    let saved = query.saved.is_some();
    let view = AccountView {
        status: StatusCode::OK,
        profile: &profile,
        saved,
        error: None,
    };
    account_response(&state, &req, ctx.lang, &current, view)
}

#[derive(Deserialize)]
struct ProfileForm {
    csrf_token: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    preferred_username: Option<String>,
    locale: Option<String>,
    picture: Option<String>,
}

/// Saves the signed-in user's profile (CSRF-checked), audited; a value that does not pass is shown
/// again with why (400), nothing saved.
#[post("/account/profile")]
async fn save_profile(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<Accounts>,
    form: web::Form<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    verify_csrf(&state, &req, &form.csrf_token)?;
    let Some(current) = current_user(&req).await? else {
        return Ok(see_other("/login?return_to=%2Faccount"));
    };
    let form = form.into_inner();
    let typed = super::Profile {
        name: form.name,
        given_name: form.given_name,
        family_name: form.family_name,
        preferred_username: form.preferred_username,
        locale: form.locale,
        picture: form.picture,
    };
    let (id, origin) = (current.user.id.clone(), audit::Origin::of(&req));
    let actor = Actor::User(id.to_string());
    let attempt = typed.clone();
    let saved = db::run(&state.pool, move |conn| {
        super::update_profile(conn, &id, attempt, actor, origin)
    })
    .await;
    match saved {
        Ok(_) => Ok(see_other("/account?saved=1")),
        Err(e @ AppError::BadRequest { .. }) => {
            let message = e.message(ctx.lang);
            let view = AccountView {
                status: StatusCode::BAD_REQUEST,
                profile: &typed,
                saved: false,
                error: Some(message),
            };
            account_response(&state, &req, ctx.lang, &current, view)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf_token: String,
}

#[post("/logout")]
async fn logout(
    req: HttpRequest,
    state: web::Data<Accounts>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    verify_csrf(&state, &req, &form.csrf_token)?;
    if let Some(current) = current_user(&req).await? {
        super::sign_out(&req, &state, current, None).await?;
    }
    let mut res = see_other("/login");
    res.add_cookie(&super::signed_out_cookie())
        .map_err(AppError::internal)?;
    if let (_, Some(c)) = new_csrf(&state) {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    /// At most this many (1 to 200, default 50).
    limit: Option<i64>,
    /// Skip this many (default 0).
    offset: Option<i64>,
}

/// One page of users, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct UserPage {
    data: Vec<UserView>,
    limit: i64,
    offset: i64,
}

/// `GET /v1/users` (administrators): users oldest first, `limit` ≤ 200.
#[utoipa::path(
    operation_id = "list_users",
    tag = "users",
    params(Paging),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of users, oldest first", body = UserPage),
        (status = 400, description = "A malformed query"),
        (status = 401, description = "Not signed in"),
        (status = 403, description = "Not an administrator"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/v1/users")]
async fn list_users(
    current: CurrentUser,
    state: web::Data<Accounts>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, AppError> {
    current.require_admin()?;
    let limit = paging.limit.unwrap_or(50).clamp(1, 200);
    let offset = paging.offset.unwrap_or(0).max(0);
    let users = db::run(&state.pool, move |conn| {
        Ok(store::find_users(conn, limit, offset)?)
    })
    .await?;
    let data: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(UserPage {
        data,
        limit,
        offset,
    }))
}

/// The body of `POST /v1/users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 12 to 1024 characters (`Password::MIN_CHARS`, `Password::MAX_CHARS`).
    #[schema(min_length = 12, max_length = 1024)]
    password: String,
    #[serde(default)]
    is_admin: bool,
}

/// `POST /v1/users` (administrators): `{email, password, is_admin?}` → 201 with the user.
#[utoipa::path(
    operation_id = "create_user",
    tag = "users",
    request_body = NewUser,
    security(("session" = [])),
    responses(
        (status = 201, description = "The user", body = UserView),
        (status = 400, description = "Malformed body, an invalid email or a weak password"),
        (status = 401, description = "Not signed in"),
        (status = 403, description = "Not an administrator, or another origin"),
        (status = 409, description = "The email is taken"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The database cannot serve now, or password hashing is busy"),
    )
)]
#[post("/v1/users")]
#[tracing::instrument(skip_all)]
async fn post_user(
    req: HttpRequest,
    current: CurrentUser,
    state: web::Data<Accounts>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, AppError> {
    current.require_admin()?;
    same_origin(&state, &req)?;
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    let password = Password::parse(body.password)?;
    let hash = state
        .password_gate
        .run(move || password::hash(password.expose()))
        .await??;
    let actor = Actor::User(current.user.id.to_string());
    let origin = audit::Origin::of(&req);
    let user = db::run(&state.pool, move |conn| {
        create_user(conn, &email, &hash, body.is_admin, actor, origin)
    })
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Cookie-authenticated writes must come from our own pages or from non-browser clients (no `Origin`).
pub fn same_origin(state: &crate::state::AppState, req: &HttpRequest) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let ours = state.settings.issuer.origin().ascii_serialization();
    if origin.to_str().is_ok_and(|o| o == ours) {
        Ok(())
    } else {
        Err(AppError::Forbidden("forbidden"))
    }
}

/// The JSON operations of this module, for `/openapi.json` (the sign-in pages are HTML).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_users, post_user))]
pub(super) struct Docs;
