//! The dashboard under `/dashboard`: sign-in and CSRF, apps, API keys, usage, signing keys, the audit
//! log and users, driven through HTTP like a browser (cookie jar, no redirects followed).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use tessera::apikeys::{self, KeyInput};
use tessera::audit::{Actor, Origin};
use tessera::config::{SecretBytes, Settings};
use tessera::db::schema::{api_keys, oauth_clients, sessions, users};

use crate::helpers::{
    TEST_PEPPER, TestApp, assert_error, assert_page_error, client, hidden_field, spawn_app,
    spawn_app_with,
};

const PASSWORD: &str = "correct horse battery";

/// A signed-in browser: its cookie jar, the CSRF token of its forms and the user behind it.
pub struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    csrf: String,
    pub user_id: String,
}

impl Browser<'_> {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.app.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// The status and body of a GET.
    async fn page(&self, path: &str) -> (u16, String) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    /// A page that must answer 200.
    async fn ok_page(&self, path: &str) -> String {
        let (status, body) = self.page(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A form POST with this browser's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &self.csrf));
        self.post_raw(path, &form).await
    }

    /// A form POST exactly as given (no CSRF token added).
    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.app.url(path))
            .form(fields)
            .send()
            .await
            .expect("request sent")
    }

    /// Follows the 303 a form that creates something answers with (POST → 303 → GET) and returns
    /// the page it leads to, which must be 200 and not cached.
    pub async fn follow(&self, res: reqwest::Response) -> String {
        assert_eq!(res.status(), 303, "a create form answers See Other");
        self.follow_location(&location(&res)).await
    }

    /// The page at `to` (a redirect's `Location`), which must be 200 and not cached.
    pub async fn follow_location(&self, to: &str) -> String {
        let res = self.get(to).await;
        assert_eq!(res.status(), 200, "GET {to}");
        assert_eq!(res.headers()["cache-control"], "no-store", "GET {to}");
        res.text().await.expect("body")
    }

    /// This browser's HTTP client (its cookie jar), for requests the helpers do not make.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `fields` with this browser's CSRF token added.
    pub fn with_csrf(&self, fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        form.push(("csrf_token".to_owned(), self.csrf.clone()));
        form
    }

    /// Registers an app through the dashboard; returns its client id and secret.
    pub async fn register_app(
        &self,
        name: &str,
        client_type: &str,
        grants: &[&str],
        scopes: &[&str],
        redirect_uris: &str,
    ) -> (String, Option<String>) {
        let mut form = vec![
            ("name", name),
            ("client_type", client_type),
            ("redirect_uris", redirect_uris),
        ];
        form.extend(grants.iter().map(|g| ("grant_types", *g)));
        form.extend(scopes.iter().map(|s| ("scopes", *s)));
        let res = self.post("/dashboard/apps", &form).await;
        let page = self.follow(res).await;
        (
            text_of(&page, "client-id").expect("client id shown"),
            text_of(&page, "client-secret"),
        )
    }

    /// Creates an API key through the dashboard; returns its id and the key.
    pub async fn create_key(&self, name: &str, scopes: &str) -> (String, String) {
        let res = self
            .post(
                "/dashboard/keys",
                &[
                    ("name", name),
                    ("type", "rk"),
                    ("env", "test"),
                    ("scopes", scopes),
                    ("expires_in", ""),
                ],
            )
            .await;
        let page = self.follow(res).await;
        (
            text_of(&page, "key-id").expect("key id shown"),
            text_of(&page, "api-key").expect("key shown"),
        )
    }
}

/// Creates a user and signs a fresh browser in as them.
pub async fn sign_in_as<'a>(app: &'a TestApp, email: &str, admin: bool) -> Browser<'a> {
    let user_id = app.create_user(email, PASSWORD, admin);
    browser_of(app, email, user_id).await
}

/// Signs a fresh browser in as an existing user.
async fn browser_of<'a>(app: &'a TestApp, email: &str, user_id: String) -> Browser<'a> {
    let client = client();
    app.sign_in(&client, email, PASSWORD).await;
    let page = client
        .get(app.url("/dashboard/apps"))
        .send()
        .await
        .expect("apps page")
        .text()
        .await
        .expect("body");
    let csrf = hidden_field(&page, "csrf_token").expect("every dashboard page has a csrf_token");
    Browser {
        app,
        client,
        csrf,
        user_id,
    }
}

