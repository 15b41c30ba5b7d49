//! Two nodes on one database: what one node revokes or rotates, the other follows. On PostgreSQL it is
//! told at once (`LISTEN`/`NOTIFY`) and must follow within 1 s (issue 12); SQLite is single-node and
//! has no channel, so there the other node follows by its cache TTL and key reload (the fallback).

use std::future::Future;
use std::time::{Duration, Instant};

use tessera::audit::{Actor, Origin};
use tessera::config::{SecretBytes, Settings};

use crate::helpers::{
    TestApp, eventually, key, postgres_only, service_token, spawn_app_with, spawn_second_node,
};

/// The cache TTL of both nodes: long enough that the TTL alone (an entry is re-read after half of
/// it) cannot explain a refusal within the PostgreSQL bound.
const TTL: Duration = Duration::from_secs(5);

fn with_ttl(s: &mut Settings) {
    s.api_key_cache_ttl = TTL;
}

/// Two nodes on one fresh database, both caching for [`TTL`]; `adjust` applies to both.
async fn two_nodes(adjust: fn(&mut Settings)) -> (TestApp, String) {
    let a = spawn_app_with(|s| {
        with_ttl(s);
        adjust(s);
    })
    .await;
    let b = spawn_second_node(&a, |s| {
        with_ttl(s);
        adjust(s);
    })
    .await;
    (a, b)
}

/// How long the other node may take: 1 s on PostgreSQL (notified); on SQLite, the cache's stale
/// limit (the TTL fallback) with a margin for a busy machine.
fn bound(app: &TestApp) -> Duration {
    if app.db.is_postgres() {
        Duration::from_secs(1)
    } else {
        TTL + Duration::from_secs(2)
    }
}

/// [`eventually`] `probe` holds, within `bound`: the time it took.
async fn within<F, Fut>(bound: Duration, what: &str, probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    eventually(bound, what, probe).await;
    start.elapsed()
}

/// The status of `/v1/auth/check` on `node` with `credential` as a bearer token.
async fn check(node: &str, credential: &str) -> u16 {
    crate::helpers::check(node, credential)
        .await
        .status()
        .as_u16()
}

