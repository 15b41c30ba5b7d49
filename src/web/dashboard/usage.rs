//! Usage: requests per day over the last 30 days, per key or per app, as an SVG bar chart drawn here.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;

use super::pages::{Choice, DayRow, UsagePage};
use super::{dash, display, when};
use crate::apikeys::{self, usage::DayCounts};
use crate::db;
use crate::error::AppError;
use crate::node::Node;
use crate::oauth;

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
async fn show(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
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
        let keys = apikeys::list_keys(conn, owner.as_ref(), 1000, 0)?;
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
            let ids: Vec<apikeys::ApiKeyId> = keys.iter().map(|k| k.id.clone()).collect();
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

/// Plot height, the baseline (y of 0) and the top of the tallest tick, in CSS pixels.
const CHART_H: f64 = 190.0;
const BASE: f64 = 160.0;
const TOP: f64 = 12.0;

/// A bar per day (allowed, with denied and rate-limited stacked on top), 30 days from `since`, and a
/// y-axis of round counts from 0. Two SVGs side by side: the axis labels at a fixed width, the
/// plot stretching to the page's width with its x positions in percent, so that the text keeps its
/// size on a phone and on a wide screen. Ticks under the bars weekly back from today, today's as
/// "today". Only numbers and dates go into the SVG.
fn chart(days: &[DayCounts], since: i64) -> String {
    use std::fmt::Write as _;
    let peak = days.iter().map(|d| d.1 + d.2 + d.3).max().unwrap_or(0);
    let ticks = display::ticks(peak);
    let top = *ticks.last().unwrap_or(&1) as f64;
    let y = |n: i64| BASE - (n as f64) * (BASE - TOP) / top;
    let slot = 100.0 / DAYS as f64;
    let mut axis = format!(
        "<svg class=\"chart-y\" width=\"44\" height=\"{CHART_H}\" aria-hidden=\"true\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let mut plot = format!(
        "<svg class=\"chart-plot\" width=\"100%\" height=\"{CHART_H}\" role=\"img\" \
         aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">\
         Requests per day, last {DAYS} days; peak {peak}</title>"
    );
    for &t in &ticks {
        let ty = y(t);
        let _ = write!(
            axis,
            "<text class=\"tick\" x=\"38\" y=\"{ty:.1}\" text-anchor=\"end\" \
             dominant-baseline=\"middle\">{}</text>",
            display::compact(t)
        );
        let _ = write!(
            plot,
            "<line class=\"{}\" x1=\"0\" x2=\"100%\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/>",
            if t == 0 { "baseline" } else { "grid" }
        );
    }
    for i in 0..DAYS {
        let day = since + i * 86_400;
        let x = i as f64 * slot;
        let date = &when(day)[..10];
        let (a, d, r) = days
            .iter()
            .find(|c| c.0 == day)
            .map_or((0, 0, 0), |c| (c.1, c.2, c.3));
        let mut below = 0;
        for (n, class) in [(a, "allowed"), (d, "denied"), (r, "limited")] {
            if n > 0 {
                let (y0, y1) = (y(below), y(below + n));
                below += n;
                let _ = write!(
                    plot,
                    "<rect class=\"{class}\" x=\"{:.3}%\" y=\"{y1:.1}\" width=\"{:.3}%\" \
                     height=\"{:.1}\"><title>{date}: {n} {class}</title></rect>",
                    x + slot * 0.15,
                    slot * 0.7,
                    (y0 - y1).max(0.5),
                );
            }
        }
        let from_today = DAYS - 1 - i;
        if from_today % 7 == 0 {
            let mid = x + slot / 2.0;
            let (label, anchor, class, lx) = if from_today == 0 {
                ("today".to_owned(), "end", "day today", "100%".to_owned())
            } else {
                let label = chrono::DateTime::from_timestamp(day, 0)
                    .map(|d| d.format("%b %-d").to_string())
                    .unwrap_or_default();
                (label, "middle", "day", format!("{mid:.3}%"))
            };
            let _ = write!(
                plot,
                "<line class=\"tick-mark\" x1=\"{mid:.3}%\" x2=\"{mid:.3}%\" y1=\"{BASE}\" y2=\"{}\"/>\
                 <text class=\"{class}\" x=\"{lx}\" y=\"{}\" text-anchor=\"{anchor}\">\
                 {label}</text>",
                BASE + 5.0,
                BASE + 20.0,
            );
        }
    }
    axis.push_str("</svg>");
    plot.push_str("</svg>");
    format!("<div class=\"chart\">{axis}{plot}</div>")
}
