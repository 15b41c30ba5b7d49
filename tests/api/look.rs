//! How the dashboard reads: the audit log names people and apps, shows dates and readable details
//! (never raw JSON); the usage chart has a y-axis and a tick for today; key pages name the owner by
//! email; the users table's buttons sit in a wrapper inside their cell. Checked on the rendered HTML
//! (tests/browser/look.test.mjs checks the layout in a browser).

use std::time::Duration;

use diesel::prelude::*;
use tessera::apikeys::KeyInput;
use tessera::audit::{self, Actor, Event};
use tessera::config::Settings;
use tessera::db::schema::{api_key_usage, api_keys};

use crate::helpers::{PASSWORD, TestApp, client, create_key_as, sign_in_as, spawn_app};

/// A key made as the CLI and the dashboard make them; its id.
fn make_key(app: &TestApp, input: KeyInput, actor: Actor) -> String {
    create_key_as(app, &Settings::default(), &input, actor)
        .expect("key")
        .0
}

fn key_input(name: &str, user: Option<&str>, client: Option<&str>) -> KeyInput {
    KeyInput {
        name: name.into(),
        key_type: "rk".into(),
        env: "test".into(),
        scopes: vec!["read".into(), "write".into()],
        expires_in: Some(Duration::from_secs(90 * 86_400)),
        owner_user_id: user.map(str::to_owned),
        owner_client_id: client.map(str::to_owned),
        ..Default::default()
    }
}

/// The HTML of the table row that holds `needle`.
fn row_with<'p>(page: &'p str, needle: &str) -> &'p str {
    let at = page
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} on the page: {page}"));
    let start = page[..at].rfind("<tr").expect("inside a row");
    let end = page[at..].find("</tr>").expect("row ends") + at;
    &page[start..end]
}

