//! How the dashboard shows stored values: dates, the people and things an audit event names, event
//! details as label/value pairs, long text shortened at a character boundary, chart axes.

use crate::audit::{EventRow, Names};

/// A moment for a page: `text` to read (`2026-11-29 14:03:07 UTC`) and `iso` for `<time datetime>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub iso: String,
    pub text: String,
}

/// The moment `t` (unix seconds), or `None` when it is out of range.
pub fn stamp(t: i64) -> Option<Stamp> {
    let d = chrono::DateTime::from_timestamp(t, 0)?;
    Some(Stamp {
        iso: d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        text: d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    })
}

/// Someone or something an event names: what it is called and, for a link, where it lives.
#[derive(Debug, Clone, Default)]
pub struct Party {
    /// What kind of thing it is ("app", "API key", "signing key"…); empty for a person.
    pub kind: String,
    /// The email, the app or key name, or the id when no name is known.
    pub label: String,
    /// The label is a (pseudonymous) id: the user, app or key was deleted.
    pub deleted: bool,
    /// A page about it (keys and apps) or the audit log filtered on it (actors).
    pub href: Option<String>,
}

impl Party {
    fn none() -> Self {
        Self {
            label: "—".into(),
            ..Self::default()
        }
    }
}

/// How the kind of an actor or target reads on a page.
fn kind_label(kind: &str) -> String {
    match kind {
        "user" => String::new(),
        "client" => "app".into(),
        "api_key" => "API key".into(),
        "signing_key" => "signing key".into(),
        "refresh_token_family" => "refresh tokens".into(),
        "scope" => "scope".into(),
        "api" => "API".into(),
        other => other.replace('_', " "),
    }
}

/// The party `kind`/`id` with its name from `names` when it has one.
fn named(kind: &str, id: &str, names: &Names) -> Party {
    let has_names = matches!(kind, "user" | "client" | "api_key");
    if !has_names {
        // Things without a name (signing keys, scopes…) read as their kind and id.
        return Party {
            label: format!("{} {id}", kind_label(kind)),
            ..Party::default()
        };
    }
    let (label, deleted) = match names.of(kind, id) {
        Some(name) => (name.to_owned(), false),
        None => (id.to_owned(), true),
    };
    let kind_text = match (kind, deleted) {
        ("user", true) => "deleted user".to_owned(),
        (_, true) => format!("deleted {}", kind_label(kind)),
        _ => kind_label(kind),
    };
    Party {
        kind: kind_text,
        label,
        deleted,
        href: None,
    }
}

/// Who did it: a link to the audit log of that actor (users, apps and keys by id).
pub fn actor(e: &EventRow, names: &Names) -> Party {
    match &e.actor_id {
        Some(id) => Party {
            href: Some(filter_link(id)),
            ..named(&e.actor_type, id, names)
        },
        None => Party {
            label: match e.actor_type.as_str() {
                "cli" => "CLI".into(),
                other => other.to_owned(),
            },
            href: Some(filter_link(&e.actor_type)),
            ..Party::default()
        },
    }
}

fn filter_link(actor: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("actor", actor)
        .finish();
    format!("/dashboard/audit?{q}")
}

/// What it was done to: keys and apps that still exist link to their page.
pub fn target(e: &EventRow, names: &Names) -> Party {
    let (Some(kind), Some(id)) = (&e.target_type, &e.target_id) else {
        return Party::none();
    };
    let mut party = named(kind, id, names);
    if !party.deleted {
        party.href = match kind.as_str() {
            "api_key" => Some(format!("/dashboard/keys/{id}")),
            "client" => Some(format!("/dashboard/apps/{id}")),
            _ => None,
        };
    }
    party
}

/// The owner of a key: a user by email, or an app by name with a link to its page.
pub fn owner(user: Option<&str>, client: Option<&str>, names: &Names) -> Party {
    match (user, client) {
        (Some(id), _) => named("user", id, names),
        (None, Some(id)) => {
            let mut party = named("client", id, names);
            if !party.deleted {
                party.href = Some(format!("/dashboard/apps/{id}"));
            }
            party
        }
        (None, None) => Party::none(),
    }
}

