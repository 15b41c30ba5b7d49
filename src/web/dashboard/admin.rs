//! Signing keys (rotate now), the audit log (filtered, paged) and users (administrators only).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;

use super::pages::{AuditPage, EventView, SigningKeyRow, SigningKeysPage, UserRow, UsersPage};
use super::{FieldErrors, Form, dash, display, notice, see_other, when};
use crate::accounts::{self, Email, Password, UserChange};
use crate::audit::{self, Origin};
use crate::db;
use crate::error::AppError;
use crate::node::Node;
use crate::oauth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(signing_keys)
        .service(rotate_signing_key)
        .service(audit_log)
        .service(users)
        .service(create_user)
        .service(change_user);
}

#[get("/dashboard/signing-keys")]
async fn signing_keys(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    dash.require_admin()?;
    let keys = db::run(&state.pool, crate::jwt::list_keys).await?;
    let page = SigningKeysPage {
        lang: "en-US",
        nav: dash.nav("signing-keys", notice(&req)),
        keys: keys
            .iter()
            .map(|k| SigningKeyRow {
                kid: k.kid.clone(),
                algorithm: k.algorithm.clone(),
                state: k.state.as_str().to_owned(),
                created: when(k.created_at),
                sign_from: when(k.sign_from),
                sign_until: k.sign_until.map_or_else(|| "—".to_owned(), when),
                retire_at: k.retire_at.map_or_else(|| "—".to_owned(), when),
            })
            .collect(),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/signing-keys/rotate")]
#[tracing::instrument(skip_all)]
async fn rotate_signing_key(
    req: HttpRequest,
    state: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    dash.require_admin()?;
    let (st, actor, origin) = (state.clone(), dash.actor(), Origin::of(&req));
    let outcome = db::run(&state.pool, move |conn| {
        crate::jwt::rotate(
            conn,
            &st.master_key,
            crate::jwt::SigningAlg::of(&st.settings),
            st.settings.signing_key_lead_time.as_secs() as i64,
            crate::jwt::retire_after(&st.settings),
            actor,
            origin,
        )
        .map_err(AppError::internal)
    })
    .await?;
    let st = state.clone();
    db::run(&state.pool, move |conn| {
        st.keyring.reload(conn).map_err(AppError::internal)
    })
    .await?;
    Ok(see_other(match outcome {
        crate::jwt::RotateOutcome::Rotated { .. } => {
            "/dashboard/signing-keys?notice=signing_key_rotated"
        }
        crate::jwt::RotateOutcome::AlreadyScheduled { .. } => {
            "/dashboard/signing-keys?notice=signing_key_pending"
        }
    }))
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Parsed leniently: anything but a positive number is page 1 (the filters stay).
    page: Option<String>,
}

const AUDIT_PAGE: i64 = 50;

/// `YYYY-MM-DD` as the unix second its UTC day starts.
fn day_start(s: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

#[get("/dashboard/audit")]
async fn audit_log(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let q = web::Query::<AuditQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    let (actor, action, from, to) = (
        clean(&q.actor),
        clean(&q.action),
        clean(&q.from),
        clean(&q.to),
    );
    let mut errors = FieldErrors::default();
    let from_t = (!from.is_empty()).then(|| day_start(&from));
    let to_t = (!to.is_empty()).then(|| day_start(&to).map(|t| t + 86_400));
    if from_t == Some(None) {
        errors.add("from", "Write a date as YYYY-MM-DD.");
    }
    if to_t == Some(None) {
        errors.add("to", "Write a date as YYYY-MM-DD.");
    }
    let page_no = q
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    // A developer sees what they did; an administrator sees everything.
    let actor_filter = if dash.is_admin() {
        (!actor.is_empty()).then(|| actor.clone())
    } else {
        Some(dash.user_id().to_owned())
    };
    let filter = audit::Filter {
        actor: actor_filter,
        action: (!action.is_empty()).then(|| action.clone()),
        from: from_t.flatten(),
        until: to_t.flatten(),
    };
    let (events, names) = if errors.is_empty() {
        db::run(&state.pool, move |conn| {
            let events =
                audit::find_events(conn, &filter, AUDIT_PAGE + 1, (page_no - 1) * AUDIT_PAGE)?;
            let names = audit::Names::load(conn, &audit::NameRequest::of_events(&events))?;
            Ok((events, names))
        })
        .await?
    } else {
        (Vec::new(), audit::Names::default())
    };
    let more = events.len() as i64 > AUDIT_PAGE;
    let link = |p: i64| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &actor),
            ("action", &action),
            ("from", &from),
            ("to", &to),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.append_pair("page", &p.to_string());
        format!("/dashboard/audit?{}", s.finish())
    };
    let page = AuditPage {
        lang: "en-US",
        nav: dash.nav("audit", None),
        events: events
            .into_iter()
            .take(AUDIT_PAGE as usize)
            .map(|e| EventView {
                when: display::stamp(e.occurred_at).unwrap_or_else(|| display::Stamp {
                    iso: String::new(),
                    text: e.occurred_at.to_string(),
                }),
                actor: display::actor(&e, &names),
                target: display::target(&e, &names),
                details: display::details(&e.details, &names),
                ip: e.ip.unwrap_or_else(|| "—".into()),
                action: e.action,
            })
            .collect(),
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: more.then(|| link(page_no + 1)),
        actor,
        action,
        from,
        to,
        errors,
    };
    dash.render(StatusCode::OK, &page)
}

fn user_rows(list: Vec<accounts::User>, me: &str) -> Vec<UserRow> {
    list.into_iter()
        .map(|u| UserRow {
            is_me: u.id == me,
            created: when(u.created_at),
            disabled: u.disabled_at.is_some(),
            is_admin: u.is_admin,
            email: u.email,
            id: u.id.into_string(),
        })
        .collect()
}

#[get("/dashboard/users")]
async fn users(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    dash.require_admin()?;
    let list = db::run(&state.pool, |conn| accounts::list_users(conn, 1000, 0)).await?;
    let page = UsersPage {
        lang: "en-US",
        nav: dash.nav("users", notice(&req)),
        users: user_rows(list, dash.user_id()),
        email: String::new(),
        admin: false,
        errors: FieldErrors::default(),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/users")]
#[tracing::instrument(skip_all)]
async fn create_user(
    req: HttpRequest,
    state: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    dash.require_admin()?;
    let email_text = form.get("email").trim().to_owned();
    let admin = form.get("is_admin") == "on";
    let mut errors = FieldErrors::default();
    let email = Email::parse(&email_text)
        .map_err(|_| errors.add("email", "Write a valid email address."))
        .ok();
    let password = Password::parse(form.get("password").to_owned())
        .map_err(|_| {
            errors.add(
                "password",
                format!(
                    "Use {} to {} characters.",
                    Password::MIN_CHARS,
                    Password::MAX_CHARS
                ),
            )
        })
        .ok();
    if let (Some(email), Some(password)) = (email, password) {
        let (actor, origin) = (dash.actor(), Origin::of(&req));
        let hash = state
            .accounts
            .password_gate
            .run(move || accounts::password::hash(password.expose()))
            .await??;
        let created = db::run(&state.pool, move |conn| {
            accounts::create_user(conn, &email, &hash, admin, actor, origin)
        })
        .await;
        match created {
            Ok(_) => return Ok(see_other("/dashboard/users?notice=user_created")),
            Err(AppError::Conflict(_)) => errors.add("email", "A user with this email exists."),
            Err(e) => return Err(e),
        }
    }
    let list = db::run(&state.pool, |conn| accounts::list_users(conn, 1000, 0)).await?;
    let page = UsersPage {
        lang: "en-US",
        nav: dash.nav("users", None),
        users: user_rows(list, dash.user_id()),
        email: email_text,
        admin,
        errors,
    };
    dash.render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[post("/dashboard/users/{id}/{change}")]
#[tracing::instrument(skip_all)]
async fn change_user(
    req: HttpRequest,
    state: web::Data<Node>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    dash.require_admin()?;
    let (id, change) = path.into_inner();
    let change = match change.as_str() {
        "disable" => UserChange::Disable,
        "enable" => UserChange::Enable,
        "make-admin" => UserChange::MakeAdmin,
        "remove-admin" => UserChange::RemoveAdmin,
        _ => return Err(AppError::NotFound),
    };
    let id = accounts::UserId::from(id);
    let (me, origin, user) = (dash.user.user.id.clone(), Origin::of(&req), id.clone());
    let follows = matches!(change, UserChange::Disable | UserChange::Enable);
    let apps = db::run(&state.pool, move |conn| {
        accounts::change_user(conn, &id, change, &me, origin)?;
        // The apps the user owns: their tokens and keys follow the owner's state.
        let apps = if follows {
            oauth::list_clients(conn, Some(id.as_str()))?
        } else {
            Vec::new()
        };
        Ok(apps
            .into_iter()
            .map(|c| c.id.into_string())
            .collect::<Vec<_>>())
    })
    .await?;
    if follows {
        // This node's caches answer from the new state at once (other nodes within the TTL).
        state.keys.key_cache.forget_owner(&user, &apps);
        state
            .oauth
            .token_cache
            .forget_where(|c| c.sub == user || apps.contains(&c.client_id));
        state
            .oauth
            .client_cache
            .forget_where(|c| c.owner_user_id.as_deref() == Some(user.as_str()));
    }
    Ok(see_other("/dashboard/users?notice=user_changed"))
}
