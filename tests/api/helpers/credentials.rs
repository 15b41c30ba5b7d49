//! Presenting a credential: forward-auth ([`check`]) and RFC 7662 introspection
//! ([`TestApp::introspect`]), each written once.

use super::TestApp;

/// How a caller presents itself.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// `Authorization: Basic` of a client id and secret (client_secret_basic).
    Basic(&'a str, &'a str),
    /// `Authorization: Bearer` of a token or an API key.
    Bearer(&'a str),
    /// `X-API-Key` of an API key.
    ApiKey(&'a str),
    /// A signed `client_assertion` (private_key_jwt, RFC 7523), sent in the form; a form POST only.
    Assertion(&'a str),
}

/// A bare string is a bearer credential.
impl<'a> From<&'a str> for Credential<'a> {
    fn from(token: &'a str) -> Self {
        Self::Bearer(token)
    }
}

impl<'a> From<&'a String> for Credential<'a> {
    fn from(token: &'a String) -> Self {
        Self::Bearer(token)
    }
}

/// A pair is a client id and its secret.
impl<'a> From<(&'a str, &'a str)> for Credential<'a> {
    fn from((id, secret): (&'a str, &'a str)) -> Self {
        Self::Basic(id, secret)
    }
}

impl<'a> From<(&'a String, &'a String)> for Credential<'a> {
    fn from((id, secret): (&'a String, &'a String)) -> Self {
        Self::Basic(id, secret)
    }
}

impl<'a> From<&'a (String, String)> for Credential<'a> {
    fn from((id, secret): &'a (String, String)) -> Self {
        Self::Basic(id, secret)
    }
}

impl Credential<'_> {
    /// `req` with this credential in its header.
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::Basic(id, secret) => req.basic_auth(id, Some(secret)),
            Self::Bearer(token) => req.bearer_auth(token),
            Self::ApiKey(key) => req.header("X-API-Key", key),
            Self::Assertion(_) => panic!("a client assertion goes in a form, not a header"),
        }
    }

    /// The form fields this credential adds (a client assertion's), before `rest`.
    fn form<'f>(self, rest: &[(&'f str, &'f str)]) -> Vec<(&'f str, &'f str)>
    where
        Self: 'f,
    {
        let mut form = Vec::with_capacity(rest.len() + 2);
        form.extend_from_slice(rest);
        if let Self::Assertion(assertion) = self {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", assertion));
        }
        form
    }
}

/// Forward-auth as a proxy asks it: `GET {node}/v1/auth/check` with `credential`, from a client
/// without cookies. For a query or more headers, build on [`check_request`].
pub async fn check<'a>(node: &str, credential: impl Into<Credential<'a>>) -> reqwest::Response {
    check_request(node, credential)
        .send()
        .await
        .expect("forward-auth check sent")
}

/// The request [`check`] sends, for a caller to add a query or headers to.
pub fn check_request<'a>(
    node: &str,
    credential: impl Into<Credential<'a>>,
) -> reqwest::RequestBuilder {
    credential
        .into()
        .apply(super::client().get(format!("{node}/v1/auth/check")))
}

impl TestApp {
    /// `POST /oauth/introspect` of `token` by `caller`: the answer as it came.
    pub async fn introspection<'a>(
        &self,
        caller: impl Into<Credential<'a>>,
        token: &str,
    ) -> reqwest::Response {
        let caller = caller.into();
        let form = caller.form(&[("token", token)]);
        let req = self.client.post(self.url("/oauth/introspect")).form(&form);
        let req = match caller {
            Credential::Assertion(_) => req,
            other => other.apply(req),
        };
        req.send().await.expect("introspection request")
    }

    /// RFC 7662 introspection of `token` by `caller` (a client id and secret, or an API key): the
    /// answer, which must be 200 and not cached.
    pub async fn introspect<'a>(
        &self,
        caller: impl Into<Credential<'a>>,
        token: &str,
    ) -> serde_json::Value {
        let res = self.introspection(caller, token).await;
        assert_eq!(res.status(), 200, "introspection answers 200");
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.expect("json")
    }
}