/// One fact of an event's details.
#[derive(Debug, Clone)]
pub struct Detail {
    pub label: String,
    /// The value as it reads, shortened when long.
    pub text: String,
    /// The whole value when `text` is shortened.
    pub full: Option<String>,
    /// The value is a moment.
    pub time: Option<Stamp>,
}

/// Values longer than this many characters are shortened (the full text stays one click away).
const SHORT: usize = 80;

/// The details of an event (a JSON object as stored) as label/value pairs. Ids of
/// apps and keys read as their names; moments as dates; lists comma-separated; anything that is
/// not an object is shown as one shortened value.
pub fn details(raw: &str, names: &Names) -> Vec<Detail> {
    let map = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => return vec![detail("details", &plain(&other))],
        Err(_) if raw.trim().is_empty() => return Vec::new(),
        Err(_) => return vec![detail("details", raw)],
    };
    // Stored order is lost (JSON objects read back sorted): the name comes first, then the rest
    // alphabetically.
    let mut fields: Vec<_> = map.iter().collect();
    fields.sort_by_key(|(field, _)| !matches!(field.as_str(), "name" | "email"));
    fields
        .into_iter()
        .map(|(field, value)| {
            let label = field_label(field);
            if is_moment(field) {
                match value.as_i64().and_then(stamp) {
                    Some(s) => {
                        return Detail {
                            label,
                            text: s.text.clone(),
                            full: None,
                            time: Some(s),
                        };
                    }
                    None if value.is_null() => return detail(&label, "never"),
                    None => {}
                }
            }
            if let (Some(kind), Some(id)) = (crate::audit::detail_kind(field), value.as_str()) {
                let text = match names.of(kind, id) {
                    Some(name) => format!("{name} ({id})"),
                    None => id.to_owned(),
                };
                return detail(&label, &text);
            }
            match (field.as_str(), value) {
                // A key for no API in particular is good for any.
                ("apis", serde_json::Value::String(s)) if s.is_empty() => detail(&label, "any"),
                ("apis", serde_json::Value::Array(a)) if a.is_empty() => detail(&label, "any"),
                _ => detail(&label, &plain(value)),
            }
        })
        .collect()
}

fn detail(label: &str, value: &str) -> Detail {
    let short = shorten(value, SHORT);
    Detail {
        label: label.to_owned(),
        full: (short != value).then(|| value.to_owned()),
        text: short,
        time: None,
    }
}

/// Fields holding unix seconds.
fn is_moment(field: &str) -> bool {
    field.ends_with("_at") || matches!(field, "sign_from" | "sign_until")
}

/// A field name as a label: known ones in words, others with spaces for underscores.
fn field_label(field: &str) -> String {
    match field {
        "expires_at" => "expires",
        "old_expires_at" => "old key expires",
        "sign_from" => "signs from",
        "sign_until" => "signs until",
        "replaced_by" => "replaced by",
        "previous" => "previous key",
        "is_admin" => "administrator",
        "env" => "environment",
        "apis" => "APIs",
        "grant_types" => "grant types",
        "redirect_uris" => "redirect URIs",
        "token_endpoint_auth_method" => "client authentication",
        "jwks_uri" => "JWKS URI",
        "introspect" => "may introspect",
        "token_rate_limit" => "token rate limit",
        "client_id" => "app",
        "owner_client_id" => "owner app",
        "token_type" => "token type",
        other => return other.replace('_', " "),
    }
    .to_owned()
}

/// A JSON value as plain text: strings as they are, lists comma-separated, `null` as "none".
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::Bool(true) => "yes".into(),
        serde_json::Value::Bool(false) => "no".into(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if s.is_empty() => "(empty)".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.is_empty() => "none".into(),
        serde_json::Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", field_label(k), plain(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `s` in at most `max` characters: cut at a character boundary, back to the last space, comma,
/// slash or hyphen in the second half when there is one, and marked with "…". Never splits a
/// character, nor a word when the text has a break to cut at.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1).max(1);
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    let head = &s[..end];
    let floor = head.char_indices().nth(keep / 2).map_or(0, |(i, _)| i);
    let cut = match head[floor..].rfind([' ', ',', ';', '/', '-']) {
        // A slash or hyphen stays with what it ends; a space, comma or semicolon goes.
        Some(i) if matches!(head.as_bytes()[floor + i], b'/' | b'-') => floor + i + 1,
        Some(i) => floor + i,
        None => end,
    };
    let mut out = head[..cut].trim_end_matches([' ', ',', ';']).to_owned();
    out.push('…');
    out
}

