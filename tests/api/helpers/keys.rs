//! API keys made as the CLI makes them (through `tessera::apikeys`, beside the app's pool).

use tessera::apikeys::{self, KeyInput};
use tessera::audit::{Actor, Origin};
use tessera::config::{SecretBytes, Settings};

use super::{TEST_PEPPER, TestApp};

/// Creates the key `input` under `settings` (its key types and limits), done by `actor`: the key's
/// id and the key, or the error code when creation refuses it.
pub fn create_key_as(
    app: &TestApp,
    settings: &Settings,
    input: &KeyInput,
    actor: Actor,
) -> Result<(String, String), String> {
    let hasher = tessera::crypto::Hasher::new(&SecretBytes::new(TEST_PEPPER.to_vec()));
    apikeys::create_key(
        &mut app.conn(),
        settings,
        &hasher,
        input,
        actor,
        Origin::default(),
    )
    .map(|(k, s)| (k.id.into_string(), s.0))
    .map_err(|e| e.code().to_owned())
}

/// [`create_key_as`] by the system (as the CLI does).
pub fn create_key(
    app: &TestApp,
    settings: &Settings,
    input: KeyInput,
) -> Result<(String, String), String> {
    create_key_as(app, settings, &input, Actor::System)
}

/// A key of `key_type` (`sk`, `rk`, `pk`) in `env` with `scopes`: its id and the key.
pub fn key(app: &TestApp, key_type: &str, env: &str, scopes: &[&str]) -> (String, String) {
    create_key(
        app,
        &Settings::default(),
        KeyInput {
            name: "Test key".into(),
            key_type: key_type.into(),
            env: env.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
    .expect("key created")
}

/// A live `rk` key with `read` owned by the app `client_id` (the dashboard makes keys for users
/// only): the key.
pub fn key_of_app(app: &TestApp, client_id: &str, name: &str) -> String {
    create_key(
        app,
        &Settings::default(),
        KeyInput {
            name: name.into(),
            key_type: "rk".into(),
            env: "live".into(),
            scopes: vec!["read".into()],
            owner_client_id: Some(client_id.to_owned()),
            ..Default::default()
        },
    )
    .expect("key")
    .1
}
