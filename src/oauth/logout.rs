//! Logout for OpenID Connect clients: RP-Initiated Logout 1.0 (`/oauth/logout`, the
//! `end_session_endpoint`) and Back-Channel Logout 1.0 (a signed logout token POSTed to each client
//! that signed in through the ending session, from a bounded queue with retries, each outcome
//! audited).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::model::Client;
use super::store;
use crate::audit::{self, Actor};
use crate::db;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::oauth::OAuth;
use crate::pages::{csrf_token, html, html_with_csrf, verify_csrf};
use crate::request::RequestContext;

/// Logout tokens waiting for delivery, at most this many (more are dropped, audited).
pub const QUEUE_CAPACITY: usize = 1024;
/// Deliveries in flight at once.
const CONCURRENT_DELIVERIES: usize = 8;
/// Attempts per logout token, and the wait before each retry.
const RETRY_WAITS: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(3)];
/// How long a logout token is valid (Back-Channel Logout 1.0 §2.4 asks for a short time).
const LOGOUT_TOKEN_TTL: i64 = 120;
/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token for one client's back-channel.
#[derive(Debug)]
pub struct Delivery {
    client_id: String,
    uri: String,
    sid: String,
    token: String,
}

/// The bounded queue of back-channel deliveries, and its receiving end until the node's background
/// jobs take it.
#[derive(Debug)]
pub struct Backchannel {
    sender: mpsc::Sender<Delivery>,
    receiver: Mutex<Option<mpsc::Receiver<Delivery>>>,
    http: reqwest::Client,
}

impl Default for Backchannel {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            http,
        }
    }
}

/// Records that the session `sid` of `user_id` signed in to `client_id` (its code was issued), so
/// that its end reaches the client's back-channel.
pub use store::insert_session_client as record_session_client;

/// A session ended: every client it signed in to that registered a back-channel gets a logout
/// token (signed with its ID-token algorithm, for its `sub`), queued for delivery. The session's
/// records of those clients go.
pub async fn session_ended(state: web::Data<OAuth>, sid: String, user_id: String) {
    let s = sid.clone();
    let clients = db::run(&state.pool, move |conn| {
        let clients = store::take_session_clients(conn, &s)?;
        Ok(clients)
    })
    .await;
    let clients = match clients {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the clients of an ended session");
            return;
        }
    };
    for client in clients {
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = match logout_token(&state, &client, &user_id, &sid) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(client_id = %client.id, error = %e, "cannot sign a logout token");
                continue;
            }
        };
        let delivery = Delivery {
            client_id: client.id.to_string(),
            uri,
            sid: sid.clone(),
            token,
        };
        if let Err(mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d)) =
            state.backchannel.sender.try_send(delivery)
        {
            audit_outcome(&state, &d, "dropped", 0, None).await;
        }
    }
}

/// The logout token (Back-Channel Logout 1.0 §2.4): `iss`, `sub`, `aud`, `iat`, `exp`, `jti`,
/// `events`, `sid`, and no `nonce`; `typ: logout+jwt`.
fn logout_token(
    state: &OAuth,
    client: &Client,
    user_id: &str,
    sid: &str,
) -> Result<String, AppError> {
    let now = db::now();
    let claims = json!({
        "iss": state.settings.issuer_str(),
        "sub": super::oidc::subject(&state.hasher, client, user_id),
        "aud": client.id.as_str(),
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": crate::crypto::random_id("lt", 22),
        "events": { LOGOUT_EVENT: {} },
        "sid": sid,
    });
    state.keyring.sign_jwt(
        super::oidc::id_token_alg(client),
        "logout+jwt",
        &claims.to_string(),
    )
}

/// The node's delivery job: takes logout tokens from the queue and POSTs each (a few at a time),
/// retrying a failed one twice; every outcome is audited (`logout.backchannel`). Runs until the
/// node stops; a second call finds the queue taken and returns at once.
pub async fn deliver(state: web::Data<OAuth>) {
    let Some(mut receiver) = state
        .backchannel
        .receiver
        .lock()
        .ok()
        .and_then(|mut r| r.take())
    else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DELIVERIES));
    while let Some(delivery) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let state = state.clone();
        actix_web::rt::spawn(async move {
            deliver_one(&state, &delivery).await;
            drop(slot);
        });
    }
}

