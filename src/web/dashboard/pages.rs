//! Askama pages of the dashboard (en-US).

use askama::Template;

use super::FieldErrors;
use super::display::{Detail, Party, Stamp};

/// The frame every dashboard page shares: who is signed in, the navigation, a notice.
pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    pub csrf_token: String,
    pub active: &'static str,
    pub notice: Option<&'static str>,
}

/// `Debug` never prints the CSRF token.
impl std::fmt::Debug for Nav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nav")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

pub struct AppRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub grants: String,
    pub redirect_uris: usize,
}

#[derive(Template)]
#[template(path = "dashboard/apps.html")]
pub struct AppsPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub apps: Vec<AppRow>,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "dashboard/app_new.html")]
pub struct AppFormPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub name: String,
    pub public: bool,
    pub grants: Vec<Choice>,
    pub scopes: Vec<Choice>,
    pub redirect_uris: String,
    /// OpenID Connect logout: where RP-initiated logout may return (one per line), and the
    /// back-channel logout URI.
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "dashboard/app_secret.html")]
pub struct AppSecretPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub title: &'static str,
    pub client_id: String,
    pub name: String,
    pub secret: Option<String>,
    pub discovery_url: String,
}

pub struct AppDetail {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub auth_method: String,
    pub grants: String,
    pub scopes: String,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub has_secret: bool,
}

#[derive(Template)]
#[template(path = "dashboard/app.html")]
pub struct AppPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub app: AppDetail,
    pub discovery_url: String,
    pub redirect_uris: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "dashboard/confirm.html")]
pub struct ConfirmPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button_id: &'static str,
    pub button_label: &'static str,
    pub cancel: String,
}

pub struct KeyRow {
    pub id: String,
    /// The user (by email) or app (by name) the key belongs to.
    pub owner: Party,
    pub name: String,
    pub key_type: String,
    pub env: String,
    pub display: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/keys.html")]
pub struct KeysPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub keys: Vec<KeyRow>,
}

#[derive(Template)]
#[template(path = "dashboard/key_new.html")]
pub struct KeyFormPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub name: String,
    pub types: Vec<Choice>,
    pub env: String,
    pub scopes: String,
    pub expires_in: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "dashboard/key_secret.html")]
pub struct KeySecretPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub title: &'static str,
    pub key: String,
    pub key_id: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "dashboard/key.html")]
pub struct KeyPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub key: KeyRow,
    pub rate_limit: String,
    pub metadata: String,
    pub replaced_by: Option<String>,
    pub grace: String,
    pub errors: FieldErrors,
}

pub struct DayRow {
    pub day: String,
    pub allowed: i64,
    pub denied: i64,
    pub rate_limited: i64,
}

#[derive(Template)]
#[template(path = "dashboard/usage.html")]
pub struct UsagePage {
    pub lang: &'static str,
    pub nav: Nav,
    pub choices: Vec<Choice>,
    pub subject: String,
    /// Server-drawn SVG: numbers and dates only, never user text.
    pub chart: String,
    pub allowed: i64,
    pub denied: i64,
    pub rate_limited: i64,
    pub days: Vec<DayRow>,
}

pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub state: String,
    pub created: String,
    pub sign_from: String,
    pub sign_until: String,
    pub retire_at: String,
}

#[derive(Template)]
#[template(path = "dashboard/signing_keys.html")]
pub struct SigningKeysPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub keys: Vec<SigningKeyRow>,
}

pub struct EventView {
    pub when: Stamp,
    pub actor: Party,
    pub action: String,
    pub target: Party,
    pub ip: String,
    pub details: Vec<Detail>,
}

#[derive(Template)]
#[template(path = "dashboard/audit.html")]
pub struct AuditPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub events: Vec<EventView>,
    pub actor: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub errors: FieldErrors,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "dashboard/users.html")]
pub struct UsersPage {
    pub lang: &'static str,
    pub nav: Nav,
    pub users: Vec<UserRow>,
    pub email: String,
    pub admin: bool,
    pub errors: FieldErrors,
}
