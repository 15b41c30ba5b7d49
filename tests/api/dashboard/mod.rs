//! The dashboard under `/dashboard`, driven through HTTP like a browser (cookie jar, no redirects
//! followed), one file per page: who reaches it (access), apps, API keys, usage, signing keys, the
//! audit log and users. The browser itself ([`Browser`](crate::helpers::Browser)) and the HTML
//! readers are in `helpers`; what only these pages need is here.

mod access;
mod apps;
mod audit;
mod keys;
mod signing_keys;
mod usage;
mod users;

use diesel::prelude::*;
use tessera::db::schema::oauth_clients;

use crate::helpers::{Credential, TestApp, check, client};

/// The `return_to` of a redirect to the sign-in page.
fn return_to(location: &str) -> Option<String> {
    let url = url::Url::parse(&format!("http://x{location}")).expect("a local URL");
    assert_eq!(url.path(), "/login", "{location}");
    url.query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
}

/// How many rows a table body of the page has.
fn rows(page: &str) -> usize {
    page.matches("<tr><td>").count()
}

/// Forward-auth of the API key `key` (in `X-API-Key`).
async fn check_key(app: &TestApp, key: &str) -> reqwest::Response {
    check(&app.address, Credential::ApiKey(key)).await
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
