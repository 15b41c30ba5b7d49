//! `/dashboard/signing-keys`: listed and rotated by administrators only.

use super::rows;
use crate::helpers::{assert_page_error, attr_values, location, sign_in_as, spawn_app};

#[actix_web::test]
async fn signing_keys_are_listed_and_rotated_by_administrators_only() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;

    assert_page_error(dev.get("/dashboard/signing-keys").await, 403, "forbidden").await;
    assert_page_error(
        dev.post("/dashboard/signing-keys/rotate", &[]).await,
        403,
        "forbidden",
    )
    .await;

    let page = admin.ok_page("/dashboard/signing-keys").await;
    assert!(page.contains("href=\"/dashboard/signing-keys\" aria-current=\"page\""));
    let before = attr_values(&page, "data-kid");
    assert_eq!(before.len(), 3, "one key per algorithm after start: {page}");
    assert!(page.contains("status-current"), "{page}");

    let res = admin.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        "/dashboard/signing-keys?notice=signing_key_rotated"
    );
    let page = admin.ok_page(&location(&res)).await;
    assert!(page.contains("A new signing key is published"), "{page}");
    let after = attr_values(&page, "data-kid");
    assert_eq!(after.len(), 4, "{page}");
    let new_kid = after
        .iter()
        .find(|k| !before.contains(k))
        .expect("a new kid")
        .clone();
    let row_at = page
        .find(&format!("data-kid=\"{new_kid}\""))
        .expect("the new row");
    let row = &page[row_at..row_at + page[row_at..].find("</tr>").expect("row end")];
    assert!(
        row.contains("status-next"),
        "it signs after the lead time: {row}"
    );
    // Published at once, beside the key that still signs.
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&new_kid.as_str()), "{jwks}");
    assert!(kids.contains(&before[0].as_str()), "{jwks}");

    // A successor already waits: rotating again adds nothing.
    let res = admin.post("/dashboard/signing-keys/rotate", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid").len(),
        4
    );

    // The key made at start-up is the system's; the one rotation made here is the administrator's.
    let audit = admin
        .ok_page(&format!(
            "/dashboard/audit?action=signing_key.rotate&actor={}",
            admin.user_id
        ))
        .await;
    assert_eq!(rows(&audit), 1, "{audit}");
    assert!(audit.contains(&format!("signing key {new_kid}")));
    assert!(audit.contains(&format!("?actor={}\"", admin.user_id)));
}