/// The text inside the element with `id="ID"`, tags removed.
fn text_in(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = page.find(&marker).expect(&marker) + marker.len();
    let start = page[at..].find('>').expect("tag ends") + at + 1;
    let end = page[start..].find("</dd>").expect("dd ends") + start;
    strip_tags(&page[start..end])
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn long_uris() -> Vec<String> {
    (0..6)
        .map(|n| format!("https://例え.example/コールバック/{n}/ようこそ"))
        .collect()
}

fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("in range")
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

#[actix_web::test]
async fn the_audit_log_names_people_and_apps_and_shows_dates_and_readable_details() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let admin_id = admin.user_id.clone();
    let dev_id = app.create_user("dev@example.com", PASSWORD, false);
    let (client_id, _) = app
        .register_client(tessera::oauth::ClientInput {
            name: "Weather app".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            ..Default::default()
        })
        .expect("client");
    // The developer makes a key (audited with its expiry as unix seconds in the details).
    let key_id = make_key(
        &app,
        key_input("Build bot", Some(&dev_id), None),
        Actor::User(dev_id.clone()),
    );
    let expires_at: i64 = api_keys::table
        .find(&key_id)
        .select(api_keys::expires_at)
        .first::<Option<i64>>(&mut app.conn())
        .expect("key")
        .expect("an expiry");
    {
        let mut conn = app.conn();
        // An app acting for itself.
        audit::record(
            &mut conn,
            Event::new(Actor::Client(client_id.clone()), "token.revoke")
                .details(serde_json::json!({ "token_type": "refresh_token" })),
        )
        .expect("event");
        // Long values with multi-byte characters: shortened at a boundary, the whole text kept.
        let long = long_uris();
        audit::record(
            &mut conn,
            Event::new(Actor::User(admin_id.clone()), "client.redirect_uris.update")
                .target("client", &client_id)
                .details(serde_json::json!({ "redirect_uris": long })),
        )
        .expect("event");
        // A user that no longer exists: shown by their (pseudonymous) id.
        audit::record(
            &mut conn,
            Event::new(Actor::User("usr_gone0000000000000".into()), "user.disable")
                .target("user", &dev_id),
        )
        .expect("event");
    }

    let html = admin.ok_page("/dashboard/audit").await;

    // No JSON anywhere in the table: neither raw nor HTML-escaped.
    let table = &html[html.find("<table").expect("a table")..];
    assert!(!table.contains("{\""), "raw JSON: {table}");
    for escaped in ["{&quot;", "{&#34;", "&#34;:", "&quot;:"] {
        assert!(!table.contains(escaped), "escaped JSON: {table}");
    }

    // Actors and subjects by email and app name, linking to the log filtered on them.
    let created = row_with(&html, "<code>api_key.create</code>");
    assert!(created.contains(">dev@example.com</a>"), "{created}");
    assert!(
        created.contains(&format!("href=\"/dashboard/audit?actor={dev_id}\"")),
        "{created}"
    );
    assert!(
        created.contains(">Build bot</a>"),
        "the key by name: {created}"
    );
    assert!(
        created.contains(&format!("href=\"/dashboard/keys/{key_id}\"")),
        "{created}"
    );
    let revoked = row_with(&html, "<code>token.revoke</code>");
    assert!(revoked.contains(">Weather app</a>"), "{revoked}");
    assert!(!strip_tags(revoked).contains(&client_id), "{revoked}");
    let disabled = row_with(&html, "<code>user.disable</code>");
    assert!(
        strip_tags(disabled).contains("deleted user usr_gone0000000000000"),
        "{disabled}"
    );
    assert!(
        strip_tags(disabled).contains("dev@example.com"),
        "the subject by email: {disabled}"
    );

    // Dates: readable UTC text in a <time datetime>, never the unix number.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        created.contains(&format!("<time datetime=\"{today}T")),
        "{created}"
    );
    assert!(
        created.contains(&format!(">{}</time>", utc(expires_at))),
        "the expiry as a date: {created}"
    );
    assert!(!created.contains(&expires_at.to_string()), "{created}");

    // Details as label: value pairs.
    let text = strip_tags(created);
    for pair in [
        "name: Build bot",
        "scopes: read write",
        "APIs: any",
        "environment: test",
        "type: rk",
    ] {
        assert!(text.contains(pair), "{pair} in {text}");
    }
    assert!(strip_tags(revoked).contains("token type: refresh_token"));

    // A long value: shortened with "…" at a boundary, the whole text one click away.
    let uris = row_with(&html, "<code>client.redirect_uris.update</code>");
    let summary_at = uris.find("<summary").expect("a shortened value");
    let summary = &uris
        [summary_at..uris[summary_at..].find("</summary>").expect("summary ends") + summary_at];
    let shown = strip_tags(&format!("{summary}>"));
    let full = long_uris().join(", ");
    assert!(shown.ends_with('…'), "{shown}");
    assert!(shown.chars().count() <= 80, "{shown}");
    assert!(
        full.starts_with(shown.trim_end_matches('…')),
        "{shown} is the start of {full}"
    );
    assert!(
        uris.contains(&format!("<span class=\"full\">{full}</span>")),
        "the full value: {uris}"
    );
}

#[actix_web::test]
async fn key_pages_name_the_owner_by_email_or_app_name() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev = sign_in_as(&app, "ana@example.com", false).await;
    let dev_id = dev.user_id.clone();
    let (client_id, _) = app
        .register_client(tessera::oauth::ClientInput {
            name: "Billing service".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            ..Default::default()
        })
        .expect("client");
    let user_key = make_key(
        &app,
        key_input("Ana key", Some(&dev_id), None),
        Actor::System,
    );
    let app_key = make_key(
        &app,
        key_input("Billing key", None, Some(&client_id)),
        Actor::System,
    );

    // The list: an Owner column with the email or the app's name.
    let list = admin.ok_page("/dashboard/keys").await;
    assert!(list.contains("<th scope=\"col\">Owner</th>"));
    let row = row_with(&list, &format!("data-key-id=\"{user_key}\""));
    assert!(row.contains("ana@example.com"), "{row}");
    assert!(!strip_tags(row).contains(&dev_id), "{row}");
    let row = row_with(&list, &format!("data-key-id=\"{app_key}\""));
    assert!(row.contains("Billing service"), "{row}");
    assert!(
        row.contains(&format!("href=\"/dashboard/apps/{client_id}\"")),
        "{row}"
    );

    // The key's page.
    let detail = admin.ok_page(&format!("/dashboard/keys/{user_key}")).await;
    assert_eq!(text_in(&detail, "owner"), "ana@example.com");
    let detail = admin.ok_page(&format!("/dashboard/keys/{app_key}")).await;
    assert_eq!(text_in(&detail, "owner"), "app Billing service");

    // A developer sees their own email on their key.
    let detail = dev.ok_page(&format!("/dashboard/keys/{user_key}")).await;
    assert_eq!(text_in(&detail, "owner"), "ana@example.com");
    let list = dev.ok_page("/dashboard/keys").await;
    assert!(row_with(&list, &format!("data-key-id=\"{user_key}\"")).contains("ana@example.com"));
}