/// Round tick values for an axis from 0 up to at least `max`: steps of 1, 2 or 5 times a power of
/// ten, about four of them. Always at least `[0, 1]`.
pub fn ticks(max: i64) -> Vec<i64> {
    let max = max.max(1);
    let rough = (max as f64 / 4.0).max(1.0);
    let power = 10f64.powi(rough.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| (m * power) as i64)
        .find(|&s| s as f64 >= rough)
        .unwrap_or((10.0 * power) as i64)
        .max(1);
    let top = (max + step - 1) / step * step;
    (0..=top / step).map(|i| i * step).collect()
}

/// A count for an axis label: `950`, `1.5k`, `20k`, `2.5M`.
pub fn compact(n: i64) -> String {
    let (value, unit) = match n.abs() {
        a if a >= 1_000_000_000 => (n as f64 / 1e9, "G"),
        a if a >= 1_000_000 => (n as f64 / 1e6, "M"),
        a if a >= 1_000 => (n as f64 / 1e3, "k"),
        _ => return n.to_string(),
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_start_at_zero() {
        assert_eq!(ticks(0), vec![0, 1]);
        assert_eq!(ticks(1), vec![0, 1]);
        assert_eq!(ticks(3), vec![0, 1, 2, 3]);
        assert_eq!(ticks(7), vec![0, 2, 4, 6, 8]);
        assert_eq!(ticks(10), vec![0, 5, 10]);
        assert_eq!(ticks(1234), vec![0, 500, 1000, 1500]);
        assert_eq!(ticks(40_000), vec![0, 10_000, 20_000, 30_000, 40_000]);
        for max in 0..3000 {
            let t = ticks(max);
            assert_eq!(t[0], 0);
            assert!(*t.last().expect("ticks") >= max, "{max}: {t:?}");
            assert!((2..=6).contains(&t.len()), "{max}: {t:?}");
        }
    }

    #[test]
    fn compact_counts() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1000), "1k");
        assert_eq!(compact(1500), "1.5k");
        assert_eq!(compact(2_500_000), "2.5M");
    }

    #[test]
    fn shortening_never_splits_a_character_and_prefers_a_break() {
        assert_eq!(shorten("short", 10), "short");
        let s = "https://example.com/callback/a-very-long-path/with/more/segments/and-then-some";
        let out = shorten(s, 40);
        assert!(out.chars().count() <= 40, "{out}");
        assert_eq!(out, "https://example.com/callback/a-very-…");
        assert!(s.starts_with(out.trim_end_matches('…')));
        let words = "one two three four five six seven eight nine ten eleven twelve";
        let out = shorten(words, 30);
        assert!(
            words
                .split(' ')
                .any(|w| out.trim_end_matches('…').ends_with(w)),
            "{out}"
        );
        let wide = "é".repeat(50) + &"日本".repeat(50);
        for max in 2..120 {
            let out = shorten(&wide, max);
            assert!(out.chars().count() <= max.max(2), "{max}: {out}");
        }
    }

    #[test]
    fn details_read_as_words_and_dates() {
        let names = Names::default();
        let d = details(
            r#"{"name":"Ana key","scopes":["read","write"],"expires_at":1796083200,"env":"test","apis":[]}"#,
            &names,
        );
        let text: Vec<String> = d
            .iter()
            .map(|d| format!("{}: {}", d.label, d.text))
            .collect();
        assert_eq!(
            text,
            [
                "name: Ana key",
                "APIs: any",
                "environment: test",
                "expires: 2026-12-01 00:00:00 UTC",
                "scopes: read, write",
            ]
        );
        assert_eq!(
            d[3].time.as_ref().expect("a date").iso,
            "2026-12-01T00:00:00Z"
        );
        assert!(details("{}", &names).is_empty());
        let long = format!(
            r#"{{"redirect_uris":["{}"]}}"#,
            "https://x.example/".repeat(10)
        );
        let d = details(&long, &names);
        assert!(d[0].full.is_some() && d[0].text.ends_with('…'));
    }
}
