//! API keys: list, create (shown once), show, revoke with confirmation, rotate with a grace period.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::pages::{Choice, ConfirmPage, KeyFormPage, KeyPage, KeyRow, KeySecretPage, KeysPage};
use super::{Dash, FieldErrors, Form, dash, display, notice, see_other, when};
use crate::apikeys::{self, ApiKey, KeyInput};
use crate::audit::{NameRequest, Names, Origin};
use crate::db;
use crate::error::AppError;
use crate::node::Node;
use crate::web::flash::Flash;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(shown_once)
        .service(show)
        .service(confirm_revoke)
        .service(revoke)
        .service(rotate);
}

/// How many keys the list shows.
const PAGE: i64 = 500;

/// The row of `key`, its owner named from `names` (see [`owner_names`]).
pub fn row(key: &ApiKey, names: &Names) -> KeyRow {
    let now = db::now();
    KeyRow {
        id: key.id.to_string(),
        owner: display::owner(
            key.owner_user_id.as_deref(),
            key.owner_client_id.as_deref(),
            names,
        ),
        name: key.name.clone(),
        key_type: key.key_type.clone(),
        env: key.environment.clone(),
        display: key.display(),
        scopes: if key.full_access() {
            "all (full access)".to_owned()
        } else {
            key.scope_list().join(" ")
        },
        created: when(key.created_at),
        last_used: key.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        expires: key.expires_at.map(when).unwrap_or_else(|| "never".into()),
        status: key.status(now).as_str(),
    }
}

/// The emails and app names of the owners of `keys`.
fn owner_names(conn: &mut db::DbConn, keys: &[ApiKey]) -> Result<Names, AppError> {
    let mut req = NameRequest::default();
    for k in keys {
        if let Some(u) = &k.owner_user_id {
            req.add("user", u);
        }
        if let Some(c) = &k.owner_client_id {
            req.add("client", c);
        }
    }
    Ok(Names::load(conn, &req)?)
}

#[get("/dashboard/keys")]
async fn list(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let owner = dash.owner_filter();
    let (keys, names) = db::run(&state.pool, move |conn| {
        let keys = apikeys::list_keys(conn, owner.as_ref(), PAGE, 0)?;
        let names = owner_names(conn, &keys)?;
        Ok((keys, names))
    })
    .await?;
    let page = KeysPage {
        lang: "en-US",
        nav: dash.nav("keys", notice(&req)),
        keys: keys.iter().map(|k| row(k, &names)).collect(),
    };
    dash.render(StatusCode::OK, &page)
}

/// Key types `dash` may create: a developer only gets types with a scope list (a full-access key
/// would grant `admin`).
fn creatable_types(dash: &Dash, state: &Node, selected: &str) -> Vec<Choice> {
    use apikeys::Access;
    apikeys::key_types(&state.settings)
        .filter(|t| dash.is_admin() || t.access != Access::Full)
        .map(|t| Choice {
            label: match (&t.access, t.publishable) {
                (Access::Full, _) => format!("{} (secret, full access)", t.name),
                (_, true) => format!("{} (publishable)", t.name),
                (Access::Chosen, false) => format!("{} (restricted to chosen scopes)", t.name),
                (Access::Listed(s), false) => format!("{} (scopes: {})", t.name, s.join(", ")),
            },
            checked: t.name == selected,
            value: t.name,
        })
        .collect()
}

