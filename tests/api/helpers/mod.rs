//! The test helpers, in one place. Here: `spawn_app()`, the real app on port 0 with a fresh database
//! (temp SQLite, or a new PostgreSQL database), [`TestApp`] and the assertions on error shapes.
//! Beside it: [`eventually`] (poll), [`check`] and [`TestApp::introspect`] (credentials), the
//! page helpers and [`Browser`] (pages), API keys (keys), and the services a test may need
//! (backends).

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use tessera::config::{DatabaseUrl, SecretBytes, Settings};
use tessera::startup::Application;

mod backends;
mod credentials;
mod keys;
mod pages;
mod poll;

pub use backends::{postgres_only, redis};
pub use credentials::{Credential, check, check_request};
pub use keys::{create_key, create_key_as, key, key_of_app};
pub use pages::{
    Browser, PASSWORD, attr_values, browser_of, hidden_field, hidden_inputs, link, location,
    sign_in_as, text_of, unescape,
};
pub use poll::eventually;

/// The PostgreSQL server to make test databases on, when the suite runs against PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A database that exists only for one test.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    /// A new empty database on the backend the suite runs against.
    pub fn fresh() -> Self {
        match postgres_admin_url() {
            Some(admin_url) => {
                let name = format!(
                    "tessera_test_{}",
                    tessera::crypto::random_id("x", 16)[2..].to_ascii_lowercase()
                );
                let mut admin = PgConnection::establish(&admin_url)
                    .expect("TESSERA_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let mut url =
                    url::Url::parse(&admin_url).expect("TESSERA_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                Self::Postgres {
                    admin_url,
                    name,
                    url: url.to_string(),
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("tessera.db");
                Self::Sqlite { _dir: dir, path }
            }
        }
    }

    pub fn url(&self) -> DatabaseUrl {
        match self {
            Self::Sqlite { path, .. } => DatabaseUrl::Sqlite(path.clone()),
            Self::Postgres { url, .. } => DatabaseUrl::Postgres(url.clone()),
        }
    }

    /// The URL as given in `TESSERA_DATABASE_URL`.
    pub fn url_string(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// Makes the database unreachable: the SQLite file moves away; the PostgreSQL database stops
    /// accepting connections and its open ones are cut.
    pub fn take_away(&self) {
        match self {
            Self::Sqlite { path, .. } => {
                std::fs::rename(path, path.with_extension("moved")).expect("move the database away")
            }
            Self::Postgres {
                admin_url, name, ..
            } => as_admin(
                admin_url,
                &format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
                ),
            ),
        }
    }

    /// Cuts every open connection to the PostgreSQL database (as a restart or failover would) and
    /// leaves it accepting new ones. Nothing outside the process can cut a connection to a SQLite
    /// file, so on SQLite this panics: a test of it runs on PostgreSQL only ([`postgres_only`]).
    pub fn cut_connections(&self) {
        match self {
            Self::Postgres {
                admin_url, name, ..
            } => as_admin(
                admin_url,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ),
            ),
            Self::Sqlite { .. } => {
                panic!("a SQLite file has no connections to cut: run this test with postgres_only")
            }
        }
    }

    /// Undoes [`TestDb::take_away`].
    pub fn bring_back(&self) {
        match self {
            Self::Sqlite { path, .. } => {
                std::fs::rename(path.with_extension("moved"), path).expect("move the database back")
            }
            Self::Postgres {
                admin_url, name, ..
            } => as_admin(
                admin_url,
                &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
            ),
        }
    }
}

/// Runs `sql` on the PostgreSQL server as the suite's administrator.
fn as_admin(admin_url: &str, sql: &str) {
    PgConnection::establish(admin_url)
        .expect("admin connection")
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Settings for a test app: port 0, the given database, fixed key material, quiet logs.
pub fn test_settings(db: &TestDb) -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().expect("static address"),
        database_url: db.url(),
        database_pool_size: 4,
        database_timeout: Duration::from_secs(2),
        secret_pepper: Some(SecretBytes::new(
            b"test-pepper-test-pepper-test-pepper!".to_vec(),
        )),
        master_key: Some(SecretBytes::new(TEST_MASTER_KEY.to_vec())),
        key_file: Some(std::env::temp_dir().join("tessera-test-never-written.key")),
        log_level: "warn".into(),
        workers: Some(1),
        // Tests make many token requests from one address; the limits are tested on their own.
        auth_rate_limit: 1_000_000,
        token_rate_limit: 1_000_000,
        ..Settings::default()
    }
}

