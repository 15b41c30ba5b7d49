//! `/dashboard/audit`: filters, pages, and developers seeing only their own events.

use std::time::Duration;

use tessera::audit::Actor;

use super::rows;
use crate::helpers::{link, sign_in_as, spawn_app, text_of};

#[actix_web::test]
async fn the_audit_log_filters_pages_and_shows_developers_only_their_own_events() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let (dev_key, _) = dev.create_key("Dev key", "read").await;
    let (admin_key, _) = admin.create_key("Admin key", "read").await;
    let res = dev
        .post(&format!("/dashboard/keys/{dev_key}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (dev_app, _) = dev
        .register_app(
            "Dev app",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;

    // 60 more events, a few milliseconds apart so that their order is certain.
    {
        let mut conn = app.conn();
        for n in 0..60 {
            let target = format!("t{n:02}");
            tessera::audit::record(
                &mut conn,
                tessera::audit::Event::new(Actor::Cli, "test.bulk").target("thing", &target),
            )
            .expect("event");
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    // Whole action; newest first; 50 per page with a link to the next.
    let page = admin.ok_page("/dashboard/audit?action=test.bulk").await;
    assert_eq!(rows(&page), 50);
    let first = page.find("thing t59").expect("the newest");
    let last = page.find("thing t10").expect("the 50th newest");
    assert!(first < last, "newest first");
    assert!(!page.contains("thing t09"));
    assert!(link(&page, "prev").is_none());
    let next = link(&page, "next").expect("a link to older events");
    assert_eq!(next, "/dashboard/audit?action=test.bulk&page=2");
    let page = admin.ok_page(&next).await;
    assert_eq!(rows(&page), 10);
    assert!(page.contains("thing t09") && page.contains("thing t00"));
    assert!(page.find("thing t09") < page.find("thing t00"));
    assert!(link(&page, "next").is_none());
    assert_eq!(
        link(&page, "prev").as_deref(),
        Some("/dashboard/audit?action=test.bulk&page=1")
    );
    assert!(page.contains("value=\"test.bulk\""), "the filter is kept");

    // A prefix ending in '.'; without the '.' the action must match exactly.
    let page = admin.ok_page("/dashboard/audit?action=api_key.").await;
    assert_eq!(rows(&page), 3, "two creations and a revocation: {page}");
    assert!(
        page.contains("<code>api_key.revoke</code>")
            && page.contains("<code>api_key.create</code>")
    );
    assert!(!page.contains("<code>client.create</code>"));
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=api_key").await),
        0
    );

    // Actor: an id or a type.
    let page = admin
        .ok_page(&format!("/dashboard/audit?actor={}", dev.user_id))
        .await;
    assert!(page.contains(&format!("href=\"/dashboard/keys/{dev_key}\"")));
    assert!(page.contains(&format!("href=\"/dashboard/apps/{dev_app}\"")));
    assert!(!page.contains(&format!("href=\"/dashboard/keys/{admin_key}\"")));
    assert!(!page.contains("test.bulk"));
    assert_eq!(
        rows(
            &admin
                .ok_page("/dashboard/audit?actor=cli&action=test.")
                .await
        ),
        50
    );

    // Dates: today holds everything; yesterday nothing; a bad date is a field message.
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("a day before");
    let page = admin
        .ok_page(&format!(
            "/dashboard/audit?action=api_key.&from={today}&to={today}"
        ))
        .await;
    assert_eq!(rows(&page), 3);
    let page = admin
        .ok_page(&format!("/dashboard/audit?to={yesterday}"))
        .await;
    assert_eq!(rows(&page), 0);
    assert!(page.contains("No events match."));
    let page = admin
        .ok_page("/dashboard/audit?from=2026-13-40&to=tomorrow")
        .await;
    assert_eq!(
        text_of(&page, "from-error").as_deref(),
        Some("Write a date as YYYY-MM-DD.")
    );
    assert_eq!(
        text_of(&page, "to-error").as_deref(),
        Some("Write a date as YYYY-MM-DD.")
    );
    assert_eq!(rows(&page), 0, "no events under a bad filter");
    assert!(
        page.contains("value=\"2026-13-40\""),
        "what was typed is kept"
    );

    // A developer sees what they did, whatever actor they ask for.
    for path in [
        "/dashboard/audit".to_owned(),
        format!("/dashboard/audit?actor={}", admin.user_id),
        "/dashboard/audit?actor=cli".to_owned(),
    ] {
        let page = dev.ok_page(&path).await;
        assert!(!page.contains("id=\"actor\""), "no actor filter offered");
        assert!(!page.contains("test.bulk"), "{path}");
        assert!(!page.contains(&admin_key), "{path}");
        assert!(!page.contains("root@example.com"), "{path}");
        assert!(
            page.contains(&format!("href=\"/dashboard/keys/{dev_key}\"")),
            "{path}"
        );
        assert!(
            page.contains(&format!("href=\"/dashboard/apps/{dev_app}\"")),
            "{path}"
        );
    }
    let page = dev.ok_page("/dashboard/audit?action=api_key.").await;
    assert_eq!(rows(&page), 2, "the developer's creation and revocation");
    let page = admin.ok_page("/dashboard/audit").await;
    assert!(page.contains("id=\"actor\""));
}

#[actix_web::test]
async fn a_bad_page_number_does_not_drop_the_audit_filters() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    admin.create_key("One", "read").await;
    let filtered = admin
        .ok_page("/dashboard/audit?action=api_key.create")
        .await;
    assert_eq!(rows(&filtered), 1);
    for page in ["abc", "-1", "2x"] {
        let (status, body) = admin
            .page(&format!(
                "/dashboard/audit?action=api_key.create&page={page}"
            ))
            .await;
        if status == 200 {
            assert!(
                body.contains("value=\"api_key.create\""),
                "page={page}: the action filter is kept"
            );
            assert!(
                !body.contains("<code>user.login</code>")
                    && !body.contains("<code>user.create</code>"),
                "page={page}: only api_key.create events are shown, not the whole log"
            );
        } else {
            assert_eq!(status, 400, "page={page}: refused rather than unfiltered");
        }
    }
}

#[actix_web::test]
async fn the_audit_action_filter_is_case_sensitive_on_every_backend() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    admin.create_key("One", "read").await;
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=api_key.").await),
        1
    );
    assert_eq!(
        rows(
            &admin
                .ok_page("/dashboard/audit?action=API_KEY.CREATE")
                .await
        ),
        0,
        "an exact action is case-sensitive"
    );
    assert_eq!(
        rows(&admin.ok_page("/dashboard/audit?action=API_KEY.").await),
        0,
        "so is a prefix, on SQLite as on PostgreSQL"
    );
}