#[get("/dashboard/keys/new")]
async fn new_form(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let page = KeyFormPage {
        lang: "en-US",
        nav: dash.nav("keys", None),
        name: String::new(),
        types: creatable_types(&dash, &state, "rk"),
        env: "test".into(),
        scopes: String::new(),
        expires_in: String::new(),
        errors: FieldErrors::default(),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/keys")]
#[tracing::instrument(skip_all)]
async fn create(
    req: HttpRequest,
    state: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let name = form.get("name").trim().to_owned();
    let key_type = form.get("type").to_owned();
    let env = form.get("env").to_owned();
    let scopes_text = form.get("scopes").trim().to_owned();
    let expires_text = form.get("expires_in").trim().to_owned();
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "Give the key a name of 1 to 100 characters.");
    }
    let types = creatable_types(&dash, &state, &key_type);
    if !types.iter().any(|t| t.value == key_type) {
        errors.add("type", "Choose one of the key types listed.");
    }
    if !matches!(env.as_str(), "live" | "test") {
        errors.add("env", "Choose live or test.");
    }
    // Split exactly as the key store reads the list (any whitespace or comma), so the admin check
    // below sees the very scopes the key would get.
    let scopes: Vec<String> = scopes_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !dash.is_admin() && scopes.iter().any(|s| s == "admin") {
        errors.add(
            "scopes",
            "Only administrators may create keys with the admin scope.",
        );
    }
    let expires_in = if expires_text.is_empty() {
        None
    } else {
        match crate::config::parse_duration("expires_in", &expires_text) {
            Ok(d) if d >= Duration::from_secs(60) => Some(d),
            _ => {
                errors.add(
                    "expires_in",
                    "Write a lifetime like 90d, 12h or 30m (at least one minute), or leave it empty.",
                );
                None
            }
        }
    };
    let form_page = |errors: FieldErrors| KeyFormPage {
        lang: "en-US",
        nav: dash.nav("keys", None),
        name: name.clone(),
        types: creatable_types(&dash, &state, &key_type),
        env: env.clone(),
        scopes: scopes_text.clone(),
        expires_in: expires_text.clone(),
        errors,
    };
    if !errors.is_empty() {
        return dash.render(StatusCode::UNPROCESSABLE_ENTITY, &form_page(errors));
    }
    let input = KeyInput {
        name: name.clone(),
        key_type: key_type.clone(),
        env: env.clone(),
        scopes,
        expires_in,
        owner_user_id: Some(dash.user_id().to_owned()),
        ..Default::default()
    };
    let (st, actor, origin) = (state.clone(), dash.actor(), Origin::of(&req));
    let created = db::run(&state.pool, move |conn| {
        apikeys::create_key(conn, &st.settings, &st.hasher, &input, actor, origin)
    })
    .await;
    let (key, secret) = match created {
        Ok(k) => k,
        Err(e @ AppError::BadRequest { .. }) => {
            let mut errors = FieldErrors::default();
            let message = super::form_message(&e);
            let field = if message.contains("scope") {
                "scopes"
            } else if message.contains("live") || message.contains("second") {
                "expires_in"
            } else {
                "form"
            };
            errors.add(field, message);
            return dash.render(StatusCode::UNPROCESSABLE_ENTITY, &form_page(errors));
        }
        Err(e) => return Err(e),
    };
    // POST → 303 → GET: the key waits server-side for the one page that shows it.
    let flash = Flash {
        kind: "key_created".into(),
        secret: Some(secret.0),
        note: String::new(),
    };
    dash.leave_flash(&state, format!("key:{}", key.id), flash)
        .await?;
    Ok(see_other(&format!("/dashboard/keys/{}/created", key.id)))
}

/// The page after creating or rotating a key: the key, once. A reload (or any later visit) finds
/// no flash and goes to the key's page.
#[get("/dashboard/keys/{id}/created")]
async fn shown_once(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let key = load_owned(&dash, &state, id.into_inner()).await?;
    let flash = dash.take_flash(&state, format!("key:{}", key.id)).await?;
    let Some(Flash {
        kind,
        secret: Some(secret),
        note,
    }) = flash
    else {
        return Ok(see_other(&format!(
            "/dashboard/keys/{}?notice=secret_shown",
            key.id
        )));
    };
    let page = KeySecretPage {
        lang: "en-US",
        nav: dash.nav("keys", None),
        title: if kind == "key_rotated" {
            "API key rotated"
        } else {
            "API key created"
        },
        key: secret,
        key_id: key.id.into_string(),
        note,
    };
    dash.render(StatusCode::OK, &page)
}

/// The key `id` if `dash` may see it; 404 otherwise.
async fn load_owned(dash: &Dash, state: &Node, id: String) -> Result<ApiKey, AppError> {
    let (admin, user) = (dash.is_admin(), dash.user_id().to_owned());
    db::run(&state.pool, move |conn| {
        let key = apikeys::find_key(conn, &apikeys::ApiKeyId::from(id))?;
        if !admin && key.owner_user_id.as_deref() != Some(user.as_str()) {
            return Err(AppError::NotFound);
        }
        Ok(key)
    })
    .await
}