pub struct TestApp {
    pub address: String,
    /// A client with its own cookie jar that does not follow redirects.
    pub client: reqwest::Client,
    pub db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`], with settings changed by `adjust` (after the issuer is set to the real port).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::fresh();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local address").port();
    let mut settings = test_settings(&db);
    settings.issuer = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("issuer URL");
    adjust(&mut settings);
    let listens = listens_for_invalidations(&settings);
    let app = Application::build_with_listener(settings, listener)
        .await
        .expect("the app starts");
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    let address = format!("http://127.0.0.1:{port}");
    if listens {
        invalidation_listener_up(&address).await;
    }
    TestApp {
        address,
        client: client(),
        db,
    }
}

/// True when the app will listen for invalidations (PostgreSQL) and `/metrics` can tell when it
/// does (on the main listener, without a token).
fn listens_for_invalidations(settings: &Settings) -> bool {
    matches!(
        settings.database_url,
        tessera::config::DatabaseUrl::Postgres(_)
    ) && settings.metrics_bind.is_none()
        && settings.metrics_token.is_none()
}

/// Waits (at most 30 s) until the node's invalidation listener is connected. Its first connection
/// drops whatever the node cached before it (messages sent meanwhile were missed), so a test that
/// counts cache hits must not race it.
async fn invalidation_listener_up(address: &str) {
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(30),
        &format!("the invalidation listener of {address} connects"),
        || async {
            match http.get(format!("{address}/metrics")).send().await {
                Ok(res) => res
                    .text()
                    .await
                    .is_ok_and(|t| t.lines().any(|l| l == "tessera_invalidation_listener_up 1")),
                Err(_) => false,
            }
        },
    )
    .await;
}

/// Another node on `app`'s database, with the same key material and issuer (as two replicas behind
/// one load balancer), settings changed by `adjust`; its address.
pub async fn spawn_second_node(app: &TestApp, adjust: impl FnOnce(&mut Settings)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut settings = test_settings(&app.db);
    settings.issuer = url::Url::parse(&app.address).expect("issuer");
    adjust(&mut settings);
    let listens = listens_for_invalidations(&settings);
    let node = Application::build_with_listener(settings, listener)
        .await
        .expect("second node");
    let address = format!("http://127.0.0.1:{}", node.port());
    actix_web::rt::spawn(node.run_until_stopped());
    if listens {
        invalidation_listener_up(&address).await;
    }
    address
}

/// The pepper every test app uses (so tests can hash like the server does).
pub const TEST_PEPPER: &[u8] = b"test-pepper-test-pepper-test-pepper!";
pub const TEST_MASTER_KEY: [u8; 32] = [42; 32];

/// A fresh browser-like client: cookie jar on, redirects off.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A connection of its own to the app's database, beside the app's pool (as the CLI would open).
    pub fn conn(&self) -> tessera::db::DbConn {
        tessera::db::connect_one(&self.db.url()).expect("a connection to the test database")
    }

    /// `POST /oauth/revoke` of `token` by the client `id` (client_secret_basic); the status.
    pub async fn revoke(&self, id: &str, secret: &str, token: &str) -> u16 {
        self.client
            .post(self.url("/oauth/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("revocation request")
            .status()
            .as_u16()
    }

    /// Creates a user through the same function the CLI uses.
    pub fn create_user(&self, email: &str, password: &str, admin: bool) -> String {
        let hash = tessera::accounts::password::hash(password).expect("hash");
        let mut conn = self.conn();
        let email = tessera::accounts::Email::parse(email).expect("valid email");
        tessera::accounts::create_user(
            &mut conn,
            &email,
            &hash,
            admin,
            tessera::audit::Actor::System,
            tessera::audit::Origin::default(),
        )
        .expect("user created")
        .id
        .into_string()
    }

    /// Sets the name on the profile of the user with `email`, through the library's own function.
    pub fn set_profile(&self, email: &str, name: &str) {
        let mut conn = self.conn();
        let user = tessera::accounts::lookup_user(&mut conn, email).expect("user");
        tessera::accounts::update_profile(
            &mut conn,
            &user.id,
            tessera::accounts::Profile {
                name: Some(name.into()),
                ..Default::default()
            },
            tessera::audit::Actor::System,
            tessera::audit::Origin::default(),
        )
        .expect("profile set");
    }

    /// Registers a client through the same function the CLI uses; returns its id and secret.
    pub fn create_client(
        &self,
        grants: &[&str],
        scopes: &[&str],
        redirect_uris: &[&str],
        public: bool,
    ) -> (String, Option<String>) {
        self.register_client(tessera::oauth::ClientInput {
            name: "Test app".into(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            grant_types: grants.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            public,
            ..Default::default()
        })
        .expect("client created")
    }

    /// Registers any client (as the CLI does); the error code when registration refuses it.
    pub fn register_client(
        &self,
        input: tessera::oauth::ClientInput,
    ) -> Result<(String, Option<String>), &'static str> {
        let hasher = tessera::crypto::Hasher::new(&SecretBytes::new(TEST_PEPPER.to_vec()));
        let mut conn = self.conn();
        tessera::oauth::create_client(
            &mut conn,
            &hasher,
            &SecretBytes::new(TEST_MASTER_KEY.to_vec()),
            &input,
            tessera::audit::Actor::System,
            tessera::audit::Origin::default(),
        )
        .map(|(client, _, secret)| (client.id.into_string(), secret.map(|s| s.0)))
        .map_err(|e| e.code())
    }

    /// Marks the client `id` a resource server of the default API (audience = the issuer), as
    /// `tessera client create --introspect` does: it may then introspect that API's tokens.
    pub fn allow_introspection(&self, id: &str) {
        use diesel::prelude::*;
        use tessera::db::schema::oauth_clients;
        let marked = diesel::update(oauth_clients::table.find(id))
            .set(oauth_clients::introspect_audiences.eq(&self.address))
            .execute(&mut self.conn())
            .expect("client marked");
        assert_eq!(marked, 1, "client {id} exists");
    }
}

/// The `X-Request-Id` of an answer (every answer has one).
pub fn request_id(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("X-Request-Id on every response")
}

/// Asserts the JSON error shape and returns the body.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let header_id = request_id(&res);
    let body: serde_json::Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert_eq!(
        body["request_id"],
        header_id.as_str(),
        "request_id matches the header"
    );
    body
}

/// An error answered as an HTML page (the browser's routes): `status`, `text/html`, the error code
/// in `data-error` and the `X-Request-Id` shown on the page, never a JSON body. Returns the page.
pub async fn assert_page_error(res: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let header_id = request_id(&res);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/html"),
        "{code}: an HTML page, not {content_type}"
    );
    let page = res.text().await.expect("body");
    assert!(
        page.contains(&format!("data-error=\"{code}\"")),
        "error code {code} in {page}"
    );
    assert!(
        page.contains(&format!("<code id=\"request-id\">{header_id}</code>")),
        "the request id {header_id} on the page: {page}"
    );
    page
}

/// Verifies `token` against the server's JWKS like a resource server would; returns header and claims.
pub async fn verify_with_jwks(
    app: &TestApp,
    token: &str,
) -> (jsonwebtoken::Header, serde_json::Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS is JSON");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    let kid = header.kid.clone().expect("kid in the header");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("usable JWK");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_audience(&[app.address.as_str()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("valid signature and claims");
    (header, data.claims)
}

/// A client_credentials access token for the client `id` (asserts the token endpoint says 200).
pub async fn service_token(app: &TestApp, id: &str, secret: &str) -> String {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
