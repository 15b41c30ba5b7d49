//! `/dashboard/usage`: the flushed counts per key, per app and in total.

use std::time::Duration;

use super::{check_key, client_credentials};
use crate::helpers::{
    Browser, assert_page_error, client, eventually, key_of_app, sign_in_as, spawn_app_with, text_of,
};

/// The usage page at `path` once its `total-allowed` and `total-denied` are as expected (flushes
/// are batched).
async fn wait_for_usage(b: &Browser<'_>, path: &str, allowed: &str, denied: &str) -> String {
    eventually(
        Duration::from_secs(10),
        &format!("{path} shows {allowed}/{denied}"),
        || async {
            let page = b.ok_page(path).await;
            let totals = (
                text_of(&page, "total-allowed").expect("total-allowed"),
                text_of(&page, "total-denied").expect("total-denied"),
            );
            if totals == (allowed.to_owned(), denied.to_owned()) {
                Ok(page)
            } else {
                Err(format!("still {totals:?}"))
            }
        },
    )
    .await
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