async fn deliver_one(state: &OAuth, delivery: &Delivery) {
    let mut attempts = 0;
    let mut last_status = None;
    loop {
        attempts += 1;
        let sent = state
            .backchannel
            .http
            .post(&delivery.uri)
            .header(header::CACHE_CONTROL.as_str(), "no-store")
            .form(&[("logout_token", delivery.token.as_str())])
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => {
                audit_outcome(
                    state,
                    delivery,
                    "delivered",
                    attempts,
                    Some(res.status().as_u16()),
                )
                .await;
                return;
            }
            Ok(res) => last_status = Some(res.status().as_u16()),
            Err(e) => tracing::info!(client_id = %delivery.client_id, error = %e,
                "back-channel logout not delivered; will retry"),
        }
        match RETRY_WAITS.get(attempts - 1) {
            Some(wait) => actix_web::rt::time::sleep(*wait).await,
            None => break,
        }
    }
    tracing::warn!(client_id = %delivery.client_id, attempts, "back-channel logout failed");
    audit_outcome(state, delivery, "failed", attempts, last_status).await;
}

async fn audit_outcome(
    state: &OAuth,
    delivery: &Delivery,
    outcome: &'static str,
    attempts: usize,
    status: Option<u16>,
) {
    let client_id = delivery.client_id.clone();
    let details = json!({
        "outcome": outcome, "attempts": attempts, "status": status,
        "sid": delivery.sid, "uri": delivery.uri,
    });
    let recorded = db::run(&state.pool, move |conn| {
        let event = audit::Event::new(Actor::System, "logout.backchannel")
            .target("client", &client_id)
            .details(details);
        Ok(audit::record(conn, event)?)
    })
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot audit a back-channel logout");
    }
}

/// The parameters of an end-session request (RP-Initiated Logout 1.0 §2).
#[derive(Debug, Default)]
struct EndSession {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    ui_locales: Option<String>,
}

