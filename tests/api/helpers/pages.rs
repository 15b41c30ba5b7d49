//! The browser's side of the pages: reading HTML (fields, text by id, attributes, entities), the
//! sign-in form, and [`Browser`], a signed-in cookie jar that posts the dashboard's forms.

use super::{TestApp, client};

/// The password of the users [`sign_in_as`] creates.
pub const PASSWORD: &str = "correct horse battery";

/// `s` with its HTML character references decoded: the named ones askama and the pages write
/// (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;`) and any numeric one (`&#39;`, `&#x27;`). Each `&` is
/// read once, so `&amp;lt;` is `&lt;`; an `&` that starts no reference is kept.
pub fn unescape(s: &str) -> String {
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

/// The value of `<input type="hidden" name="NAME" value="…">` in a page, as written (not decoded).
pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}

/// Every `<input type="hidden" name=… value=…>` of a page, in order, decoded: the form a browser
/// would post.
pub fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + 27..];
        let name_end = rest.find('"').expect("name end");
        let name = unescape(&rest[..name_end]);
        let v = rest.find("value=\"").expect("value") + 7;
        let v_end = rest[v..].find('"').expect("value end") + v;
        out.push((name, unescape(&rest[v..v_end])));
        rest = &rest[v_end..];
    }
    out
}

/// The text inside the element with `id="ID"` (up to the next tag), decoded.
pub fn text_of(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = page.find(&marker)? + marker.len();
    let start = page[at..].find('>')? + at + 1;
    let end = page[start..].find('<')? + start;
    Some(unescape(page[start..end].trim()))
}

/// Every value of `attr="…"` in a page, in order, decoded.
pub fn attr_values(page: &str, attr: &str) -> Vec<String> {
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
pub fn link(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\"");
    let at = page.find(&marker)?;
    let tag_start = page[..at].rfind("<a ")?;
    attr_values(&page[tag_start..at], "href").into_iter().next()
}

/// The `Location` of a redirect.
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

impl TestApp {
    /// The body of `GET path` by `client`, whatever the status (a page, a stylesheet).
    pub async fn fetch_text(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("body")
    }

    /// The CSRF token of the sign-in form (and the cookie it is bound to, now in the client's jar).
    pub async fn login_csrf(&self, client: &reqwest::Client) -> String {
        let page = self.fetch_text(client, "/login").await;
        hidden_field(&page, "csrf_token").expect("the login form has a csrf_token")
    }

    /// The sign-in form of `client`: a fresh CSRF token from `GET /login`, then a `POST /login` of
    /// `fields` with it, not sent yet (for headers to be added).
    pub async fn login_request(
        &self,
        client: &reqwest::Client,
        fields: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let token = self.login_csrf(client).await;
        let mut form = fields.to_vec();
        form.push(("csrf_token", &token));
        client.post(self.url("/login")).form(&form)
    }

    /// A sign-in attempt of `client` with `email` and `password`: the answer.
    pub async fn log_in(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.login_request(client, &[("email", email), ("password", password)])
            .await
            .send()
            .await
            .expect("sign-in sent")
    }

    /// Signs `client` in; panics unless the server answers 303.
    pub async fn sign_in(&self, client: &reqwest::Client, email: &str, password: &str) {
        let res = self.log_in(client, email, password).await;
        assert_eq!(res.status(), 303, "sign-in of {email} should succeed");
    }
}

/// A signed-in browser: its cookie jar, the CSRF token of its forms and the user behind it.
pub struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    csrf: String,
    pub user_id: String,
}

/// Creates a user (password [`PASSWORD`]) and signs a fresh browser in as them.
pub async fn sign_in_as<'a>(app: &'a TestApp, email: &str, admin: bool) -> Browser<'a> {
    let user_id = app.create_user(email, PASSWORD, admin);
    browser_of(app, email, user_id).await
}

/// Signs a fresh browser in as an existing user (password [`PASSWORD`]).
pub async fn browser_of<'a>(app: &'a TestApp, email: &str, user_id: String) -> Browser<'a> {
    let client = client();
    app.sign_in(&client, email, PASSWORD).await;
    let page = app.fetch_text(&client, "/dashboard/apps").await;
    let csrf = hidden_field(&page, "csrf_token").expect("every dashboard page has a csrf_token");
    Browser {
        app,
        client,
        csrf,
        user_id,
    }
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
    pub async fn page(&self, path: &str) -> (u16, String) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    /// A page that must answer 200.
    pub async fn ok_page(&self, path: &str) -> String {
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
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
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

    /// The CSRF token of this browser's forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
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
