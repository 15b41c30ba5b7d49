//! `/dashboard/users`: administrators manage users and cannot lock themselves out.

use diesel::prelude::*;
use tessera::db::schema::{sessions, users};

use super::{return_to, rows};
use crate::helpers::{
    PASSWORD, assert_page_error, attr_values, browser_of, client, location, sign_in_as, spawn_app,
    text_of,
};

#[actix_web::test]
async fn administrators_manage_users_and_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let user_count = || -> i64 {
        let mut conn = app.conn();
        users::table.count().get_result(&mut conn).expect("count")
    };

    // Developers may not.
    assert_page_error(dev.get("/dashboard/users").await, 403, "forbidden").await;
    assert_page_error(
        dev.post(
            "/dashboard/users",
            &[("email", "x@example.com"), ("password", PASSWORD)],
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_page_error(
        dev.post(&format!("/dashboard/users/{}/make-admin", dev.user_id), &[])
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(user_count(), 2);

    let page = admin.ok_page("/dashboard/users").await;
    let mut listed = attr_values(&page, "data-user-id");
    listed.sort();
    let mut expected = vec![admin.user_id.clone(), dev.user_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(page.contains("root@example.com <span class=\"muted\">(you)</span>"));
    assert!(!page.contains(&format!("/dashboard/users/{}/disable", admin.user_id)));
    assert!(page.contains(&format!("/dashboard/users/{}/disable", dev.user_id)));

    // Refusals: messages on the fields, the email kept, nobody created.
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "not an email"), ("password", "short")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "email-error").as_deref(),
        Some("Write a valid email address.")
    );
    assert_eq!(
        text_of(&page, "password-error").as_deref(),
        Some("Use 12 to 1024 characters.")
    );
    assert!(page.contains("value=\"not an email\""));
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "new@example.com"), ("password", "elevenchars")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&res.text().await.expect("body"), "password-error").is_some());
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", " DEV@Example.com "), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        text_of(&res.text().await.expect("body"), "email-error").as_deref(),
        Some("A user with this email exists.")
    );
    assert_eq!(user_count(), 2);

    // Created: an administrator when asked, who can sign in at once.
    let res = admin
        .post(
            "/dashboard/users",
            &[
                ("email", "Second@Example.com"),
                ("password", "twelve chars"),
                ("is_admin", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/users?notice=user_created");
    assert!(
        admin
            .ok_page(&location(&res))
            .await
            .contains("The user was created.")
    );
    let second = client();
    app.sign_in(&second, "second@example.com", "twelve chars")
        .await;
    let res = second
        .get(app.url("/dashboard/users"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200, "the new user is an administrator");
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "third@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    {
        let mut conn = app.conn();
        let third_admin: bool = users::table
            .filter(users::email.eq("third@example.com"))
            .select(users::is_admin)
            .first(&mut conn)
            .expect("third");
        assert!(!third_admin, "no is_admin: a developer");
    }

    // Promote and demote: seen by the user's very next request.
    let change = |what: &str| format!("/dashboard/users/{}/{what}", dev.user_id);
    let res = admin.post(&change("make-admin"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/users?notice=user_changed");
    assert_eq!(dev.page("/dashboard/users").await.0, 200);
    let res = admin.post(&change("remove-admin"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_page_error(dev.get("/dashboard/users").await, 403, "forbidden").await;

    // Disabling ends the user's sessions at once and keeps them out.
    let res = admin.post(&change("disable"), &[]).await;
    assert_eq!(res.status(), 303);
    let res = dev.get("/dashboard/apps").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        return_to(&location(&res)).as_deref(),
        Some("/dashboard/apps")
    );
    {
        let mut conn = app.conn();
        let left: i64 = sessions::table
            .filter(sessions::user_id.eq(&dev.user_id))
            .count()
            .get_result(&mut conn)
            .expect("count");
        assert_eq!(left, 0);
    }
    let page = admin.ok_page("/dashboard/users").await;
    let row_at = page
        .find(&format!("data-user-id=\"{}\"", dev.user_id))
        .expect("row");
    let row = &page[row_at..row_at + page[row_at..].find("</tr>").expect("row end")];
    assert!(row.contains(">disabled<"), "{row}");
    assert!(row.contains(&format!("/dashboard/users/{}/enable", dev.user_id)));
    let res = app.log_in(&client(), "dev@example.com", PASSWORD).await;
    assert_eq!(res.status(), 401, "a disabled user cannot sign in");
    let res = admin.post(&change("enable"), &[]).await;
    assert_eq!(res.status(), 303);
    let back = browser_of(&app, "dev@example.com", dev.user_id.clone()).await;
    back.ok_page("/dashboard/apps").await;

    // An administrator cannot disable or demote themself.
    for what in ["disable", "remove-admin"] {
        assert_page_error(
            admin
                .post(&format!("/dashboard/users/{}/{what}", admin.user_id), &[])
                .await,
            409,
            "cannot_change_self",
        )
        .await;
    }
    assert_eq!(
        admin.page("/dashboard/users").await.0,
        200,
        "still an administrator"
    );
    assert_page_error(
        admin
            .post(&format!("/dashboard/users/{}/promote", dev.user_id), &[])
            .await,
        404,
        "not_found",
    )
    .await;
    assert_page_error(
        admin.post("/dashboard/users/usr_nope/disable", &[]).await,
        404,
        "not_found",
    )
    .await;

    let page = admin
        .ok_page(&format!(
            "/dashboard/audit?action=user.&actor={}",
            admin.user_id
        ))
        .await;
    for action in [
        "user.create",
        "user.make_admin",
        "user.remove_admin",
        "user.disable",
        "user.enable",
    ] {
        assert!(
            page.contains(&format!("<code>{action}</code>")),
            "{action}: {page}"
        );
    }
    let disables = admin.ok_page("/dashboard/audit?action=user.disable").await;
    assert_eq!(rows(&disables), 1, "refused changes are not events");
    assert!(disables.contains("dev@example.com"));
}
