//! Usage: requests per day over the last 30 days, per key or per app, as an SVG bar chart drawn here.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;

use super::pages::{Choice, DayRow, UsagePage};
use super::{dash, when};
use crate::apikeys::{self, usage::DayCounts};
use crate::db;
use crate::error::AppError;
use crate::oauth;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show);
}

const DAYS: i64 = 30;

#[derive(Debug, Deserialize)]
struct Query {
    /// `key:<id>`, `app:<id>`, or empty for everything the user may see.
    of: Option<String>,
}

#[get("/dashboard/usage")]
async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let dash = dash!(req, state);
    let query = web::Query::<Query>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(Query { of: None });
    let selected = query.of.unwrap_or_default();
    let owner = dash.owner_filter();
    let today = db::now().div_euclid(86_400) * 86_400;
    let since = today - (DAYS - 1) * 86_400;
    let sel = selected.clone();
    let (choices, subject, days) = db::run(&state.pool, move |conn| {
        let keys = apikeys::list_keys(conn, owner.as_deref(), 1000, 0)?;
        let apps = oauth::list_clients(conn, owner.as_deref())?;
        let mut choices = vec![Choice {
            value: String::new(),
            label: "All keys".into(),
            checked: sel.is_empty(),
        }];
        for k in &keys {
            choices.push(Choice {
                value: format!("key:{}", k.id),
                label: format!("Key {} ({})", k.name, k.display()),
                checked: sel == format!("key:{}", k.id),
            });
        }
        for a in &apps {
            choices.push(Choice {
                value: format!("app:{}", a.id),
                label: format!("App {} (tokens issued)", a.name),
                checked: sel == format!("app:{}", a.id),
            });
        }
        let (subject, days) = if let Some(id) = sel.strip_prefix("key:") {
            let key = keys.iter().find(|k| k.id == id).ok_or(AppError::NotFound)?;
            let days = apikeys::usage::daily(conn, std::slice::from_ref(&key.id), since)?;
            (format!("Key {}: requests", key.name), days)
        } else if let Some(id) = sel.strip_prefix("app:") {
            let app = apps.iter().find(|a| a.id == id).ok_or(AppError::NotFound)?;
            let days = apikeys::usage::client_daily(conn, &app.id, since)?;
            (format!("App {}: tokens issued", app.name), days)
        } else if sel.is_empty() {
            let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
            (
                "All keys: requests".into(),
                apikeys::usage::daily(conn, &ids, since)?,
            )
        } else {
            return Err(AppError::NotFound);
        };
        Ok((choices, subject, days))
    })
    .await?;
    let (allowed, denied, rate_limited) = days
        .iter()
        .fold((0, 0, 0), |t, d| (t.0 + d.1, t.1 + d.2, t.2 + d.3));
    let page = UsagePage {
        lang: "en-US",
        nav: dash.nav("usage", None),
        choices,
        chart: chart(&days, since),
        subject,
        allowed,
        denied,
        rate_limited,
        days: days
            .iter()
            .rev()
            .map(|d| DayRow {
                day: when(d.0)[..10].to_owned(),
                allowed: d.1,
                denied: d.2,
                rate_limited: d.3,
            })
            .collect(),
    };
    dash.render(StatusCode::OK, &page)
}

/// A bar per day (allowed, with denied and rate-limited stacked on top), 30 days from `since`.
/// Only numbers and dates go into the SVG.
fn chart(days: &[DayCounts], since: i64) -> String {
    const W: i64 = 600;
    const H: i64 = 160;
    const BAR: i64 = W / DAYS;
    let max = days
        .iter()
        .map(|d| d.1 + d.2 + d.3)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: i64| n * (H - 20) / max;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"chart-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Requests per day, last {DAYS} \
         days; peak {max}</title>"
    );
    for i in 0..DAYS {
        let day = since + i * 86_400;
        let x = i * BAR + 2;
        let (a, d, r) = days
            .iter()
            .find(|c| c.0 == day)
            .map_or((0, 0, 0), |c| (c.1, c.2, c.3));
        let mut y = H - 14;
        for (n, class) in [(a, "allowed"), (d, "denied"), (r, "limited")] {
            let h = scale(n);
            if h > 0 {
                y -= h;
                svg.push_str(&format!(
                    "<rect class=\"{class}\" x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{h}\"><title>{}: {n} {class}</title></rect>",
                    BAR - 4,
                    &super::when(day)[..10]
                ));
            }
        }
        if i % 7 == 0 {
            svg.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" class=\"axis\">{}</text>",
                H - 2,
                &super::when(day)[5..10]
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}
