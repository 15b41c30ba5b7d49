//! The dashboard under `/dashboard`: apps (OAuth clients), API keys, usage, signing keys, the audit
//! log and users. Server-rendered (askama), behind sign-in, CSRF on every form. An administrator sees
//! and manages everything; a developer only the apps and keys they own (another user's get 404).

mod admin;
mod apps;
mod display;
mod keys;
mod pages;
mod usage;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, LOCATION};
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;

use crate::accounts::{self, CurrentUser, current_user};
use crate::db;
use crate::error::AppError;
use crate::node::Node;
use crate::request::header_text;
use crate::web::{csrf_token, html, verify_csrf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index);
    apps::configure(cfg);
    keys::configure(cfg);
    usage::configure(cfg);
    admin::configure(cfg);
}

#[get("/dashboard")]
async fn index() -> HttpResponse {
    see_other("/dashboard/apps")
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The signed-in user of a dashboard request and the CSRF token for the page's forms.
pub struct Dash {
    pub user: CurrentUser,
    pub csrf: String,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
}

/// `Debug` never prints the CSRF token or the cookie.
impl std::fmt::Debug for Dash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dash")
            .field("user", &self.user.user.id)
            .finish_non_exhaustive()
    }
}

impl Dash {
    /// The signed-in user, or the redirect to the sign-in page that comes back here.
    async fn load(req: &HttpRequest, state: &Node) -> Result<Result<Self, HttpResponse>, AppError> {
        let Some(user) = current_user(req).await? else {
            let back = match req.uri().path_and_query() {
                Some(pq) if req.method() == actix_web::http::Method::GET => pq.as_str().to_owned(),
                _ => "/dashboard".to_owned(),
            };
            let to: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &back)
                .finish();
            return Ok(Err(see_other(&format!("/login?{to}"))));
        };
        let (csrf, cookie) = csrf_token(state, req);
        Ok(Ok(Self { user, csrf, cookie }))
    }

    /// As [`Dash::load`] for a form post: the CSRF token must match this browser's cookie.
    async fn load_post(
        req: &HttpRequest,
        state: &Node,
        form: &Form,
    ) -> Result<Result<Self, HttpResponse>, AppError> {
        let dash = Self::load(req, state).await?;
        if dash.is_ok() {
            verify_csrf(state, req, form.get("csrf_token"))?;
        }
        Ok(dash)
    }

    pub fn is_admin(&self) -> bool {
        self.user.user.is_admin
    }

    pub fn user_id(&self) -> &str {
        self.user.user.id.as_str()
    }

    /// The owner filter of a list: everything for an administrator, else the user's own.
    pub fn owner_filter(&self) -> Option<accounts::UserId> {
        (!self.is_admin()).then(|| self.user.user.id.clone())
    }

    /// 403 unless an administrator.
    pub fn require_admin(&self) -> Result<(), AppError> {
        self.user.require_admin()
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::User(self.user_id().to_owned())
    }

    /// Leaves `flash` for the next GET of `target` in this session (see [`crate::web::flash`]).
    pub async fn leave_flash(
        &self,
        state: &Node,
        target: String,
        flash: crate::web::flash::Flash,
    ) -> Result<(), AppError> {
        let (master, session) = (state.master_key.clone(), self.user.session_hash.clone());
        db::run(&state.pool, move |conn| {
            crate::web::flash::put(conn, &master, &session, &target, &flash)
        })
        .await
    }

    /// The flash waiting for `target` in this session, deleted as it is read.
    pub async fn take_flash(
        &self,
        state: &Node,
        target: String,
    ) -> Result<Option<crate::web::flash::Flash>, AppError> {
        let (master, session) = (state.master_key.clone(), self.user.session_hash.clone());
        db::run(&state.pool, move |conn| {
            crate::web::flash::take(conn, &master, &session, &target)
        })
        .await
    }

    /// The frame every page shares.
    pub fn nav(&self, active: &'static str, notice: Option<&'static str>) -> pages::Nav {
        pages::Nav {
            email: self.user.user.email.clone(),
            is_admin: self.is_admin(),
            csrf_token: self.csrf.clone(),
            active,
            notice,
        }
    }

    /// The page as an HTML response with `status`, setting the CSRF cookie when the browser had none.
    pub fn render(
        &self,
        status: StatusCode,
        page: &impl Template,
    ) -> Result<HttpResponse, AppError> {
        let mut res = html(status, page.render()?);
        if let Some(c) = &self.cookie {
            res.add_cookie(c).map_err(AppError::internal)?;
        }
        Ok(res)
    }
}

/// Shorthand: the signed-in dashboard user or an early return with the sign-in redirect.
macro_rules! dash {
    ($req:expr, $state:expr) => {
        match $crate::web::dashboard::Dash::load(&$req, &$state).await? {
            Ok(d) => d,
            Err(redirect) => return Ok(redirect),
        }
    };
    ($req:expr, $state:expr, $form:expr) => {
        match $crate::web::dashboard::Dash::load_post(&$req, &$state, &$form).await? {
            Ok(d) => d,
            Err(redirect) => return Ok(redirect),
        }
    };
}
use dash;

/// A submitted form: every field, repeated names kept (checkbox groups).
#[derive(Default)]
pub struct Form(Vec<(String, String)>);

/// `Debug` never prints field values (forms carry passwords and tokens).
impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Form {
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, AppError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(header_text)
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err(AppError::UnsupportedMediaType {
                expected: "application/x-www-form-urlencoded",
            });
        }
        Ok(Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A validation message for one field of a form.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message(s) for `field`, joined, or "" (templates show nothing then).
    pub fn of(&self, field: &str) -> String {
        self.0
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| *f == field)
    }
}

/// What a refused form submission says under the form: the error's detail (the catalogue's
/// en-US text; the dashboard is in en-US), or its whole message when it has none.
pub fn form_message(e: &AppError) -> String {
    let lang = crate::i18n::Lang::En;
    e.detail()
        .map(|d| d.render(lang))
        .unwrap_or_else(|| e.message(lang))
}

/// A date as `YYYY-MM-DD HH:MM` UTC for tables.
pub fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The message for a `?notice=` code after a redirect (only known codes are shown).
pub fn notice(req: &HttpRequest) -> Option<&'static str> {
    let q = req.query_string();
    let code = url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "notice")
        .map(|(_, v)| v.into_owned())?;
    Some(match code.as_str() {
        "uris_saved" => "Redirect URIs saved.",
        "app_deleted" => "The app was deleted.",
        "key_revoked" => "The key was revoked. It is refused from now on.",
        "signing_key_rotated" => {
            "A new signing key is published; it signs once the lead time has passed."
        }
        "signing_key_pending" => {
            "A next signing key is already published and waits for its turn; nothing was rotated."
        }
        "user_created" => "The user was created.",
        "user_changed" => "The user was updated.",
        "secret_shown" => {
            "The secret was shown once, right after it was made, and is not kept in readable form. \
             If it was lost, make a new one."
        }
        _ => return None,
    })
}
