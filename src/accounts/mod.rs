//! Users, password hashing, sessions, sign-in and sign-out, and the `/v1/users` management API.

mod handlers;
pub use handlers::same_origin;
pub mod model;
mod pages;
pub mod password;
mod store;

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::audit::{self, Actor};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::state::AppState;
pub use model::{Email, Password, Profile, User, UserId, UserView};

/// The state of this feature: the password-hashing gate and the rate limits (failed sign-ins),
/// beside the [`AppState`] it derefs to.
#[derive(Debug)]
pub struct Accounts {
    pub core: web::Data<AppState>,
    /// Bounds concurrent password hashing (Argon2id, 19 MiB each) and its queue.
    pub password_gate: password::PasswordGate,
    pub limits: web::Data<crate::ratelimit::RateLimits>,
}
crate::feature_state!(Accounts);

pub const SESSION_COOKIE: &str = "tessera_session";
const SESSION_PURPOSE: &str = "session";

pub fn configure(cfg: &mut web::ServiceConfig) {
    handlers::configure(cfg);
}

/// The OpenAPI description of the JSON routes `configure` adds (`/v1/users`; the sign-in pages are HTML).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    handlers::Docs::openapi()
}

/// Names the app a sign-in continues to from its `return_to` (an authorization request names its
/// client), for "Sign in to continue to <app>". `startup` wires it to the OAuth feature as app data,
/// so accounts names no other feature; without it the sign-in page names no app.
#[derive(Debug, Clone, Copy)]
pub struct AppOfReturnTo(pub fn(&mut DbConn, &str) -> Result<Option<String>, AppError>);

/// Told when a browser session ends by signing out, with its `sid` and user: `startup` wires the
/// OAuth feature's back-channel logout to it, so accounts names no other feature.
#[derive(Clone)]
pub struct OnSignOut(pub std::sync::Arc<dyn Fn(String, String) + Send + Sync>);

impl std::fmt::Debug for OnSignOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnSignOut")
    }
}

/// Ends the session of `current` (audited as `user.logout`, with `how` and the client that asked
/// when there is one), then tells [`OnSignOut`] when the app has one.
pub async fn sign_out(
    req: &HttpRequest,
    state: &AppState,
    current: CurrentUser,
    client_id: Option<String>,
) -> Result<(), AppError> {
    let origin = audit::Origin::of(req);
    let (sid, user_id) = (current.sid.clone(), current.user.id.to_string());
    db::run(&state.pool, move |conn| {
        store::delete_session(conn, &current.session_hash)?;
        let event = audit::Event::new(Actor::User(current.user.id.to_string()), "user.logout")
            .target("user", current.user.id.as_str())
            .origin(origin)
            .details(serde_json::json!({ "sid": current.sid, "client_id": client_id }));
        Ok(audit::record(conn, event)?)
    })
    .await?;
    if let Some(hook) = req.app_data::<web::Data<OnSignOut>>() {
        (hook.0)(sid, user_id);
    }
    Ok(())
}

/// The cookie that removes the session cookie.
pub fn signed_out_cookie() -> Cookie<'static> {
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    gone
}

/// Creates a user whose password is already hashed (see [`password::hash`]), with its audit event,
/// in one transaction. 409 `email_taken` when the address is in use.
pub fn create_user(
    conn: &mut DbConn,
    email: &Email,
    password_hash: &str,
    is_admin: bool,
    actor: Actor,
    origin: audit::Origin,
) -> Result<User, AppError> {
    let id = crate::crypto::random_id("usr", 20);
    let now = db::now();
    crate::db::transaction(conn, |conn| {
        if store::find_user_by_email(conn, email.as_str())?.is_some() {
            return Err(AppError::Conflict("email_taken"));
        }
        store::insert_user(conn, &id, email.as_str(), password_hash, is_admin, now).map_err(
            |e| match AppError::from(e) {
                AppError::Conflict(_) => AppError::Conflict("email_taken"),
                other => other,
            },
        )?;
        let event = audit::Event::new(actor, "user.create")
            .target("user", &id)
            .origin(origin)
            .details(serde_json::json!({ "email": email.as_str(), "is_admin": is_admin }));
        audit::record(conn, event)?;
        store::find_user(conn, &id)?.ok_or(AppError::NotFound)
    })
}

/// Users in the order they were created.
pub fn list_users(conn: &mut DbConn, limit: i64, offset: i64) -> Result<Vec<User>, AppError> {
    Ok(store::find_users(conn, limit, offset)?)
}

pub fn find_user(conn: &mut DbConn, id: &UserId) -> Result<User, AppError> {
    store::find_user(conn, id.as_str())?.ok_or(AppError::NotFound)
}

/// A user by id, or by email address when the text has an `@`. 404 when there is none.
pub fn lookup_user(conn: &mut DbConn, id_or_email: &str) -> Result<User, AppError> {
    if id_or_email.contains('@') {
        let email = Email::parse(id_or_email)?;
        store::find_user_by_email(conn, email.as_str())?.ok_or(AppError::NotFound)
    } else {
        find_user(conn, &UserId::from(id_or_email))
    }
}