/// The text inside the element with `id="ID"` (up to the next tag), HTML entities decoded.
pub fn text_of(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = page.find(&marker)? + marker.len();
    let start = page[at..].find('>')? + at + 1;
    let end = page[start..].find('<')? + start;
    Some(unescape(page[start..end].trim()))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let entity = rest.find(';').map(|end| (&rest[1..end], end));
        let decoded = entity.and_then(|(name, end)| {
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// The `return_to` of a redirect to the sign-in page.
fn return_to(location: &str) -> Option<String> {
    let url = url::Url::parse(&format!("http://x{location}")).expect("a local URL");
    assert_eq!(url.path(), "/login", "{location}");
    url.query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
}

/// Every value of `attr="…"` in a page, in order.
fn attr_values(page: &str, attr: &str) -> Vec<String> {
    let marker = format!("{attr}=\"");
    page.match_indices(&marker)
        .filter_map(|(i, _)| {
            let start = i + marker.len();
            page[start..]
                .find('"')
                .map(|end| unescape(&page[start..start + end]))
        })
        .collect()
}

/// The `href` of the link with `rel="REL"`.
fn link(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\"");
    let at = page.find(&marker)?;
    let tag_start = page[..at].rfind("<a ")?;
    attr_values(&page[tag_start..at], "href").into_iter().next()
}

/// How many rows a table body of the page has.
fn rows(page: &str) -> usize {
    page.matches("<tr><td>").count()
}

async fn check_key(app: &TestApp, key: &str) -> reqwest::Response {
    client()
        .get(app.url("/v1/auth/check"))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("check sent")
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request sent")
}

fn count_clients(app: &TestApp) -> i64 {
    let mut conn = app.conn();
    oauth_clients::table
        .count()
        .get_result(&mut conn)
        .expect("count")
}

fn redirect_uris_of(app: &TestApp, client_id: &str) -> Vec<String> {
    use tessera::db::schema::oauth_redirect_uris as r;
    let mut conn = app.conn();
    let mut uris: Vec<String> = r::table
        .filter(r::client_id.eq(client_id))
        .select(r::uri)
        .load(&mut conn)
        .expect("uris");
    uris.sort();
    uris
}

/// An API key owned by an app (made as the CLI does: the dashboard makes keys for users).
pub fn key_of_app(app: &TestApp, client_id: &str, name: &str) -> String {
    let hasher = tessera::crypto::Hasher::new(&SecretBytes::new(TEST_PEPPER.to_vec()));
    let mut conn = app.conn();
    let (_, secret) = apikeys::create_key(
        &mut conn,
        &Settings::default(),
        &hasher,
        &KeyInput {
            name: name.into(),
            key_type: "rk".into(),
            env: "live".into(),
            scopes: vec!["read".into()],
            owner_client_id: Some(client_id.to_owned()),
            ..Default::default()
        },
        Actor::System,
        Origin::default(),
    )
    .expect("key");
    secret.0
}

/// Polls the usage page until `total-allowed` and `total-denied` are as expected (flushes are batched).
async fn wait_for_usage(b: &Browser<'_>, path: &str, allowed: &str, denied: &str) -> String {
    let start = Instant::now();
    loop {
        let page = b.ok_page(path).await;
        let totals = (
            text_of(&page, "total-allowed").expect("total-allowed"),
            text_of(&page, "total-denied").expect("total-denied"),
        );
        if totals == (allowed.to_owned(), denied.to_owned()) {
            return page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: never reached {allowed}/{denied}, still {totals:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_brought_back() {
    let app = spawn_app().await;
    app.create_user("dev@example.com", PASSWORD, false);
    let anonymous = client();

    let res = anonymous
        .get(app.url("/dashboard"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/apps");

    for path in [
        "/dashboard/apps",
        "/dashboard/apps/new",
        "/dashboard/apps/cli_whatever",
        "/dashboard/apps/cli_whatever/delete",
        "/dashboard/keys",
        "/dashboard/keys/new",
        "/dashboard/keys/key_whatever",
        "/dashboard/keys/key_whatever/revoke",
        "/dashboard/usage?of=key:key_whatever",
        "/dashboard/signing-keys",
        "/dashboard/audit?action=api_key.&page=2",
        "/dashboard/users",
    ] {
        let res = anonymous.get(app.url(path)).send().await.expect("sent");
        assert_eq!(res.status(), 303, "GET {path}");
        assert_eq!(
            return_to(&location(&res)).as_deref(),
            Some(path),
            "GET {path} comes back to itself after sign-in"
        );
    }
    // A signed-out form post is not replayed after sign-in: it goes back to the dashboard.
    for path in [
        "/dashboard/apps",
        "/dashboard/keys",
        "/dashboard/keys/key_whatever/revoke",
        "/dashboard/signing-keys/rotate",
        "/dashboard/users",
    ] {
        let res = anonymous
            .post(app.url(path))
            .form(&[("name", "x"), ("csrf_token", "x")])
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 303, "POST {path}");
        assert_eq!(return_to(&location(&res)).as_deref(), Some("/dashboard"));
    }
    assert_eq!(count_clients(&app), 0, "nothing was created signed out");

    // Signing in with the return_to of the redirect lands on the page asked for.
    let token = app.login_csrf(&anonymous).await;
    let res = anonymous
        .post(app.url("/login"))
        .form(&[
            ("email", "dev@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &token),
            ("return_to", "/dashboard/keys/new"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/keys/new");

    let res = anonymous
        .get(app.url("/dashboard/keys/new"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert!(
        h["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html")),
        "{h:?}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "signed-in-as").as_deref(),
        Some("dev@example.com")
    );
    assert!(
        hidden_field(&page, "csrf_token").is_some_and(|t| t.len() == 43),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script");
    // A developer is offered no admin pages.
    assert!(!page.contains("href=\"/dashboard/users\""));
    assert!(!page.contains("href=\"/dashboard/signing-keys\""));
}

#[actix_web::test]
async fn every_dashboard_form_refuses_a_missing_or_foreign_csrf_token() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let other = sign_in_as(&app, "other@example.com", true).await;
    let dev_id = app.create_user("dev@example.com", PASSWORD, false);
    let (app_id, secret) = admin
        .register_app(
            "Billing",
            "confidential",
            &["authorization_code", "client_credentials"],
            &["read"],
            "https://billing.example/cb",
        )
        .await;
    let secret = secret.expect("a confidential app has a secret");
    let (key_id, key) = admin.create_key("Worker", "read").await;
    let signing_keys = attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid");

    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/dashboard/apps".into(),
            vec![
                ("name", "Sneaky"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        ),
        (
            format!("/dashboard/apps/{app_id}/redirect-uris"),
            vec![("redirect_uris", "https://evil.example/cb")],
        ),
        (format!("/dashboard/apps/{app_id}/secret"), vec![]),
        (format!("/dashboard/apps/{app_id}/delete"), vec![]),
        (
            "/dashboard/keys".into(),
            vec![
                ("name", "Sneaky"),
                ("type", "sk"),
                ("env", "live"),
                ("scopes", ""),
            ],
        ),
        (format!("/dashboard/keys/{key_id}/revoke"), vec![]),
        (
            format!("/dashboard/keys/{key_id}/rotate"),
            vec![("grace", "1h")],
        ),
        ("/dashboard/signing-keys/rotate".into(), vec![]),
        (
            "/dashboard/users".into(),
            vec![("email", "sneaky@example.com"), ("password", PASSWORD)],
        ),
        (format!("/dashboard/users/{dev_id}/make-admin"), vec![]),
        (format!("/dashboard/users/{dev_id}/disable"), vec![]),
    ];
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (path, fields) in &forms {
        for token in [None, Some(""), Some(forged), Some(other.csrf.as_str())] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf_token", t));
            }
            let res = admin.post_raw(path, &form).await;
            assert_eq!(res.status(), 403, "POST {path} with token {token:?}");
            assert_page_error(res, 403, "csrf_failed").await;
        }
    }
    // Not a form at all: refused before anything else.
    let res = admin
        .client
        .post(app.url("/dashboard/apps"))
        .json(&serde_json::json!({ "name": "x", "csrf_token": admin.csrf }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 415);

    // Nothing changed.
    assert_eq!(count_clients(&app), 1);
    assert_eq!(
        redirect_uris_of(&app, &app_id),
        ["https://billing.example/cb"]
    );
    assert_eq!(
        client_credentials(&app, &app_id, &secret).await.status(),
        200
    );
    assert_eq!(check_key(&app, &key).await.status(), 200);
    let mut conn = app.conn();
    let keys: i64 = api_keys::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(keys, 1);
    let (dev_admin, dev_disabled): (bool, Option<i64>) = users::table
        .find(&dev_id)
        .select((users::is_admin, users::disabled_at))
        .first(&mut conn)
        .expect("dev");
    assert!(!dev_admin && dev_disabled.is_none());
    let user_count: i64 = users::table.count().get_result(&mut conn).expect("count");
    assert_eq!(user_count, 3);
    assert_eq!(
        attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid"),
        signing_keys
    );
    // The right token still works.
    let res = admin
        .post(&format!("/dashboard/keys/{key_id}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
}

#[actix_web::test]
async fn registering_an_app_shows_its_credentials_once_and_they_work() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;

    let (status, empty) = dev.page("/dashboard/apps").await;
    assert_eq!(status, 200);
    assert!(empty.contains("No apps yet"), "{empty}");

    let form = dev.ok_page("/dashboard/apps/new").await;
    for (id, checked) in [
        ("type-confidential", true),
        ("type-public", false),
        ("grant-authorization_code", true),
        ("grant-refresh_token", true),
        ("grant-client_credentials", false),
        ("scope-read", true),
        ("scope-write", false),
        ("scope-offline_access", false),
    ] {
        let marker = format!("id=\"{id}\"");
        let at = form.find(&marker).unwrap_or_else(|| panic!("{id} offered"));
        let tag = &form[at..at + form[at..].find('>').expect("tag end")];
        assert_eq!(tag.contains(" checked"), checked, "{id}: {tag}");
    }

    // Confidential, machine to machine: a secret, shown once, that gets tokens.
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "  Billing <backend>  "),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("scopes", "read"),
                ("scopes", "write"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    let page = dev.follow(res).await;
    assert!(
        !page.contains("<backend>")
            && unescape(&page).contains("<strong>Billing <backend></strong>"),
        "the name is escaped: {page}"
    );
    let id = text_of(&page, "client-id").expect("client id");
    assert!(id.starts_with("cli_"), "{id}");
    let secret = text_of(&page, "client-secret").expect("a confidential app gets a secret");
    assert!(secret.len() >= 43, "{secret}");
    assert_eq!(
        text_of(&page, "discovery-url"),
        Some(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
    );
    let res = client_credentials(&app, &id, &secret).await;
    assert_eq!(res.status(), 200);
    let token: serde_json::Value = res.json().await.expect("json");
    assert_eq!(token["scope"], "read write");

    // Stored with its owner and only the secret's hash.
    {
        let mut conn = app.conn();
        let (name, owner, hash): (String, Option<String>, Option<String>) = oauth_clients::table
            .find(&id)
            .select((
                oauth_clients::name,
                oauth_clients::owner_user_id,
                oauth_clients::secret_hash,
            ))
            .first(&mut conn)
            .expect("row");
        assert_eq!(name, "Billing <backend>", "the name is trimmed");
        assert_eq!(owner.as_deref(), Some(dev.user_id.as_str()));
        assert!(hash.is_some_and(|h| !h.contains(&secret)));
    }

    // The app's own page never shows the secret again.
    let shown = dev.ok_page(&format!("/dashboard/apps/{id}")).await;
    assert_eq!(text_of(&shown, "client-id").as_deref(), Some(id.as_str()));
    assert!(!shown.contains(&secret));
    assert!(
        shown.contains("confidential (client_secret_basic)"),
        "{shown}"
    );
    assert!(shown.contains("read, write"), "{shown}");
    assert!(shown.contains("id=\"regenerate-secret\""));

    // Public, browser sign-in: no secret at all.
    let (public_id, public_secret) = dev
        .register_app(
            "Mobile",
            "public",
            &["authorization_code", "refresh_token"],
            &["read", "offline_access"],
            "http://127.0.0.1:8765/cb\n\nhttps://mobile.example/callback\n",
        )
        .await;
    assert_eq!(public_secret, None);
    let shown = dev.ok_page(&format!("/dashboard/apps/{public_id}")).await;
    assert!(shown.contains("public (none)"), "{shown}");
    assert!(!shown.contains("id=\"regenerate-secret\""));
    assert_eq!(
        text_of(&shown, "redirect_uris").as_deref(),
        Some("http://127.0.0.1:8765/cb\nhttps://mobile.example/callback")
    );
    assert_eq!(
        redirect_uris_of(&app, &public_id),
        [
            "http://127.0.0.1:8765/cb",
            "https://mobile.example/callback"
        ]
    );
    // A public app has no secret to regenerate.
    let res = dev
        .post(&format!("/dashboard/apps/{public_id}/secret"), &[])
        .await;
    assert_page_error(res, 409, "client_has_no_secret").await;

    let list = dev.ok_page("/dashboard/apps").await;
    let mut listed = attr_values(&list, "data-app-id");
    listed.sort();
    let mut expected = vec![id.clone(), public_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(!list.contains(&secret), "the list never shows a secret");

    // Both registrations are audited as the developer's.
    let audit = dev.ok_page("/dashboard/audit?action=client.create").await;
    assert_eq!(rows(&audit), 2, "{audit}");
    assert!(audit.contains(&format!("href=\"/dashboard/apps/{id}\"")));
    assert!(audit.contains(&format!("href=\"/dashboard/apps/{public_id}\"")));
    assert!(audit.contains(&format!("href=\"/dashboard/audit?actor={}\"", dev.user_id)));
}

#[actix_web::test]
async fn a_refused_registration_keeps_what_was_typed_and_saves_nothing() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;

    // Everything wrong at once: one message per field.
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "   "),
                ("client_type", "sideways"),
                ("grant_types", "password"),
                ("scopes", "read"),
                (
                    "redirect_uris",
                    "https://ok.example/cb\nhttps://app.example/cb#top\nhttps://*.example/cb\n/relative/cb\nhttp://app.example/cb\nhttps://ok.example/cb",
                ),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "name-error").as_deref(),
        Some("Give the app a name of 1 to 100 characters.")
    );
    assert_eq!(
        text_of(&page, "client_type-error").as_deref(),
        Some("Choose confidential or public.")
    );
    assert_eq!(
        text_of(&page, "grant_types-error").as_deref(),
        Some("'password' is not a grant type offered here.")
    );
    let uris = text_of(&page, "redirect_uris-error").expect("redirect URI messages");
    let lines: Vec<&str> = uris.lines().collect();
    assert_eq!(lines.len(), 5, "{uris}");
    assert!(
        lines[0].starts_with("Line 2: ") && lines[0].contains("fragment"),
        "{uris}"
    );
    assert!(
        lines[1].starts_with("Line 3: ") && lines[1].contains("wildcard"),
        "{uris}"
    );
    assert!(
        lines[2].starts_with("Line 4: ") && lines[2].contains("not an absolute URL"),
        "{uris}"
    );
    assert!(
        lines[3].starts_with("Line 5: ") && lines[3].contains("must use https"),
        "{uris}"
    );
    assert!(
        lines[4].starts_with("Line 6: ") && lines[4].contains("listed twice"),
        "{uris}"
    );
    // What was typed is shown again.
    assert_eq!(
        text_of(&page, "redirect_uris").as_deref(),
        Some(
            "https://ok.example/cb\nhttps://app.example/cb#top\nhttps://*.example/cb\n/relative/cb\nhttp://app.example/cb\nhttps://ok.example/cb"
        )
    );
    assert!(page.contains("aria-describedby=\"name-error\""));
    assert!(hidden_field(&page, "csrf_token").is_some());

    // Typed values survive a refusal: name, type, grants and scopes stay as chosen.
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "Single page app"),
                ("client_type", "public"),
                ("grant_types", "authorization_code"),
                ("grant_types", "client_credentials"),
                ("scopes", "write"),
                ("scopes", "delete"),
                ("redirect_uris", "https://spa.example/cb"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "grant_types-error").as_deref(),
        Some("A public app has no secret, so it cannot use client credentials.")
    );
    assert!(page.contains("value=\"Single page app\""), "{page}");
    for (id, checked) in [
        ("type-public", true),
        ("type-confidential", false),
        ("grant-authorization_code", true),
        ("grant-client_credentials", true),
        ("grant-refresh_token", false),
        ("scope-write", true),
        ("scope-delete", true),
        ("scope-read", false),
    ] {
        let at = page
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}"));
        let tag = &page[at..at + page[at..].find('>').expect("tag end")];
        assert_eq!(tag.contains(" checked"), checked, "{id}: {tag}");
    }
    assert!(text_of(&page, "name-error").is_none());

    // No grant type; the code grant without a redirect URI.
    let res = dev
        .post(
            "/dashboard/apps",
            &[("name", "A"), ("client_type", "confidential")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "grant_types-error").as_deref(),
        Some("Choose at least one grant type.")
    );
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "A"),
                ("client_type", "confidential"),
                ("grant_types", "authorization_code"),
                ("redirect_uris", "\n  \n"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "redirect_uris-error").as_deref(),
        Some("The authorization code grant needs at least one redirect URI.")
    );
    let long = "x".repeat(101);
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", long.as_str()),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        text_of(&res.text().await.expect("body"), "name-error").is_some(),
        "101 characters are too many"
    );

    // A scope nobody registered: refused by the registration itself, as a form message.
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "Unknown scope"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("scopes", "teleport"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    let message = text_of(&page, "form-error").expect("a form message");
    assert!(message.contains("teleport"), "{message}");
    assert!(page.contains("value=\"Unknown scope\""));

    assert_eq!(count_clients(&app), 0, "nothing was saved");
    assert!(dev.ok_page("/dashboard/apps").await.contains("No apps yet"));
    let audit = dev.ok_page("/dashboard/audit?action=client.create").await;
    assert_eq!(rows(&audit), 0);
}

#[actix_web::test]
async fn an_apps_redirect_uris_and_secret_are_changed_from_its_page() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (id, secret) = dev
        .register_app(
            "Web",
            "confidential",
            &["authorization_code", "client_credentials"],
            &["read"],
            "https://web.example/cb",
        )
        .await;
    let old_secret = secret.expect("secret");
    let path = format!("/dashboard/apps/{id}/redirect-uris");

    // Saved: back to the app's page with a notice.
    let res = dev
        .post(
            &path,
            &[(
                "redirect_uris",
                " https://web.example/cb \r\nhttps://web.example/other?x=1\r\nhttp://localhost:3000/cb\r\n",
            )],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("/dashboard/apps/{id}?notice=uris_saved")
    );
    let page = dev.ok_page(&location(&res)).await;
    assert!(page.contains("Redirect URIs saved."), "{page}");
    let saved = vec![
        "http://localhost:3000/cb".to_owned(),
        "https://web.example/cb".to_owned(),
        "https://web.example/other?x=1".to_owned(),
    ];
    assert_eq!(redirect_uris_of(&app, &id), saved);
    let mut shown: Vec<String> = text_of(&page, "redirect_uris")
        .expect("the textarea")
        .lines()
        .map(str::to_owned)
        .collect();
    shown.sort();
    assert_eq!(shown, saved, "the page shows what is stored");

    // Refused: a message per bad line, the text kept, nothing stored.
    let typed = "https://web.example/cb\nhttps://web.example/cb#frag\nhttps://web.example/*\nweb.example/cb\nhttp://web.example/cb\nhttps://web.example/cb";
    let res = dev.post(&path, &[("redirect_uris", typed)]).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    let messages = text_of(&page, "redirect_uris-error").expect("messages");
    let lines: Vec<&str> = messages.lines().collect();
    assert_eq!(lines.len(), 5, "{messages}");
    for (line, (n, why)) in lines.iter().zip([
        (2, "must not contain a fragment"),
        (3, "must not contain a wildcard"),
        (4, "is not an absolute URL"),
        (
            5,
            "must use https unless the host is 127.0.0.1, [::1] or localhost",
        ),
        (6, "is listed twice"),
    ]) {
        assert!(
            line.starts_with(&format!("Line {n}: ")) && line.contains(why),
            "{line}"
        );
    }
    assert_eq!(text_of(&page, "redirect_uris").as_deref(), Some(typed));
    assert_eq!(redirect_uris_of(&app, &id), saved, "nothing was stored");

    // The code grant needs at least one redirect URI.
    let res = dev.post(&path, &[("redirect_uris", "  \n")]).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(
        text_of(&page, "redirect_uris-error")
            .is_some_and(|m| m.contains("at least one redirect URI")),
        "{page}"
    );
    assert_eq!(redirect_uris_of(&app, &id), saved);

    // A new secret: shown once, the old one refused at once.
    assert_eq!(
        client_credentials(&app, &id, &old_secret).await.status(),
        200
    );
    let res = dev.post(&format!("/dashboard/apps/{id}/secret"), &[]).await;
    let page = dev.follow(res).await;
    assert_eq!(text_of(&page, "client-id").as_deref(), Some(id.as_str()));
    let new_secret = text_of(&page, "client-secret").expect("the new secret");
    assert_ne!(new_secret, old_secret);
    let res = client_credentials(&app, &id, &old_secret).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        client_credentials(&app, &id, &new_secret).await.status(),
        200
    );
    assert!(
        !dev.ok_page(&format!("/dashboard/apps/{id}"))
            .await
            .contains(&new_secret)
    );

    let audit = dev.ok_page("/dashboard/audit?action=client.").await;
    let actions: Vec<String> = [
        "client.secret.regenerate",
        "client.redirect_uris.update",
        "client.create",
    ]
    .iter()
    .map(|a| format!("<code>{a}</code>"))
    .collect();
    let positions: Vec<usize> = actions
        .iter()
        .map(|a| {
            audit
                .find(a.as_str())
                .unwrap_or_else(|| panic!("{a}: {audit}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "newest first: {actions:?}"
    );
    assert_eq!(rows(&audit), 3, "one update: refusals are not recorded");
}

#[actix_web::test]
async fn deleting_an_app_asks_first_then_removes_it() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (keep, _) = dev
        .register_app(
            "Keep",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let (id, secret) = dev
        .register_app(
            "Doomed",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let secret = secret.expect("secret");

    let confirm = dev.ok_page(&format!("/dashboard/apps/{id}/delete")).await;
    assert!(confirm.contains("Delete Doomed?"), "{confirm}");
    assert!(confirm.contains("id=\"confirm-delete\""));
    assert!(confirm.contains(&format!("action=\"/dashboard/apps/{id}/delete\"")));
    assert!(hidden_field(&confirm, "csrf_token").is_some());
    assert_eq!(count_clients(&app), 2, "asking deletes nothing");

    let res = dev.post(&format!("/dashboard/apps/{id}/delete"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/apps?notice=app_deleted");
    let list = dev.ok_page(&location(&res)).await;
    assert!(list.contains("The app was deleted."), "{list}");
    assert_eq!(attr_values(&list, "data-app-id"), [keep.as_str()]);
    assert_eq!(count_clients(&app), 1);

    for path in [
        format!("/dashboard/apps/{id}"),
        format!("/dashboard/apps/{id}/delete"),
    ] {
        assert_page_error(dev.get(&path).await, 404, "not_found").await;
    }
    assert_page_error(
        dev.post(&format!("/dashboard/apps/{id}/delete"), &[]).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(client_credentials(&app, &id, &secret).await.status(), 401);

    let audit = dev.ok_page("/dashboard/audit?action=client.delete").await;
    assert_eq!(rows(&audit), 1);
    assert!(audit.contains(&format!("deleted app</span> <code>{id}</code>")));
    assert!(audit.contains("Doomed"), "the name is kept in the details");
}

#[actix_web::test]
async fn the_api_keys_of_a_deleted_app_are_refused_at_once() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (id, _) = dev
        .register_app(
            "Owner",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let key = key_of_app(&app, &id, "Owned by the app");
    // Seen once: this node now answers for the key from its cache.
    assert_eq!(check_key(&app, &key).await.status(), 200);
    let res = dev.post(&format!("/dashboard/apps/{id}/delete"), &[]).await;
    assert_eq!(res.status(), 303);
    let mut conn = app.conn();
    let left: i64 = api_keys::table
        .filter(api_keys::owner_client_id.eq(&id))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(left, 0, "the app's keys are deleted with it");
    // Like a revocation through this node, the deletion must be seen by the very next request.
    let res = check_key(&app, &key).await;
    assert_eq!(res.status(), 401, "a deleted app's key still passes");
}

#[actix_web::test]
async fn developers_see_and_touch_only_their_own_apps_and_keys() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let ana = sign_in_as(&app, "ana@example.com", false).await;
    let bob = sign_in_as(&app, "bob@example.com", false).await;
    let (cli_app, _) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let (ana_app, ana_secret) = ana
        .register_app(
            "Ana's app",
            "confidential",
            &["authorization_code", "client_credentials"],
            &["read"],
            "https://ana.example/cb",
        )
        .await;
    let ana_secret = ana_secret.expect("secret");
    let (bob_app, _) = bob
        .register_app(
            "Bob's app",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let (ana_key_id, ana_key) = ana.create_key("Ana's key", "read").await;
    let (bob_key_id, _) = bob.create_key("Bob's key", "read").await;

    let listed = |page: &str, attr: &str| {
        let mut v = attr_values(page, attr);
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        listed(&ana.ok_page("/dashboard/apps").await, "data-app-id"),
        [ana_app.as_str()]
    );
    assert_eq!(
        listed(&bob.ok_page("/dashboard/apps").await, "data-app-id"),
        [bob_app.as_str()]
    );
    assert_eq!(
        listed(&admin.ok_page("/dashboard/apps").await, "data-app-id"),
        sorted(vec![cli_app.clone(), ana_app.clone(), bob_app.clone()]),
        "an administrator sees every app, the CLI's too"
    );
    assert_eq!(
        listed(&ana.ok_page("/dashboard/keys").await, "data-key-id"),
        [ana_key_id.as_str()]
    );
    assert_eq!(
        listed(&admin.ok_page("/dashboard/keys").await, "data-key-id"),
        sorted(vec![ana_key_id.clone(), bob_key_id.clone()])
    );

    // Bob cannot see or change anything of Ana's: it looks like nothing is there.
    for path in [
        format!("/dashboard/apps/{ana_app}"),
        format!("/dashboard/apps/{ana_app}/delete"),
        format!("/dashboard/apps/{cli_app}"),
        format!("/dashboard/keys/{ana_key_id}"),
        format!("/dashboard/keys/{ana_key_id}/revoke"),
        format!("/dashboard/usage?of=key:{ana_key_id}"),
        format!("/dashboard/usage?of=app:{ana_app}"),
    ] {
        assert_page_error(bob.get(&path).await, 404, "not_found").await;
    }
    let posts: [(String, Vec<(&str, &str)>); 6] = [
        (
            format!("/dashboard/apps/{ana_app}/redirect-uris"),
            vec![("redirect_uris", "https://bob.example/steal")],
        ),
        (format!("/dashboard/apps/{ana_app}/secret"), vec![]),
        (format!("/dashboard/apps/{ana_app}/delete"), vec![]),
        (format!("/dashboard/apps/{cli_app}/delete"), vec![]),
        (format!("/dashboard/keys/{ana_key_id}/revoke"), vec![]),
        (
            format!("/dashboard/keys/{ana_key_id}/rotate"),
            vec![("grace", "1h")],
        ),
    ];
    for (path, fields) in &posts {
        assert_page_error(bob.post(path, fields).await, 404, "not_found").await;
    }
    // Unknown ids are the same 404.
    assert_page_error(bob.get("/dashboard/apps/cli_nope").await, 404, "not_found").await;
    assert_page_error(bob.get("/dashboard/keys/key_nope").await, 404, "not_found").await;

    // Nothing of Ana's changed.
    assert_eq!(count_clients(&app), 3);
    assert_eq!(redirect_uris_of(&app, &ana_app), ["https://ana.example/cb"]);
    assert_eq!(
        client_credentials(&app, &ana_app, &ana_secret)
            .await
            .status(),
        200
    );
    assert_eq!(check_key(&app, &ana_key).await.status(), 200);
    let ana_key_page = ana.ok_page(&format!("/dashboard/keys/{ana_key_id}")).await;
    assert_eq!(text_of(&ana_key_page, "status").as_deref(), Some("active"));
    assert!(!ana_key_page.contains("Replaced by"));
    // Bob's audit log knows nothing of Ana.
    let audit = bob.ok_page("/dashboard/audit").await;
    assert!(!audit.contains(&ana.user_id) && !audit.contains(&ana_app));

    // The administrator may open and manage both.
    for path in [
        format!("/dashboard/apps/{ana_app}"),
        format!("/dashboard/apps/{bob_app}"),
        format!("/dashboard/apps/{cli_app}"),
        format!("/dashboard/keys/{ana_key_id}"),
        format!("/dashboard/usage?of=key:{bob_key_id}"),
    ] {
        admin.ok_page(&path).await;
    }
    let res = admin
        .post(&format!("/dashboard/keys/{bob_key_id}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let bob_key_page = bob.ok_page(&format!("/dashboard/keys/{bob_key_id}")).await;
    assert_eq!(text_of(&bob_key_page, "status").as_deref(), Some("revoked"));
}

#[actix_web::test]
async fn api_keys_are_created_with_checks_shown_once_and_listed_without_the_secret() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let admin = sign_in_as(&app, "root@example.com", true).await;

    // A developer is not offered full-access keys; an administrator is.
    let form = dev.ok_page("/dashboard/keys/new").await;
    assert!(form.contains("<option value=\"rk\" selected>"), "{form}");
    assert!(!form.contains("<option value=\"sk\""), "{form}");
    let form = admin.ok_page("/dashboard/keys/new").await;
    assert!(form.contains("<option value=\"sk\""), "{form}");

    let res = dev
        .post(
            "/dashboard/keys",
            &[
                ("name", "  Reporting  "),
                ("type", "rk"),
                ("env", "live"),
                ("scopes", "read, write"),
                ("expires_in", "90d"),
            ],
        )
        .await;
    let page = dev.follow(res).await;
    let key = text_of(&page, "api-key").expect("the key, shown once");
    let id = text_of(&page, "key-id").expect("its id");
    assert!(key.starts_with("rk_live_"), "{key}");
    assert!(id.starts_with("key_"), "{id}");

    let res = check_key(&app, &key).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-auth-key-id"], id.as_str());
    assert_eq!(res.headers()["x-auth-scopes"], "read write");
    assert_eq!(res.headers()["x-auth-subject"], dev.user_id.as_str());

    let list = dev.ok_page("/dashboard/keys").await;
    assert!(!list.contains(&key), "the list never shows the key");
    assert!(!list.contains(&key[8..20]), "nor any part of its body");
    assert!(
        list.contains(&format!("rk_live_…{}", &key[key.len() - 4..])),
        "{list}"
    );
    assert!(list.contains("Reporting"));
    let shown = dev.ok_page(&format!("/dashboard/keys/{id}")).await;
    assert!(!shown.contains(&key));
    assert_eq!(text_of(&shown, "key-id").as_deref(), Some(id.as_str()));
    assert_eq!(text_of(&shown, "status").as_deref(), Some("active"));
    assert!(shown.contains("read write"), "{shown}");
    assert_eq!(text_of(&shown, "owner").as_deref(), Some("dev@example.com"));
    let expires: Option<i64> = {
        let mut conn = app.conn();
        api_keys::table
            .find(&id)
            .select(api_keys::expires_at)
            .first(&mut conn)
            .expect("row")
    };
    let ninety_days = chrono::Utc::now().timestamp() + 90 * 86_400;
    assert!(
        expires.is_some_and(|e| (e - ninety_days).abs() < 60),
        "{expires:?}"
    );

    // Refusals: a message on the field, what was typed kept, nothing created.
    let cases = [
        (
            "no name",
            [
                ("name", " "),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", "read"),
                ("expires_in", ""),
            ],
            "name-error",
            "Give the key a name of 1 to 100 characters.",
        ),
        (
            "bad env",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "prod"),
                ("scopes", "read"),
                ("expires_in", ""),
            ],
            "env-error",
            "Choose live or test.",
        ),
        (
            "bad lifetime",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", "read"),
                ("expires_in", "soon"),
            ],
            "expires_in-error",
            "Write a lifetime like 90d, 12h or 30m (at least one minute), or leave it empty.",
        ),
        (
            "too short",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", "read"),
                ("expires_in", "30s"),
            ],
            "expires_in-error",
            "Write a lifetime like 90d, 12h or 30m (at least one minute), or leave it empty.",
        ),
        (
            "full access",
            [
                ("name", "k"),
                ("type", "sk"),
                ("env", "live"),
                ("scopes", ""),
                ("expires_in", ""),
            ],
            "type-error",
            "Choose one of the key types listed.",
        ),
        (
            "admin scope",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", "read admin"),
                ("expires_in", ""),
            ],
            "scopes-error",
            "Only administrators may create keys with the admin scope.",
        ),
        (
            "admin scope, comma",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", "read,admin"),
                ("expires_in", ""),
            ],
            "scopes-error",
            "Only administrators may create keys with the admin scope.",
        ),
        (
            "no scope",
            [
                ("name", "k"),
                ("type", "rk"),
                ("env", "test"),
                ("scopes", ""),
                ("expires_in", ""),
            ],
            "scopes-error",
            "rk keys need at least one scope",
        ),
    ];
    for (case, fields, field, message) in cases {
        let res = dev.post("/dashboard/keys", &fields).await;
        assert_eq!(res.status(), 422, "{case}");
        let page = res.text().await.expect("body");
        assert_eq!(text_of(&page, field).as_deref(), Some(message), "{case}");
        assert!(text_of(&page, "api-key").is_none(), "{case}");
        let scopes = fields[3].1;
        assert!(
            page.contains(&format!(
                "id=\"scopes\" name=\"scopes\" type=\"text\" value=\"{scopes}\""
            )),
            "{case}: the scopes typed are kept"
        );
    }
    // An administrator may create both; a full-access key takes no scopes.
    let res = admin
        .post(
            "/dashboard/keys",
            &[
                ("name", "Ops"),
                ("type", "sk"),
                ("env", "live"),
                ("scopes", "read"),
                ("expires_in", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        text_of(&res.text().await.expect("body"), "scopes-error")
            .is_some_and(|m| m.contains("full access")),
    );
    let res = admin
        .post(
            "/dashboard/keys",
            &[
                ("name", "Ops"),
                ("type", "sk"),
                ("env", "live"),
                ("scopes", ""),
                ("expires_in", ""),
            ],
        )
        .await;
    let sk = text_of(&admin.follow(res).await, "api-key").expect("key");
    assert!(sk.starts_with("sk_live_"));
    let (_, admin_rk) = admin.create_key("Admin tool", "admin read").await;
    let res = client()
        .get(app.url("/v1/auth/check?scopes=admin"))
        .header("X-API-Key", &admin_rk)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 200, "an administrator may grant admin");

    let mut conn = app.conn();
    let dev_keys: i64 = api_keys::table
        .filter(api_keys::owner_user_id.eq(&dev.user_id))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(dev_keys, 1, "refused keys are not created");
    let audit = dev.ok_page("/dashboard/audit?action=api_key.create").await;
    assert_eq!(rows(&audit), 1);
    assert!(audit.contains(&format!("href=\"/dashboard/keys/{id}\"")));
}

#[actix_web::test]
async fn a_developer_cannot_slip_the_admin_scope_past_the_check() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let mut escalations = Vec::new();
    for scopes in [
        "read,\tadmin",
        "read \nadmin",
        "read,\u{a0}admin",
        "read admin\u{3000}",
    ] {
        let res = dev
            .post(
                "/dashboard/keys",
                &[
                    ("name", "Escalation"),
                    ("type", "rk"),
                    ("env", "live"),
                    ("scopes", scopes),
                    ("expires_in", ""),
                ],
            )
            .await;
        let status = res.status().as_u16();
        let page = if status == 303 {
            dev.follow(res).await
        } else {
            res.text().await.expect("body")
        };
        if let Some(key) = text_of(&page, "api-key") {
            // What the key can do: manage every key on the server.
            let res = client()
                .get(app.url("/v1/keys"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("sent");
            escalations.push(format!("{scopes:?} → GET /v1/keys {}", res.status()));
            continue;
        }
        assert_eq!(status, 422, "{scopes:?}");
        assert_eq!(
            text_of(&page, "scopes-error").as_deref(),
            Some("Only administrators may create keys with the admin scope."),
            "{scopes:?}"
        );
    }
    assert!(
        escalations.is_empty(),
        "a developer got keys with the admin scope: {escalations:?}"
    );
    let mut conn = app.conn();
    let created: i64 = api_keys::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(created, 0);
}

#[actix_web::test]
async fn a_revoked_key_is_refused_at_once_and_a_rotated_one_lives_through_its_grace() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (id, key) = dev.create_key("Doomed", "read").await;
    // Seen twice: this node now answers for the key from its cache.
    assert_eq!(check_key(&app, &key).await.status(), 200);
    assert_eq!(check_key(&app, &key).await.status(), 200);

    let confirm = dev.ok_page(&format!("/dashboard/keys/{id}/revoke")).await;
    assert!(confirm.contains("Revoke Doomed?"), "{confirm}");
    assert!(confirm.contains("id=\"confirm-revoke\""));
    assert!(confirm.contains(&format!("rk_test_…{}", &key[key.len() - 4..])));
    assert!(!confirm.contains(&key));
    assert_eq!(
        check_key(&app, &key).await.status(),
        200,
        "asking revokes nothing"
    );

    let res = dev.post(&format!("/dashboard/keys/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("/dashboard/keys/{id}?notice=key_revoked")
    );
    assert_error(check_key(&app, &key).await, 401, "revoked_api_key").await;
    let page = dev.ok_page(&location(&res)).await;
    assert!(page.contains("The key was revoked."), "{page}");
    assert_eq!(text_of(&page, "status").as_deref(), Some("revoked"));
    assert!(!page.contains("id=\"rotate\"") && !page.contains("id=\"revoke\""));
    // Revoking again changes nothing; a revoked key cannot be rotated.
    let res = dev.post(&format!("/dashboard/keys/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_page_error(
        dev.post(&format!("/dashboard/keys/{id}/rotate"), &[("grace", "1h")])
            .await,
        409,
        "api_key_not_active",
    )
    .await;

    // Rotation: a new key at once, the old one valid for the grace period.
    let (old_id, old) = dev.create_key("Rotating", "read write").await;
    let key_page = dev.ok_page(&format!("/dashboard/keys/{old_id}")).await;
    assert!(key_page.contains("id=\"rotate\""));
    for grace in ["31d", "soon"] {
        let res = dev
            .post(
                &format!("/dashboard/keys/{old_id}/rotate"),
                &[("grace", grace)],
            )
            .await;
        assert_eq!(res.status(), 422, "grace {grace}");
        let page = res.text().await.expect("body");
        assert_eq!(
            text_of(&page, "grace-error").as_deref(),
            Some("Write a grace period like 24h or 7d, at most 30d."),
            "grace {grace}: the message is next to the field"
        );
        assert!(
            page.contains(&format!("value=\"{grace}\"")),
            "what was typed is kept"
        );
    }
    {
        let mut conn = app.conn();
        let replaced: Option<String> = api_keys::table
            .find(&old_id)
            .select(api_keys::replaced_by)
            .first(&mut conn)
            .expect("row");
        assert_eq!(replaced, None, "a refused rotation changes nothing");
    }
    let res = dev
        .post(
            &format!("/dashboard/keys/{old_id}/rotate"),
            &[("grace", "1h")],
        )
        .await;
    let page = dev.follow(res).await;
    let new = text_of(&page, "api-key").expect("the new key");
    let new_id = text_of(&page, "key-id").expect("its id");
    assert_ne!(new, old);
    assert_ne!(new_id, old_id);
    assert!(page.contains("keeps working for 1h"), "{page}");
    for k in [&old, &new] {
        let res = check_key(&app, k).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-auth-scopes"], "read write");
    }
    let old_page = dev.ok_page(&format!("/dashboard/keys/{old_id}")).await;
    assert!(
        old_page.contains(&format!("href=\"/dashboard/keys/{new_id}\"")),
        "the old key points to its replacement"
    );
    let old_expires: Option<i64> = {
        let mut conn = app.conn();
        api_keys::table
            .find(&old_id)
            .select(api_keys::expires_at)
            .first(&mut conn)
            .expect("row")
    };
    let in_an_hour = chrono::Utc::now().timestamp() + 3600;
    assert!(
        old_expires.is_some_and(|e| (e - in_an_hour).abs() < 60),
        "{old_expires:?}"
    );
    assert_eq!(
        text_of(
            &dev.ok_page(&format!("/dashboard/keys/{new_id}")).await,
            "status"
        )
        .as_deref(),
        Some("active")
    );

    let audit = dev.ok_page("/dashboard/audit?action=api_key.").await;
    for action in ["api_key.create", "api_key.revoke", "api_key.rotate"] {
        assert!(
            audit.contains(&format!("<code>{action}</code>")),
            "{action}"
        );
    }
    let revokes = dev.ok_page("/dashboard/audit?action=api_key.revoke").await;
    assert_eq!(rows(&revokes), 1, "the second revocation is not an event");
}

#[actix_web::test]
async fn usage_shows_the_flushed_counts_per_key_per_app_and_in_total() {
    let app = spawn_app_with(|s| s.usage_flush_interval = Duration::from_millis(200)).await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let ana = sign_in_as(&app, "ana@example.com", false).await;
    let bob = sign_in_as(&app, "bob@example.com", false).await;
    let (ana_key_id, ana_key) = ana.create_key("Ana's key", "read").await;
    let (bob_key_id, bob_key) = bob.create_key("Bob's key", "read").await;
    let (ana_app, ana_secret) = ana
        .register_app(
            "Ana's app",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let app_key = key_of_app(&app, &ana_app, "Key of the app");

    // Nothing used yet: a chart with no bars, zeros.
    let page = ana
        .ok_page(&format!("/dashboard/usage?of=key:{ana_key_id}"))
        .await;
    assert!(page.contains("<svg"), "{page}");
    assert!(!page.contains("<rect"), "no bars yet");
    assert_eq!(text_of(&page, "total-allowed").as_deref(), Some("0"));
    assert!(
        text_of(&page, "usage-subject")
            .is_some_and(|s| s.starts_with("Key Ana's key") && s.ends_with("last 30 days")),
        "{page}"
    );

    for _ in 0..3 {
        assert_eq!(check_key(&app, &ana_key).await.status(), 200);
    }
    let res = client()
        .get(app.url("/v1/auth/check?scopes=write"))
        .header("X-API-Key", &ana_key)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 403);
    for _ in 0..2 {
        assert_eq!(check_key(&app, &bob_key).await.status(), 200);
        assert_eq!(check_key(&app, &app_key).await.status(), 200);
    }
    // An app's usage is the tokens issued to it.
    let ana_secret = ana_secret.expect("secret");
    for _ in 0..3 {
        assert_eq!(
            client_credentials(&app, &ana_app, &ana_secret)
                .await
                .status(),
            200
        );
    }

    let page = wait_for_usage(
        &ana,
        &format!("/dashboard/usage?of=key:{ana_key_id}"),
        "3",
        "1",
    )
    .await;
    assert!(page.contains("<svg"));
    assert!(page.contains("<rect class=\"allowed\""), "{page}");
    assert!(page.contains("<rect class=\"denied\""), "{page}");
    assert_eq!(text_of(&page, "total-limited").as_deref(), Some("0"));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        page.contains(&format!(
            "<tr><td>{today}</td><td>3</td><td>1</td><td>0</td></tr>"
        )),
        "today's row: {page}"
    );
    assert!(
        page.contains(&format!("<option value=\"key:{ana_key_id}\" selected>")),
        "the key is the one selected"
    );
    assert!(
        !page.contains(&bob_key_id),
        "Bob's key is not offered to Ana"
    );

    wait_for_usage(
        &bob,
        &format!("/dashboard/usage?of=key:{bob_key_id}"),
        "2",
        "0",
    )
    .await;
    let page = wait_for_usage(
        &ana,
        &format!("/dashboard/usage?of=app:{ana_app}"),
        "3",
        "0",
    )
    .await;
    assert!(page.contains("<rect class=\"allowed\""), "{page}");
    // All of Ana's keys: those she owns (not her app's).
    wait_for_usage(&ana, "/dashboard/usage", "3", "1").await;
    wait_for_usage(&ana, "/dashboard/usage?of=", "3", "1").await;
    // An administrator's total covers every key: both users' and the app's.
    wait_for_usage(&admin, "/dashboard/usage", "7", "1").await;
    wait_for_usage(
        &admin,
        &format!("/dashboard/usage?of=key:{bob_key_id}"),
        "2",
        "0",
    )
    .await;

    for path in [
        "/dashboard/usage?of=key:key_nope".to_owned(),
        "/dashboard/usage?of=app:cli_nope".to_owned(),
        "/dashboard/usage?of=everything".to_owned(),
        format!("/dashboard/usage?of=key:{bob_key_id}"),
    ] {
        assert_page_error(ana.get(&path).await, 404, "not_found").await;
    }
    // The key's last use reaches its page.
    let key_page = ana.ok_page(&format!("/dashboard/keys/{ana_key_id}")).await;
    let last_used = key_page
        .split("<dt>Last used</dt><dd>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("a last-used entry");
    assert!(last_used.starts_with(&today), "{last_used}");
}

#[actix_web::test]
async fn signing_keys_are_listed_and_rotated_by_administrators_only() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;

    assert_page_error(dev.get("/dashboard/signing-keys").await, 403, "forbidden").await;
    assert_page_error(
        dev.post("/dashboard/signing-keys/rotate", &[]).await,
        403,
        "forbidden",
    )
    .await;

    let page = admin.ok_page("/dashboard/signing-keys").await;
    assert!(page.contains("href=\"/dashboard/signing-keys\" aria-current=\"page\""));
    let before = attr_values(&page, "data-kid");
    assert_eq!(before.len(), 1, "one key after start: {page}");
    assert!(page.contains("status-current"), "{page}");

    let res = admin.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        "/dashboard/signing-keys?notice=signing_key_rotated"
    );
    let page = admin.ok_page(&location(&res)).await;
    assert!(page.contains("A new signing key is published"), "{page}");
    let after = attr_values(&page, "data-kid");
    assert_eq!(after.len(), 2, "{page}");
    let new_kid = after
        .iter()
        .find(|k| !before.contains(k))
        .expect("a new kid")
        .clone();
    let row_at = page
        .find(&format!("data-kid=\"{new_kid}\""))
        .expect("the new row");
    let row = &page[row_at..row_at + page[row_at..].find("</tr>").expect("row end")];
    assert!(
        row.contains("status-next"),
        "it signs after the lead time: {row}"
    );
    // Published at once, beside the key that still signs.
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&new_kid.as_str()), "{jwks}");
    assert!(kids.contains(&before[0].as_str()), "{jwks}");

    // A successor already waits: rotating again adds nothing.
    let res = admin.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid").len(),
        2
    );

    // The key made at start-up is the system's; the one rotation made here is the administrator's.
    let audit = admin
        .ok_page(&format!(
            "/dashboard/audit?action=signing_key.rotate&actor={}",
            admin.user_id
        ))
        .await;
    assert_eq!(rows(&audit), 1, "{audit}");
    assert!(audit.contains(&format!("signing key {new_kid}")));
    assert!(audit.contains(&format!("?actor={}\"", admin.user_id)));
}

#[actix_web::test]
async fn the_audit_log_filters_pages_and_shows_developers_only_their_own_events() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (dev_key, _) = dev.create_key("Dev key", "read").await;
    let (admin_key, _) = admin.create_key("Admin key", "read").await;
    let res = dev
        .post(&format!("/dashboard/keys/{dev_key}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (dev_app, _) = dev
        .register_app(
            "Dev app",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;

    // 60 more events, a few milliseconds apart so that their order is certain.
    {
        let mut conn = app.conn();
        for n in 0..60 {
            let target = format!("t{n:02}");
            tessera::audit::record(
                &mut conn,
                tessera::audit::Event::new(Actor::Cli, "test.bulk").target("thing", &target),
            )
            .expect("event");
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    // Whole action; newest first; 50 per page with a link to the next.
    let page = admin.ok_page("/dashboard/audit?action=test.bulk").await;
    assert_eq!(rows(&page), 50);
    let first = page.find("thing t59").expect("the newest");
    let last = page.find("thing t10").expect("the 50th newest");
    assert!(first < last, "newest first");
    assert!(!page.contains("thing t09"));
    assert!(link(&page, "prev").is_none());
    let next = link(&page, "next").expect("a link to older events");
    assert_eq!(next, "/dashboard/audit?action=test.bulk&page=2");
    let page = admin.ok_page(&next).await;
    assert_eq!(rows(&page), 10);
    assert!(page.contains("thing t09") && page.contains("thing t00"));
    assert!(page.find("thing t09") < page.find("thing t00"));
    assert!(link(&page, "next").is_none());
    assert_eq!(
        link(&page, "prev").as_deref(),
        Some("/dashboard/audit?action=test.bulk&page=1")
    );
    assert!(page.contains("value=\"test.bulk\""), "the filter is kept");

    // A prefix ending in '.'; without the '.' the action must match exactly.
    let page = admin.ok_page("/dashboard/audit?action=api_key.").await;
    assert_eq!(rows(&page), 3, "two creations and a revocation: {page}");
    assert!(
        page.contains("<code>api_key.revoke</code>")
            && page.contains("<code>api_key.create</code>")
    );
    assert!(!page.contains("<code>client.create</code>"));
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=api_key").await),
        0
    );

    // Actor: an id or a type.
    let page = admin
        .ok_page(&format!("/dashboard/audit?actor={}", dev.user_id))
        .await;
    assert!(page.contains(&format!("href=\"/dashboard/keys/{dev_key}\"")));
    assert!(page.contains(&format!("href=\"/dashboard/apps/{dev_app}\"")));
    assert!(!page.contains(&format!("href=\"/dashboard/keys/{admin_key}\"")));
    assert!(!page.contains("test.bulk"));
    assert_eq!(
        rows(
            &admin
                .ok_page("/dashboard/audit?actor=cli&action=test.")
                .await
        ),
        50
    );

    // Dates: today holds everything; yesterday nothing; a bad date is a field message.
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("a day before");
    let page = admin
        .ok_page(&format!(
            "/dashboard/audit?action=api_key.&from={today}&to={today}"
        ))
        .await;
    assert_eq!(rows(&page), 3);
    let page = admin
        .ok_page(&format!("/dashboard/audit?to={yesterday}"))
        .await;
    assert_eq!(rows(&page), 0);
    assert!(page.contains("No events match."));
    let page = admin
        .ok_page("/dashboard/audit?from=2026-13-40&to=tomorrow")
        .await;
    assert_eq!(
        text_of(&page, "from-error").as_deref(),
        Some("Write a date as YYYY-MM-DD.")
    );
    assert_eq!(
        text_of(&page, "to-error").as_deref(),
        Some("Write a date as YYYY-MM-DD.")
    );
    assert_eq!(rows(&page), 0, "no events under a bad filter");
    assert!(
        page.contains("value=\"2026-13-40\""),
        "what was typed is kept"
    );

    // A developer sees what they did, whatever actor they ask for.
    for path in [
        "/dashboard/audit".to_owned(),
        format!("/dashboard/audit?actor={}", admin.user_id),
        "/dashboard/audit?actor=cli".to_owned(),
    ] {
        let page = dev.ok_page(&path).await;
        assert!(!page.contains("id=\"actor\""), "no actor filter offered");
        assert!(!page.contains("test.bulk"), "{path}");
        assert!(!page.contains(&admin_key), "{path}");
        assert!(!page.contains("root@example.com"), "{path}");
        assert!(
            page.contains(&format!("href=\"/dashboard/keys/{dev_key}\"")),
            "{path}"
        );
        assert!(
            page.contains(&format!("href=\"/dashboard/apps/{dev_app}\"")),
            "{path}"
        );
    }
    let page = dev.ok_page("/dashboard/audit?action=api_key.").await;
    assert_eq!(rows(&page), 2, "the developer's creation and revocation");
    let page = admin.ok_page("/dashboard/audit").await;
    assert!(page.contains("id=\"actor\""));
}

#[actix_web::test]
async fn administrators_manage_users_and_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let user_count = || -> i64 {
        let mut conn = app.conn();
        users::table.count().get_result(&mut conn).expect("count")
    };

    // Developers may not.
    assert_page_error(dev.get("/dashboard/users").await, 403, "forbidden").await;
    assert_page_error(
        dev.post(
            "/dashboard/users",
            &[("email", "x@example.com"), ("password", PASSWORD)],
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_page_error(
        dev.post(&format!("/dashboard/users/{}/make-admin", dev.user_id), &[])
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(user_count(), 2);

    let page = admin.ok_page("/dashboard/users").await;
    let mut listed = attr_values(&page, "data-user-id");
    listed.sort();
    let mut expected = vec![admin.user_id.clone(), dev.user_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(page.contains("root@example.com <span class=\"muted\">(you)</span>"));
    assert!(!page.contains(&format!("/dashboard/users/{}/disable", admin.user_id)));
    assert!(page.contains(&format!("/dashboard/users/{}/disable", dev.user_id)));

    // Refusals: messages on the fields, the email kept, nobody created.
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "not an email"), ("password", "short")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "email-error").as_deref(),
        Some("Write a valid email address.")
    );
    assert_eq!(
        text_of(&page, "password-error").as_deref(),
        Some("Use 12 to 1024 characters.")
    );
    assert!(page.contains("value=\"not an email\""));
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "new@example.com"), ("password", "elevenchars")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&res.text().await.expect("body"), "password-error").is_some());
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", " DEV@Example.com "), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        text_of(&res.text().await.expect("body"), "email-error").as_deref(),
        Some("A user with this email exists.")
    );
    assert_eq!(user_count(), 2);

    // Created: an administrator when asked, who can sign in at once.
    let res = admin
        .post(
            "/dashboard/users",
            &[
                ("email", "Second@Example.com"),
                ("password", "twelve chars"),
                ("is_admin", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/users?notice=user_created");
    assert!(
        admin
            .ok_page(&location(&res))
            .await
            .contains("The user was created.")
    );
    let second = client();
    let token = app.login_csrf(&second).await;
    let res = second
        .post(app.url("/login"))
        .form(&[
            ("email", "second@example.com"),
            ("password", "twelve chars"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    let res = second
        .get(app.url("/dashboard/users"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200, "the new user is an administrator");
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "third@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    {
        let mut conn = app.conn();
        let third_admin: bool = users::table
            .filter(users::email.eq("third@example.com"))
            .select(users::is_admin)
            .first(&mut conn)
            .expect("third");
        assert!(!third_admin, "no is_admin: a developer");
    }

    // Promote and demote: seen by the user's very next request.
    let change = |what: &str| format!("/dashboard/users/{}/{what}", dev.user_id);
    let res = admin.post(&change("make-admin"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/users?notice=user_changed");
    assert_eq!(dev.page("/dashboard/users").await.0, 200);
    let res = admin.post(&change("remove-admin"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_page_error(dev.get("/dashboard/users").await, 403, "forbidden").await;

    // Disabling ends the user's sessions at once and keeps them out.
    let res = admin.post(&change("disable"), &[]).await;
    assert_eq!(res.status(), 303);
    let res = dev.get("/dashboard/apps").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        return_to(&location(&res)).as_deref(),
        Some("/dashboard/apps")
    );
    {
        let mut conn = app.conn();
        let left: i64 = sessions::table
            .filter(sessions::user_id.eq(&dev.user_id))
            .count()
            .get_result(&mut conn)
            .expect("count");
        assert_eq!(left, 0);
    }
    let page = admin.ok_page("/dashboard/users").await;
    let row_at = page
        .find(&format!("data-user-id=\"{}\"", dev.user_id))
        .expect("row");
    let row = &page[row_at..row_at + page[row_at..].find("</tr>").expect("row end")];
    assert!(row.contains(">disabled<"), "{row}");
    assert!(row.contains(&format!("/dashboard/users/{}/enable", dev.user_id)));
    let again = client();
    let token = app.login_csrf(&again).await;
    let res = again
        .post(app.url("/login"))
        .form(&[
            ("email", "dev@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401, "a disabled user cannot sign in");
    let res = admin.post(&change("enable"), &[]).await;
    assert_eq!(res.status(), 303);
    let back = browser_of(&app, "dev@example.com", dev.user_id.clone()).await;
    back.ok_page("/dashboard/apps").await;

    // An administrator cannot disable or demote themself.
    for what in ["disable", "remove-admin"] {
        assert_page_error(
            admin
                .post(&format!("/dashboard/users/{}/{what}", admin.user_id), &[])
                .await,
            409,
            "cannot_change_self",
        )
        .await;
    }
    assert_eq!(
        admin.page("/dashboard/users").await.0,
        200,
        "still an administrator"
    );
    assert_page_error(
        admin
            .post(&format!("/dashboard/users/{}/promote", dev.user_id), &[])
            .await,
        404,
        "not_found",
    )
    .await;
    assert_page_error(
        admin.post("/dashboard/users/usr_nope/disable", &[]).await,
        404,
        "not_found",
    )
    .await;

    let page = admin
        .ok_page(&format!(
            "/dashboard/audit?action=user.&actor={}",
            admin.user_id
        ))
        .await;
    for action in [
        "user.create",
        "user.make_admin",
        "user.remove_admin",
        "user.disable",
        "user.enable",
    ] {
        assert!(
            page.contains(&format!("<code>{action}</code>")),
            "{action}: {page}"
        );
    }
    let disables = admin.ok_page("/dashboard/audit?action=user.disable").await;
    assert_eq!(rows(&disables), 1, "refused changes are not events");
    assert!(disables.contains("dev@example.com"));
}

#[actix_web::test]
async fn a_bad_page_number_does_not_drop_the_audit_filters() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    admin.create_key("One", "read").await;
    let filtered = admin
        .ok_page("/dashboard/audit?action=api_key.create")
        .await;
    assert_eq!(rows(&filtered), 1);
    for page in ["abc", "-1", "2x"] {
        let (status, body) = admin
            .page(&format!(
                "/dashboard/audit?action=api_key.create&page={page}"
            ))
            .await;
        if status == 200 {
            assert!(
                body.contains("value=\"api_key.create\""),
                "page={page}: the action filter is kept"
            );
            assert!(
                !body.contains("<code>user.login</code>")
                    && !body.contains("<code>user.create</code>"),
                "page={page}: only api_key.create events are shown, not the whole log"
            );
        } else {
            assert_eq!(status, 400, "page={page}: refused rather than unfiltered");
        }
    }
}

#[actix_web::test]
async fn the_audit_action_filter_is_case_sensitive_on_every_backend() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    admin.create_key("One", "read").await;
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=api_key.").await),
        1
    );
    assert_eq!(
        rows(
            &admin
                .ok_page("/dashboard/audit?action=API_KEY.CREATE")
                .await
        ),
        0,
        "an exact action is case-sensitive"
    );
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=API_KEY.").await),
        0,
        "so is a prefix, on SQLite as on PostgreSQL"
    );
}

#[actix_web::test]
async fn a_developer_cannot_let_an_app_ask_for_the_admin_scope() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let form = dev.ok_page("/dashboard/apps/new").await;
    assert!(
        !form.contains("id=\"scope-admin\""),
        "not offered to developers"
    );
    let res = dev
        .post(
            "/dashboard/apps",
            &[
                ("name", "Sneaky"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("scopes", "read"),
                ("scopes", "admin"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "scopes-error").as_deref(),
        Some("Only administrators may let an app ask for the admin scope.")
    );
    assert_eq!(count_clients(&app), 0, "nothing saved");

    let admin = sign_in_as(&app, "root@example.com", true).await;
    let form = admin.ok_page("/dashboard/apps/new").await;
    assert!(
        form.contains("id=\"scope-admin\""),
        "offered to administrators"
    );
}
