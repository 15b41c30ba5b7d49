//! `/dashboard/keys`: creating API keys (checks, shown once, listed without the secret), the admin
//! scope, revocation and rotation with a grace period.

use diesel::prelude::*;
use tessera::db::schema::api_keys;

use super::{check_key, rows};
use crate::helpers::{
    TestApp, assert_error, assert_page_error, client, location, sign_in_as, spawn_app, text_of,
};

/// When the key `id` expires (its row).
fn expires_at(app: &TestApp, id: &str) -> Option<i64> {
    api_keys::table
        .find(id)
        .select(api_keys::expires_at)
        .first(&mut app.conn())
        .expect("row")
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
    let expires: Option<i64> = expires_at(&app, &id);
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
    let old_expires: Option<i64> = expires_at(&app, &old_id);
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