impl EndSession {
    fn read(pairs: Vec<(String, String)>) -> Result<Self, AppError> {
        let mut out = Self::default();
        if let Some(name) = super::params::repeated(&pairs) {
            return Err(AppError::bad_request(
                "invalid_request",
                crate::i18n::Detail::RepeatedParameter {
                    name: super::params::printable(name),
                },
            ));
        }
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "id_token_hint" => out.id_token_hint = Some(v),
                "client_id" => out.client_id = Some(v),
                "post_logout_redirect_uri" => out.post_logout_redirect_uri = Some(v),
                "state" => out.state = Some(v),
                "ui_locales" => out.ui_locales = Some(v),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// What a checked end-session request names: the client, where to return, and whether the hint
/// says who is signing out.
struct Checked {
    client: Option<Client>,
    return_to: Option<url::Url>,
    hint_sub: Option<String>,
}

/// The end-session request checked: the hint is one of our ID tokens, `client_id` agrees with its
/// audience, and `post_logout_redirect_uri` is one the client registered, exactly. Anything else is
/// the error page (never a redirect to an address nobody registered).
async fn check(state: &web::Data<OAuth>, request: &EndSession) -> Result<Checked, AppError> {
    let bad = |detail| AppError::bad_request("invalid_request", detail);
    let hint = match &request.id_token_hint {
        None => None,
        Some(token) => Some(
            state
                .keyring
                .verify_own(token, "JWT", state.settings.issuer_str())
                .ok_or_else(|| bad(crate::i18n::Detail::IdTokenHintInvalid))?,
        ),
    };
    let hint_aud = hint.as_ref().and_then(|c| match &c["aud"] {
        Value::String(a) => Some(a.clone()),
        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let client_id = match (&request.client_id, hint_aud) {
        (Some(given), Some(aud)) if *given != aud => {
            return Err(bad(crate::i18n::Detail::LogoutClientMismatch));
        }
        (Some(given), _) => Some(given.clone()),
        (None, aud) => aud,
    };
    let client = match client_id {
        None => None,
        Some(id) => Some(
            db::run(&state.pool, move |conn| Ok(store::find_client(conn, &id)?))
                .await?
                .ok_or_else(|| bad(crate::i18n::Detail::LogoutClientUnknown))?,
        ),
    };
    let return_to = match &request.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris().contains(&uri.as_str()));
            if !registered {
                return Err(bad(crate::i18n::Detail::PostLogoutRedirectUnregistered));
            }
            let mut to = url::Url::parse(uri)
                .map_err(|_| bad(crate::i18n::Detail::PostLogoutRedirectUnregistered))?;
            if let Some(s) = &request.state {
                to.query_pairs_mut().append_pair("state", s);
            }
            Some(to)
        }
    };
    Ok(Checked {
        client,
        return_to,
        hint_sub: hint.and_then(|c| c["sub"].as_str().map(str::to_owned)),
    })
}

/// `GET|POST /oauth/logout` (the `end_session_endpoint`): signs the browser's user out and, when
/// the client named a registered `post_logout_redirect_uri`, returns there with `state`. Without an
/// `id_token_hint` naming the signed-in user (or when it names another), the user confirms first
/// on a page (CSRF-checked); a POST from that page carries `confirm`.
pub async fn end_session(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    if req.method() == actix_web::http::Method::POST {
        pairs.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let confirmed = match pairs.iter().position(|(k, _)| k == "confirm") {
        Some(i) => {
            let csrf = pairs
                .iter()
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            verify_csrf(&state, &req, &csrf)?;
            pairs.remove(i);
            true
        }
        None => false,
    };
    pairs.retain(|(k, _)| k != "csrf_token");
    let request = EndSession::read(pairs)?;
    let lang = request
        .ui_locales
        .as_deref()
        .and_then(Lang::first_supported)
        .unwrap_or(ctx.lang);
    let checked = check(&state, &request).await?;
    let current = crate::accounts::current_user(&req).await?;
    if let Some(current) = current {
        let expected = checked
            .client
            .as_ref()
            .map(|c| super::oidc::subject(&state.hasher, c, current.user.id.as_str()));
        let hinted = checked.hint_sub.is_some() && checked.hint_sub == expected;
        if !hinted && !confirmed {
            return confirm_page(&state, &req, lang, &request, checked.client.as_ref());
        }
        let client_id = checked.client.as_ref().map(|c| c.id.to_string());
        crate::accounts::sign_out(&req, &state, current, client_id).await?;
    }
    let mut res = match checked.return_to {
        Some(to) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        None => html(StatusCode::OK, super::pages::signed_out_page(lang)?),
    };
    res.add_cookie(&crate::accounts::signed_out_cookie())
        .map_err(AppError::internal)?;
    Ok(res)
}

/// The page that asks the signed-in user to confirm signing out, its form carrying the request.
fn confirm_page(
    state: &OAuth,
    req: &HttpRequest,
    lang: Lang,
    request: &EndSession,
    client: Option<&Client>,
) -> Result<HttpResponse, AppError> {
    let (csrf, cookie) = csrf_token(state, req);
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in [
        ("id_token_hint", &request.id_token_hint),
        ("client_id", &request.client_id),
        (
            "post_logout_redirect_uri",
            &request.post_logout_redirect_uri,
        ),
        ("state", &request.state),
        ("ui_locales", &request.ui_locales),
    ] {
        if let Some(v) = value {
            fields.push((name, v.clone()));
        }
    }
    let page = super::pages::LogoutConfirm::for_lang(
        lang,
        &csrf,
        client.map(|c| c.name.as_str()),
        &fields,
    )
    .render()?;
    html_with_csrf(StatusCode::OK, page, cookie)
}