/// Deletes a user, audited: their sessions, authorization codes, consents, refresh tokens and API
/// keys go with them (the database cascades). The apps they own are not deleted here (they would be
/// left without an owner): the caller deletes them first through `oauth::delete_client`. Access
/// tokens already issued to them expire on their own.
pub fn delete_user(
    conn: &mut DbConn,
    id: &UserId,
    actor: Actor,
    origin: audit::Origin,
) -> Result<User, AppError> {
    let id = id.as_str();
    crate::db::transaction(conn, |conn| {
        let user = store::find_user(conn, id)?.ok_or(AppError::NotFound)?;
        store::delete_user(conn, id)?;
        audit::record(
            conn,
            audit::Event::new(actor, "user.delete")
                .target("user", id)
                .origin(origin)
                .details(serde_json::json!({ "email": user.email, "is_admin": user.is_admin })),
        )?;
        Ok(user)
    })
}

/// Changes a user's profile claims (checked by [`Profile::checked`]), audited with the fields set.
pub fn update_profile(
    conn: &mut DbConn,
    id: &UserId,
    profile: Profile,
    actor: Actor,
    origin: audit::Origin,
) -> Result<User, AppError> {
    let profile = profile.checked()?;
    crate::db::transaction(conn, |conn| {
        if store::update_profile(conn, id.as_str(), &profile, db::now())? == 0 {
            return Err(AppError::NotFound);
        }
        audit::record(
            conn,
            audit::Event::new(actor, "user.profile_update")
                .target("user", id.as_str())
                .origin(origin)
                .details(serde_json::json!({ "profile": &profile })),
        )?;
        store::find_user(conn, id.as_str())?.ok_or(AppError::NotFound)
    })
}

/// What an administrator changes about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Disable,
    Enable,
    MakeAdmin,
    RemoveAdmin,
}

/// Applies `change` to user `id`, audited. Disabling ends the user's sessions at once; while disabled,
/// their refresh tokens, access tokens, API keys and the apps they own (and those apps' tokens and
/// keys) are refused where each is verified, and all work again once the user is re-enabled (nothing
/// is revoked). The caller drops the node's cached credentials of the user and their apps. An
/// administrator cannot disable or demote themself (so there is always one left who can undo it).
pub fn change_user(
    conn: &mut DbConn,
    id: &UserId,
    change: UserChange,
    acting_user: &UserId,
    origin: audit::Origin,
) -> Result<User, AppError> {
    if id == acting_user && matches!(change, UserChange::Disable | UserChange::RemoveAdmin) {
        return Err(AppError::Conflict("cannot_change_self"));
    }
    change_user_by(
        conn,
        id,
        change,
        Actor::User(acting_user.to_string()),
        origin,
    )
}

/// As [`change_user`], by any actor (the CLI), without the check on changing oneself.
pub fn change_user_by(
    conn: &mut DbConn,
    id: &UserId,
    change: UserChange,
    actor: Actor,
    origin: audit::Origin,
) -> Result<User, AppError> {
    let id = id.as_str();
    crate::db::transaction(conn, |conn| {
        let user = store::find_user(conn, id)?.ok_or(AppError::NotFound)?;
        let now = db::now();
        let (is_admin, disabled_at, action) = match change {
            UserChange::Disable => (
                user.is_admin,
                Some(user.disabled_at.unwrap_or(now)),
                "user.disable",
            ),
            UserChange::Enable => (user.is_admin, None, "user.enable"),
            UserChange::MakeAdmin => (true, user.disabled_at, "user.make_admin"),
            UserChange::RemoveAdmin => (false, user.disabled_at, "user.remove_admin"),
        };
        store::update_user_flags(conn, id, is_admin, disabled_at, now)?;
        if change == UserChange::Disable {
            store::delete_user_sessions(conn, id)?;
        }
        audit::record(
            conn,
            audit::Event::new(actor, action)
                .target("user", id)
                .origin(origin),
        )?;
        store::find_user(conn, id)?.ok_or(AppError::NotFound)
    })
}

/// The signed-in user of this request, from the session cookie. 401 `unauthenticated` without one.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_hash: String,
    /// When this session signed in (`auth_time`).
    pub auth_time: i64,
    /// The session's public id (`sid`).
    pub sid: String,
}

impl CurrentUser {
    /// 403 `forbidden` unless the user is an administrator.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(AppError::Forbidden("forbidden"))
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            current_user(&req)
                .await?
                .ok_or(AppError::Unauthorized("unauthenticated"))
        })
    }
}

/// The user behind the session cookie, if the cookie names a live session.
pub async fn current_user(req: &HttpRequest) -> Result<Option<CurrentUser>, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal("AppState missing"))?
        .clone();
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    if cookie.value().len() != 43 {
        return Ok(None);
    }
    let hash = state
        .hasher
        .hash(SESSION_PURPOSE, cookie.value().as_bytes());
    let found = db::run(&state.pool, move |conn| {
        Ok(store::find_session(conn, &hash, db::now())?)
    })
    .await?;
    Ok(found.map(|(session, user)| CurrentUser {
        user,
        session_hash: session.id_hash,
        auth_time: session.created_at,
        sid: session.sid,
    }))
}

/// The cookie that carries a session token.
fn session_cookie(state: &AppState, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.settings.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}