/// The labels of the chart's y-axis, bottom first.
fn y_labels(html: &str) -> Vec<String> {
    let axis_at = html.find("class=\"chart-y\"").expect("a y-axis");
    let axis = &html[axis_at..axis_at + html[axis_at..].find("</svg>").expect("svg ends")];
    axis.split("<text class=\"tick\"")
        .skip(1)
        .map(|t| {
            let start = t.find('>').expect("tag ends") + 1;
            t[start..t.find("</text>").expect("text ends")].to_owned()
        })
        .collect()
}

/// The labels under the bars, left to right.
fn x_labels(html: &str) -> Vec<String> {
    let plot_at = html.find("class=\"chart-plot\"").expect("a plot");
    let plot = &html[plot_at..plot_at + html[plot_at..].find("</svg>").expect("svg ends")];
    plot.split("<text class=\"day")
        .skip(1)
        .map(|t| {
            let start = t.find('>').expect("tag ends") + 1;
            t[start..t.find("</text>").expect("text ends")].to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn the_usage_chart_has_a_y_axis_of_round_counts_and_a_tick_for_today() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let admin_id = admin.user_id.clone();

    // No usage yet: still an axis from 0, and today labelled.
    let html = admin.ok_page("/dashboard/usage").await;
    assert_eq!(y_labels(&html), ["0", "1"]);
    assert_eq!(x_labels(&html).last().map(String::as_str), Some("today"));

    let key_id = make_key(
        &app,
        key_input("Busy key", Some(&admin_id), None),
        Actor::System,
    );
    let today = chrono::Utc::now().timestamp().div_euclid(86_400) * 86_400;
    for (day, allowed, denied) in [(today, 1_200, 34), (today - 5 * 86_400, 10, 0)] {
        diesel::insert_into(api_key_usage::table)
            .values((
                api_key_usage::key_id.eq(&key_id),
                api_key_usage::day.eq(day),
                api_key_usage::allowed.eq(allowed),
                api_key_usage::denied.eq(denied),
                api_key_usage::rate_limited.eq(0_i64),
            ))
            .execute(&mut app.conn())
            .expect("usage");
    }
    let html = admin
        .ok_page(&format!("/dashboard/usage?of=key:{key_id}"))
        .await;
    // 1234 at the peak: round steps of 500 from 0 to 1.5k.
    assert_eq!(y_labels(&html), ["0", "500", "1k", "1.5k"]);
    let x = x_labels(&html);
    assert_eq!(x.len(), 5, "weekly ticks back from today: {x:?}");
    assert_eq!(x.last().map(String::as_str), Some("today"));
    let a_week_ago = chrono::DateTime::from_timestamp(today - 7 * 86_400, 0)
        .expect("in range")
        .format("%b %-d")
        .to_string();
    assert_eq!(x[3], a_week_ago);
    // Today's bar is the last one and reaches up to its count on the axis scale.
    let todays = format!("{}: 1200 allowed", utc(today).get(..10).expect("date"));
    assert!(html.contains(&todays), "today's bar: {html}");
}

#[actix_web::test]
async fn the_users_tables_buttons_sit_in_a_wrapper_inside_their_cell() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let dev_id = app.create_user("dev@example.com", PASSWORD, false);
    let html = admin.ok_page("/dashboard/users").await;
    // The flex rule belongs on a wrapper: a <td> with display:flex is no longer a table cell.
    assert!(!html.contains("<td class=\"row-actions\""), "{html}");
    let row = row_with(&html, &format!("data-user-id=\"{dev_id}\""));
    let cell = &row[row.find("data-label=\"Actions\"").expect("an actions cell")..];
    assert!(
        cell.trim_start_matches("data-label=\"Actions\" class=\"actions-cell\">")
            .starts_with("<div class=\"row-actions\">"),
        "{cell}"
    );
    assert_eq!(cell.matches("<button").count(), 2, "{cell}");
    // And the stylesheet puts it there.
    let css = app.fetch_text(&client(), "/static/tessera.css").await;
    assert!(css.contains(".row-actions { display: flex;"));
    assert!(!css.contains("td.row-actions"));
}
