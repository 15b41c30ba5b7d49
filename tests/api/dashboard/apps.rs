//! `/dashboard/apps`: registering an app (its credentials shown once), refused registrations, redirect
//! URIs and secrets changed from the app's page, deleting an app, and the scopes an app may ask for.

use diesel::prelude::*;
use tessera::db::schema::{api_keys, oauth_clients};

use super::{check_key, client_credentials, count_clients, redirect_uris_of, rows};
use crate::helpers::{
    assert_page_error, attr_values, hidden_field, key_of_app, location, sign_in_as, spawn_app,
    text_of, unescape,
};

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

/// OpenID Connect logout registration from the dashboard: post-logout redirect URIs and a
/// back-channel logout URI are kept and shown on the app's page; a bad one is refused next to its
/// field with nothing saved.
#[actix_web::test]
async fn an_app_registers_its_logout_uris_from_the_dashboard() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let form = [
        ("name", "Web app"),
        ("client_type", "public"),
        ("redirect_uris", "http://127.0.0.1:3000/callback"),
        ("grant_types", "authorization_code"),
        ("scopes", "openid"),
        (
            "post_logout_redirect_uris",
            "http://127.0.0.1:3000/\nhttp://127.0.0.1:3000/bye",
        ),
        (
            "backchannel_logout_uri",
            "http://127.0.0.1:3000/backchannel",
        ),
    ];
    let res = dev.post("/dashboard/apps", &form).await;
    let created = dev.follow(res).await;
    let id = crate::helpers::text_of(&created, "client-id").expect("client id");
    let page = dev.ok_page(&format!("/dashboard/apps/{id}")).await;
    assert_eq!(
        crate::helpers::text_of(&page, "post-logout-redirect-uris").as_deref(),
        Some("http://127.0.0.1:3000/, http://127.0.0.1:3000/bye"),
        "{page}"
    );
    assert_eq!(
        crate::helpers::text_of(&page, "backchannel-logout-uri").as_deref(),
        Some("http://127.0.0.1:3000/backchannel")
    );

    let mut bad = form.to_vec();
    bad.retain(|(k, _)| *k != "backchannel_logout_uri");
    bad.push(("backchannel_logout_uri", "http://apps.example/backchannel"));
    let res = dev.post("/dashboard/apps", &bad).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("page");
    assert!(
        page.contains("id=\"backchannel_logout_uri-error\""),
        "{page}"
    );
    assert!(
        page.contains("value=\"http://apps.example/backchannel\""),
        "what was typed stays: {page}"
    );
    let apps = dev.ok_page("/dashboard/apps").await;
    assert_eq!(apps.matches("data-app-id=").count(), 1, "nothing saved");
}
