//! Apps (OAuth clients): list, register, edit redirect URIs, regenerate the secret, delete.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::pages::{AppDetail, AppFormPage, AppRow, AppSecretPage, AppsPage, Choice, ConfirmPage};
use super::{Dash, FieldErrors, Form, dash, form_message, notice, see_other};
use crate::audit::Origin;
use crate::db;
use crate::error::AppError;
use crate::node::Node;
use crate::oauth::{self, Client, ClientInput};
use crate::web::flash::Flash;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(shown_once)
        .service(show)
        .service(save_redirect_uris)
        .service(regenerate_secret)
        .service(confirm_delete)
        .service(delete);
}

/// The grant types a dashboard registration offers.
const GRANTS: [(&str, &str); 3] = [
    (
        "authorization_code",
        "Authorization code (browser sign-in, with PKCE)",
    ),
    ("refresh_token", "Refresh token"),
    (
        "client_credentials",
        "Client credentials (machine to machine)",
    ),
];

fn kind(c: &Client) -> &'static str {
    if c.is_public {
        "public"
    } else {
        "confidential"
    }
}

fn discovery_url(state: &Node) -> String {
    format!(
        "{}/.well-known/oauth-authorization-server",
        state.settings.issuer_str().trim_end_matches('/')
    )
}

#[get("/dashboard/apps")]
async fn list(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let owner = dash.owner_filter();
    let apps = db::run(&state.pool, move |conn| {
        let clients = oauth::list_clients(conn, owner.as_deref())?;
        clients
            .into_iter()
            .map(|c| {
                let (_, uris) = oauth::find_client(conn, &c.id)?;
                Ok(AppRow {
                    kind: kind(&c),
                    grants: c.grant_types.replace(' ', ", "),
                    redirect_uris: uris.len(),
                    id: c.id.to_string(),
                    name: c.name,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()
    })
    .await?;
    let page = AppsPage {
        lang: "en-US",
        nav: dash.nav("apps", notice(&req)),
        apps,
    };
    dash.render(StatusCode::OK, &page)
}

/// The registered scopes as checkboxes; `admin` only for administrators.
async fn scope_choices(
    dash: &Dash,
    state: &Node,
    checked: &[String],
) -> Result<Vec<Choice>, AppError> {
    let scopes = db::run(&state.pool, crate::apis::list_scopes).await?;
    let mut out: Vec<Choice> = Vec::new();
    for s in scopes {
        if out.iter().any(|c| c.value == s.name) || (s.name == "admin" && !dash.is_admin()) {
            continue;
        }
        out.push(Choice {
            checked: checked.contains(&s.name),
            label: s.description,
            value: s.name,
        });
    }
    Ok(out)
}

fn grant_choices(checked: &[String]) -> Vec<Choice> {
    GRANTS
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            checked: checked.iter().any(|c| c == value),
        })
        .collect()
}

/// What was typed into the registration form, shown again with the messages when it is refused.
struct Submitted {
    name: String,
    public: bool,
    grants: Vec<String>,
    scopes: Vec<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
}

async fn form_page(
    dash: &Dash,
    state: &Node,
    s: &Submitted,
    errors: FieldErrors,
) -> Result<AppFormPage, AppError> {
    Ok(AppFormPage {
        lang: "en-US",
        nav: dash.nav("apps", None),
        name: s.name.clone(),
        public: s.public,
        grants: grant_choices(&s.grants),
        scopes: scope_choices(dash, state, &s.scopes).await?,
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        errors,
    })
}

#[get("/dashboard/apps/new")]
async fn new_form(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let page = AppFormPage {
        lang: "en-US",
        nav: dash.nav("apps", None),
        name: String::new(),
        public: false,
        grants: grant_choices(&["authorization_code".to_owned(), "refresh_token".to_owned()]),
        scopes: scope_choices(&dash, &state, &["read".to_owned()]).await?,
        redirect_uris: String::new(),
        post_logout_redirect_uris: String::new(),
        backchannel_logout_uri: String::new(),
        errors: FieldErrors::default(),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/apps")]
#[tracing::instrument(skip_all)]
async fn create(
    req: HttpRequest,
    state: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let name = form.get("name").trim().to_owned();
    let public = form.get("client_type") == "public";
    let grants = form.all("grant_types");
    let scopes = form.all("scopes");
    let uris_text = form.get("redirect_uris").to_owned();
    let logout_text = form.get("post_logout_redirect_uris").to_owned();
    let backchannel = form.get("backchannel_logout_uri").trim().to_owned();
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "Give the app a name of 1 to 100 characters.");
    }
    if !matches!(form.get("client_type"), "public" | "confidential") {
        errors.add("client_type", "Choose confidential or public.");
    }
    if grants.is_empty() {
        errors.add("grant_types", "Choose at least one grant type.");
    } else if let Some(g) = grants.iter().find(|g| !GRANTS.iter().any(|(v, _)| v == g)) {
        errors.add(
            "grant_types",
            format!("'{g}' is not a grant type offered here."),
        );
    } else if public && grants.iter().any(|g| g == "client_credentials") {
        errors.add(
            "grant_types",
            "A public app has no secret, so it cannot use client credentials.",
        );
    }
    let uris = match oauth::parse_redirect_uri_lines(&uris_text) {
        Ok(uris) => uris,
        Err(lines) => {
            for l in lines {
                errors.add("redirect_uris", l.render(crate::i18n::Lang::En));
            }
            Vec::new()
        }
    };
    let after_logout = match oauth::parse_redirect_uri_lines(&logout_text) {
        Ok(uris) => uris,
        Err(lines) => {
            for l in lines {
                errors.add("post_logout_redirect_uris", l.render(crate::i18n::Lang::En));
            }
            Vec::new()
        }
    };
    if !backchannel.is_empty()
        && let Err(why) = oauth::RedirectUri::parse(&backchannel)
    {
        errors.add(
            "backchannel_logout_uri",
            crate::i18n::Detail::RedirectUriInvalid {
                uri: backchannel.chars().take(256).collect(),
                why: Box::new(why),
            }
            .render(crate::i18n::Lang::En),
        );
    }
    if !dash.is_admin() && scopes.iter().any(|s| s == "admin") {
        errors.add(
            "scopes",
            "Only administrators may let an app ask for the admin scope.",
        );
    }
    if uris.is_empty()
        && !errors.has("redirect_uris")
        && grants.iter().any(|g| g == "authorization_code")
    {
        errors.add(
            "redirect_uris",
            "The authorization code grant needs at least one redirect URI.",
        );
    }
    let submitted = Submitted {
        name: name.clone(),
        public,
        grants: grants.clone(),
        scopes: scopes.clone(),
        redirect_uris: uris_text.clone(),
        post_logout_redirect_uris: logout_text.clone(),
        backchannel_logout_uri: backchannel.clone(),
    };
    if !errors.is_empty() {
        let page = form_page(&dash, &state, &submitted, errors).await?;
        return dash.render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let input = ClientInput {
        name: name.clone(),
        redirect_uris: uris.iter().map(|u| u.as_str().to_owned()).collect(),
        grant_types: grants.clone(),
        scopes: scopes.clone(),
        public,
        owner_user_id: Some(dash.user_id().to_owned()),
        post_logout_redirect_uris: after_logout.iter().map(|u| u.as_str().to_owned()).collect(),
        backchannel_logout_uri: (!backchannel.is_empty()).then_some(backchannel),
        ..Default::default()
    };
    let (st, actor, origin) = (state.clone(), dash.actor(), Origin::of(&req));
    let created = db::run(&state.pool, move |conn| {
        oauth::create_client(conn, &st.hasher, &st.master_key, &input, actor, origin)
    })
    .await;
    let (client, _, secret) = match created {
        Ok(c) => c,
        Err(e @ (AppError::BadRequest { .. } | AppError::OAuth { .. })) => {
            let mut errors = FieldErrors::default();
            errors.add("form", form_message(&e));
            let page = form_page(&dash, &state, &submitted, errors).await?;
            return dash.render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(e) => return Err(e),
    };
    // POST → 303 → GET: the secret waits server-side for the one page that shows it.
    let flash = Flash {
        kind: "app_created".into(),
        secret: secret.map(|s| s.0),
        note: String::new(),
    };
    dash.leave_flash(&state, format!("app:{}", client.id), flash)
        .await?;
    Ok(see_other(&format!("/dashboard/apps/{}/created", client.id)))
}

/// The page after registering an app or regenerating its secret: the secret, once. A reload (or
/// any later visit) finds no flash and goes to the app's page.
#[get("/dashboard/apps/{id}/created")]
async fn shown_once(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let (client, _) = load_owned(&dash, &state, id.into_inner()).await?;
    let Some(flash) = dash
        .take_flash(&state, format!("app:{}", client.id))
        .await?
    else {
        return Ok(see_other(&format!(
            "/dashboard/apps/{}?notice=secret_shown",
            client.id
        )));
    };
    let page = AppSecretPage {
        lang: "en-US",
        nav: dash.nav("apps", None),
        title: if flash.kind == "secret_regenerated" {
            "New client secret"
        } else {
            "App registered"
        },
        client_id: client.id.to_string(),
        name: client.name,
        secret: flash.secret,
        discovery_url: discovery_url(&state),
    };
    dash.render(StatusCode::OK, &page)
}

fn detail(client: &Client) -> AppDetail {
    AppDetail {
        id: client.id.to_string(),
        name: client.name.clone(),
        kind: kind(client),
        auth_method: client.token_endpoint_auth_method.clone(),
        grants: client.grant_types.replace(' ', ", "),
        scopes: client.allowed_scopes.replace(' ', ", "),
        post_logout_redirect_uris: client.post_logout_redirect_uris().join(", "),
        backchannel_logout_uri: client.backchannel_logout_uri.clone().unwrap_or_default(),
        has_secret: matches!(
            client.token_endpoint_auth_method.as_str(),
            "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
        ),
    }
}

/// The client `id` if `dash` may see it; 404 otherwise (another user's app looks like no app).
async fn load_owned(
    dash: &Dash,
    state: &Node,
    id: String,
) -> Result<(Client, Vec<String>), AppError> {
    let (admin, user) = (dash.is_admin(), dash.user_id().to_owned());
    db::run(&state.pool, move |conn| {
        let (client, uris) = oauth::find_client(conn, &oauth::ClientId::from(id.as_str()))?;
        if !admin && client.owner_user_id.as_deref() != Some(user.as_str()) {
            return Err(AppError::NotFound);
        }
        Ok((client, uris))
    })
    .await
}

#[get("/dashboard/apps/{id}")]
async fn show(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let (client, uris) = load_owned(&dash, &state, id.into_inner()).await?;
    let page = super::pages::AppPage {
        lang: "en-US",
        nav: dash.nav("apps", notice(&req)),
        app: detail(&client),
        discovery_url: discovery_url(&state),
        redirect_uris: uris.join("\n"),
        errors: FieldErrors::default(),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/apps/{id}/redirect-uris")]
#[tracing::instrument(skip_all)]
async fn save_redirect_uris(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let id = id.into_inner();
    let (client, _) = load_owned(&dash, &state, id.clone()).await?;
    let text = form.get("redirect_uris").to_owned();
    let mut errors = FieldErrors::default();
    match oauth::parse_redirect_uri_lines(&text) {
        Ok(uris) => {
            let (actor, origin) = (dash.actor(), Origin::of(&req));
            let saved = db::run(&state.pool, move |conn| {
                oauth::set_redirect_uris(
                    conn,
                    &oauth::ClientId::from(id.as_str()),
                    &uris,
                    actor,
                    origin,
                )
            })
            .await;
            match saved {
                Ok(_) => {
                    return Ok(see_other(&format!(
                        "/dashboard/apps/{}?notice=uris_saved",
                        client.id
                    )));
                }
                Err(e @ AppError::BadRequest { .. }) => {
                    errors.add("redirect_uris", form_message(&e))
                }
                Err(e) => return Err(e),
            }
        }
        Err(lines) => {
            for l in lines {
                errors.add("redirect_uris", l.render(crate::i18n::Lang::En));
            }
        }
    }
    let page = super::pages::AppPage {
        lang: "en-US",
        nav: dash.nav("apps", None),
        app: detail(&client),
        discovery_url: discovery_url(&state),
        redirect_uris: text,
        errors,
    };
    dash.render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[post("/dashboard/apps/{id}/secret")]
#[tracing::instrument(skip_all)]
async fn regenerate_secret(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let (client, _) = load_owned(&dash, &state, id.into_inner()).await?;
    let (st, actor, origin, cid) = (
        state.clone(),
        dash.actor(),
        Origin::of(&req),
        client.id.clone(),
    );
    let secret = db::run(&state.pool, move |conn| {
        oauth::regenerate_secret(conn, &st.hasher, &st.master_key, &cid, actor, origin)
    })
    .await?;
    // The old secret stops at once on this node (and within the cache TTL on the others).
    oauth::forget_client(&state.oauth, &client.id);
    let flash = Flash {
        kind: "secret_regenerated".into(),
        secret: Some(secret.0),
        note: String::new(),
    };
    dash.leave_flash(&state, format!("app:{}", client.id), flash)
        .await?;
    Ok(see_other(&format!("/dashboard/apps/{}/created", client.id)))
}

#[get("/dashboard/apps/{id}/delete")]
async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let (client, _) = load_owned(&dash, &state, id.into_inner()).await?;
    let page = ConfirmPage {
        lang: "en-US",
        nav: dash.nav("apps", None),
        title: format!("Delete {}?", client.name),
        message:
            "Its redirect URIs, consents, refresh tokens and the API keys it owns are deleted \
                  too, and its access tokens stop passing introspection. This cannot be undone."
                .to_owned(),
        action: format!("/dashboard/apps/{}/delete", client.id),
        button_id: "confirm-delete",
        button_label: "Delete the app",
        cancel: format!("/dashboard/apps/{}", client.id),
    };
    dash.render(StatusCode::OK, &page)
}

#[post("/dashboard/apps/{id}/delete")]
#[tracing::instrument(skip_all)]
async fn delete(
    req: HttpRequest,
    state: web::Data<Node>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Form::parse(&req, &body)?;
    let dash = dash!(req, state, form);
    let (client, _) = load_owned(&dash, &state, id.into_inner()).await?;
    let (actor, origin, id) = (dash.actor(), Origin::of(&req), client.id.clone());
    db::run(&state.pool, move |conn| {
        oauth::delete_client(conn, &id, actor, origin)
    })
    .await?;
    // Its keys went with it: no node-local cache may keep accepting them.
    state.keys.key_cache.forget_client(&client.id);
    state
        .oauth
        .token_cache
        .forget_where(|c| c.client_id == client.id);
    oauth::forget_client(&state.oauth, &client.id);
    Ok(see_other("/dashboard/apps?notice=app_deleted"))
}