/// Revokes the key `id` through `app`'s management API (an admin key), as an operator would.
async fn revoke_key(app: &TestApp, id: &str) {
    let (_, admin) = key(app, "sk", "live", &[]);
    let res = app
        .client
        .post(app.url(&format!("/v1/keys/{id}/revoke")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200, "revocation on node 1");
}

/// Both nodes accept `credential` (and cache it); it is revoked by `revoke` on node 1, which refuses
/// it at once; node 2 refuses it within [`bound`]. The time node 2 took.
async fn revoked_on_one_refused_on_the_other(
    a: &TestApp,
    b: &str,
    credential: &str,
    revoke: impl Future<Output = ()>,
) -> Duration {
    for node in [a.address.as_str(), b, a.address.as_str(), b] {
        assert_eq!(check(node, credential).await, 200, "accepted on {node}");
    }
    revoke.await;
    assert_eq!(check(&a.address, credential).await, 401, "node 1 at once");
    let took = within(
        bound(a),
        "node 2 refuses the revoked credential",
        || async { check(b, credential).await == 401 },
    )
    .await;
    eprintln!("node 2 refused the revoked credential after {took:?}");
    took
}

#[actix_web::test]
async fn a_key_revoked_on_one_node_is_refused_on_the_other_within_a_second() {
    let (a, b) = two_nodes(|_| {}).await;
    let (id, secret) = key(&a, "rk", "live", &["read"]);
    revoked_on_one_refused_on_the_other(&a, &b, &secret, revoke_key(&a, &id)).await;
}

#[actix_web::test]
async fn an_access_token_revoked_on_one_node_is_refused_at_forward_auth_on_the_other_within_a_second()
 {
    let (a, b) = two_nodes(|_| {}).await;
    let (id, secret) = a.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("a confidential client");
    let token = service_token(&a, &id, &secret).await;
    let revoke = async {
        assert_eq!(a.revoke(&id, &secret, &token).await, 200);
    };
    revoked_on_one_refused_on_the_other(&a, &b, &token, revoke).await;
}

#[actix_web::test]
async fn after_postgresql_cuts_the_listener_revocations_still_reach_the_other_node() {
    if !postgres_only(
        "nodes::after_postgresql_cuts_the_listener_revocations_still_reach_the_other_node",
        "SQLite has no listener and no connection to cut",
    ) {
        return;
    }
    let (a, b) = two_nodes(|_| {}).await;
    let (id, secret) = key(&a, "rk", "live", &["read"]);
    for node in [a.address.as_str(), b.as_str()] {
        assert_eq!(check(node, &secret).await, 200);
    }
    // A restart or failover of PostgreSQL: every connection of both nodes is cut, the listeners' too.
    a.db.cut_connections();
    for node in [a.address.clone(), b.clone()] {
        within(Duration::from_secs(10), "the node serves again", || async {
            crate::helpers::client()
                .get(format!("{node}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    revoked_on_one_refused_on_the_other(&a, &b, &secret, revoke_key(&a, &id)).await;
}

/// The `kid`s in `node`'s JWKS.
async fn published_kids(node: &str) -> Vec<String> {
    let jwks: serde_json::Value = crate::helpers::client()
        .get(format!("{node}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn a_signing_key_rotated_on_one_node_is_published_and_trusted_by_the_other() {
    // On SQLite nothing tells the nodes: they follow at their periodic reload, made short here.
    let (a, b) = two_nodes(|s| {
        if crate::helpers::postgres_admin_url().is_none() {
            s.key_reload_interval = Duration::from_secs(1);
        }
    })
    .await;
    let (id, secret) = a.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("a confidential client");
    let before = published_kids(&b).await;
    assert_eq!(
        before.len(),
        3,
        "one key of each algorithm before the rotation: {before:?}"
    );

    // `tessera signing-key rotate --now`, against the database.
    let kid = {
        let mut conn = a.conn();
        let outcome = tessera::jwt::rotate(
            &mut conn,
            &SecretBytes::new(crate::helpers::TEST_MASTER_KEY.to_vec()),
            tessera::jwt::SigningAlg::of(&Settings::default()),
            0,
            3600,
            Actor::Cli,
            Origin::default(),
        )
        .expect("rotated");
        outcome.kid().to_owned()
    };
    let bound = bound(&a);
    let took = within(bound, "node 2 publishes the new key", || async {
        published_kids(&b).await.contains(&kid)
    })
    .await;
    eprintln!("node 2 published the new signing key after {took:?}");

    // Node 1 signs with the new key; node 2 verifies what it signed.
    let token = eventually(bound, "node 1 signs with the new key", || async {
        let token = service_token(&a, &id, &secret).await;
        let header = jsonwebtoken::decode_header(&token).expect("a JWT");
        (header.kid.as_deref() == Some(kid.as_str())).then_some(token)
    })
    .await;
    assert_eq!(check(&b, &token).await, 200, "node 2 trusts the new key");
}

#[actix_web::test]
async fn on_postgresql_nodes_starting_together_on_a_fresh_database_all_start() {
    if !postgres_only(
        "nodes::on_postgresql_nodes_starting_together_on_a_fresh_database_all_start",
        "several nodes need PostgreSQL (README, \"Two or more nodes\"); SQLite is one node's file",
    ) {
        return;
    }
    let db = crate::helpers::TestDb::fresh();
    let start = || async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        tessera::startup::Application::build_with_listener(
            crate::helpers::test_settings(&db),
            listener,
        )
        .await
    };
    // Both create the default API and the first signing key at the same moment: the one that loses
    // the race finds the other's rows instead of failing to start.
    let (a, b, c) = tokio::join!(start(), start(), start());
    for node in [a, b, c] {
        node.expect("every node starts");
    }
    // One first key per algorithm, whoever made it: the losers' inserts conflicted.
    use diesel::prelude::*;
    let mut conn = diesel::PgConnection::establish(&db.url_string()).expect("connect");
    let algs: Vec<String> = tessera::db::schema::signing_keys::table
        .select(tessera::db::schema::signing_keys::algorithm)
        .order(tessera::db::schema::signing_keys::algorithm.asc())
        .load(&mut conn)
        .expect("keys");
    assert_eq!(
        algs,
        ["ES256", "EdDSA", "RS256"],
        "one key of each algorithm"
    );
}
