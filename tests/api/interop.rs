//! Interop: the `oauth2` crate, a client none of us wrote, against the running server.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse as _, TokenUrl,
};

use crate::authorize::{PASSWORD, REDIRECT, sign_in_and_consent};
use crate::helpers::{client, spawn_app};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[actix_web::test]
async fn the_oauth2_crate_runs_code_pkce_refresh_and_client_credentials() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, secret) = app.create_client(
        &["authorization_code", "refresh_token", "client_credentials"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        false,
    );
    let oauth = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.expect("secret")))
        .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).expect("auth url"))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = sign_in_and_consent(&app, &client(), url.as_str()).await;
    assert_eq!(&back["state"], csrf.secret());
    let token = oauth
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange through oauth2");
    assert!(!token.access_token().secret().is_empty());
    let refresh = token.refresh_token().expect("refresh token").clone();

    let rotated = oauth
        .exchange_refresh_token(&refresh)
        .request_async(&http())
        .await
        .expect("refresh through oauth2");
    assert_ne!(
        rotated.refresh_token().expect("rotated").secret(),
        refresh.secret()
    );

    let machine = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("write".into()))
        .request_async(&http())
        .await
        .expect("client_credentials through oauth2");
    assert_eq!(
        machine
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
        Some(vec!["write".to_owned()])
    );
}