#[get("/dashboard/keys/{id}")]
async fn show(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let key = load_owned(&dash, &state, id.into_inner()).await?;
    let page = key_page(
        &dash,
        &state,
        &key,
        notice(&req),
        "24h",
        FieldErrors::default(),
    )
    .await?;
    dash.render(StatusCode::OK, &page)
}

async fn key_page(
    dash: &Dash,
    state: &Node,
    key: &ApiKey,
    notice: Option<&'static str>,
    grace: &str,
    errors: FieldErrors,
) -> Result<KeyPage, AppError> {
    let one = key.clone();
    let names = db::run(&state.pool, move |conn| {
        owner_names(conn, std::slice::from_ref(&one))
    })
    .await?;
    Ok(KeyPage {
        lang: "en-US",
        nav: dash.nav("keys", notice),
        key: row(key, &names),
        rate_limit: key.rate_limit.map_or_else(
            || {
                format!(
                    "{} per 15 minutes (default)",
                    state.settings.api_key_rate_limit
                )
            },
            |r| format!("{r} per 15 minutes"),
        ),
        metadata: key.metadata.clone(),
        replaced_by: key.replaced_by.clone(),
        grace: grace.to_owned(),
        errors,
    })
}

#[get("/dashboard/keys/{id}/revoke")]
async fn confirm_revoke(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let key = load_owned(&dash, &state, id.into_inner()).await?;
    let page = ConfirmPage {
        lang: "en-US",
        nav: dash.nav("keys", None),
        title: format!("Revoke {}?", key.name),
        message: format!(
            "{} stops working at once on this server and within seconds on every other node. \
             This cannot be undone.",
            key.display()
        ),
        action: format!("/dashboard/keys/{}/revoke", key.id),
        button_id: "confirm-revoke",
        button_label: "Revoke the key",
        cancel: format!("/dashboard/keys/{}", key.id),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/keys/{id}/revoke")]
#[tracing::instrument(skip_all)]
async fn revoke(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let key = load_owned(&dash, &state, id.into_inner()).await?;
    let (actor, origin, id) = (dash.actor(), Origin::of(&req), key.id.clone());
    db::run(&state.pool, move |conn| {
        apikeys::revoke_key(conn, &id, actor, origin)
    })
    .await?;
    state.keys.key_cache.forget_key(&key.id);
    Ok(see_other(&format!(
        "/dashboard/keys/{}?notice=key_revoked",
        key.id
    )))
}

#[post("/dashboard/keys/{id}/rotate")]
#[tracing::instrument(skip_all)]
async fn rotate(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let key = load_owned(&dash, &state, id.into_inner()).await?;
    let grace_text = form.get("grace").trim();
    let grace = if grace_text.is_empty() {
        Some(Duration::from_secs(86_400))
    } else {
        crate::config::parse_duration("grace", grace_text)
            .ok()
            .filter(|d| *d <= Duration::from_secs(30 * 86_400))
    };
    let Some(grace) = grace else {
        let mut errors = FieldErrors::default();
        errors.add("grace", "Write a grace period like 24h or 7d, at most 30d.");
        let page = key_page(&dash, &state, &key, None, grace_text, errors).await?;
        return dash.render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let (st, actor, origin, id) = (
        state.clone(),
        dash.actor(),
        Origin::of(&req),
        key.id.clone(),
    );
    let (new, secret) = db::run(&state.pool, move |conn| {
        apikeys::rotate_key(conn, &st.settings, &st.hasher, &id, grace, actor, origin)
    })
    .await?;
    state.keys.key_cache.forget_key(&key.id);
    let flash = Flash {
        kind: "key_rotated".into(),
        secret: Some(secret.0),
        note: format!(
            "The old key {} keeps working for {}, then fails as expired.",
            key.display(),
            grace_text_or_default(grace_text)
        ),
    };
    dash.leave_flash(&state, format!("key:{}", new.id), flash)
        .await?;
    Ok(see_other(&format!("/dashboard/keys/{}/created", new.id)))
}

fn grace_text_or_default(text: &str) -> &str {
    if text.is_empty() { "24h" } else { text }
}
