//! Audit events: who changed what, when, from where. Recorded in the same transaction as the change.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::audit_events;
use crate::request::header_text;

/// Who did it.
#[derive(Debug, Clone)]
pub enum Actor {
    User(String),
    /// An OAuth client acting for itself (e.g. revoking its own token).
    Client(String),
    /// A caller holding an admin API key (by key id).
    ApiKey(String),
    Cli,
    System,
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub origin: Origin,
    pub details: serde_json::Value,
}

/// Where a change came from: the caller's IP and user agent (empty for the CLI).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        Self {
            ip: Some(crate::request::client_ip(req)),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(header_text)
                .map(|s| s.chars().take(256).collect()),
        }
    }
}

impl<'a> Event<'a> {
    pub fn new(actor: Actor, action: &'a str) -> Self {
        Self {
            actor,
            action,
            target_type: None,
            target_id: None,
            origin: Origin::default(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, kind: &'a str, id: &'a str) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id);
        self
    }

    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Inserts the event. Ids sort by time (millisecond hex prefix) so the log reads newest-first by id.
pub fn record(conn: &mut DbConn, event: Event<'_>) -> QueryResult<()> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let random = crate::crypto::random_id("x", 12);
    let id = format!("evt_{now_ms:012x}{}", &random[2..]);
    let (actor_type, actor_id) = match &event.actor {
        Actor::User(id) => ("user", Some(id.as_str())),
        Actor::Client(id) => ("client", Some(id.as_str())),
        Actor::ApiKey(id) => ("api_key", Some(id.as_str())),
        Actor::Cli => ("cli", None),
        Actor::System => ("system", None),
    };
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(&id),
            audit_events::occurred_at.eq((now_ms / 1000) as i64),
            audit_events::actor_type.eq(actor_type),
            audit_events::actor_id.eq(actor_id),
            audit_events::action.eq(event.action),
            audit_events::target_type.eq(event.target_type),
            audit_events::target_id.eq(event.target_id),
            audit_events::ip.eq(event.origin.ip.as_deref()),
            audit_events::user_agent.eq(event.origin.user_agent.as_deref()),
            audit_events::details.eq(event.details.to_string()),
        ))
        .execute(conn)
        .map(|_| ())
}

diesel::define_sql_function! {
    /// `substr(text, start, length)`, the same on SQLite and PostgreSQL.
    fn substr(text: diesel::sql_types::Text, start: diesel::sql_types::Integer, length: diesel::sql_types::Integer) -> diesel::sql_types::Text;
}

/// A recorded event, as the audit log shows it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    pub id: String,
    pub occurred_at: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
}

/// Which events to show: every field optional. `actor` matches the actor's id or its type (`cli`,
/// `system`, `user`…); `action` matches a whole action or a prefix ending in `.` (`api_key.`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

/// Events newest first, `limit` from `offset`, matching `filter`.
pub fn find_events(
    conn: &mut DbConn,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut query = audit_events::table
        .order(audit_events::id.desc())
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(actor) = filter.actor.as_deref() {
        query = query.filter(
            audit_events::actor_id
                .eq(actor)
                .or(audit_events::actor_type.eq(actor)),
        );
    }
    if let Some(action) = filter.action.as_deref() {
        query = if let Some(prefix) = action.strip_suffix('.') {
            let escaped = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            // LIKE is case-insensitive on SQLite: comparing the leading characters makes the match
            // exact on both backends.
            let head = format!("{prefix}.");
            let len = i32::try_from(head.chars().count()).unwrap_or(i32::MAX);
            query
                .filter(
                    audit_events::action
                        .like(format!("{escaped}.%"))
                        .escape('\\'),
                )
                .filter(substr(audit_events::action, 1, len).eq(head))
        } else {
            query.filter(audit_events::action.eq(action))
        };
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    query.limit(limit).offset(offset).load(conn)
}

/// What the people and things an event names are called, for display: user id → email, client id →
/// app name, API key id → key name. An id missing here was deleted (or never existed): pages show
/// the id itself, which is pseudonymous.
#[derive(Debug, Clone, Default)]
pub struct Names {
    users: std::collections::HashMap<String, String>,
    clients: std::collections::HashMap<String, String>,
    keys: std::collections::HashMap<String, String>,
}

/// The ids a page wants names for. At most a page of events' worth: the page bounds it.
#[derive(Debug, Clone, Default)]
pub struct NameRequest {
    pub users: std::collections::BTreeSet<String>,
    pub clients: std::collections::BTreeSet<String>,
    pub keys: std::collections::BTreeSet<String>,
}

impl NameRequest {
    /// Asks for the name of `id` if `kind` (an actor or target type) is one with a name.
    pub fn add(&mut self, kind: &str, id: &str) {
        let set = match kind {
            "user" => &mut self.users,
            "client" => &mut self.clients,
            "api_key" => &mut self.keys,
            _ => return,
        };
        if set.len() < 1000 {
            set.insert(id.to_owned());
        }
    }

    /// Every actor and target of `events`, and the app and key ids their details name.
    pub fn of_events(events: &[EventRow]) -> Self {
        let mut req = Self::default();
        for e in events {
            if let Some(id) = &e.actor_id {
                req.add(&e.actor_type, id);
            }
            if let (Some(kind), Some(id)) = (&e.target_type, &e.target_id) {
                req.add(kind, id);
            }
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&e.details) {
                for (field, value) in map {
                    if let (Some(kind), Some(id)) = (detail_kind(&field), value.as_str()) {
                        req.add(kind, id);
                    }
                }
            }
        }
        req
    }
}

/// The kind of id a detail field holds, when it names an app or a key.
pub fn detail_kind(field: &str) -> Option<&'static str> {
    match field {
        "client_id" | "owner_client_id" => Some("client"),
        "replaced_by" => Some("api_key"),
        _ => None,
    }
}

impl Names {
    /// Looks the requested ids up (three queries by primary key).
    pub fn load(conn: &mut DbConn, req: &NameRequest) -> QueryResult<Self> {
        use crate::db::schema::{api_keys, oauth_clients, users};
        let mut names = Self::default();
        if !req.users.is_empty() {
            names.users = users::table
                .filter(users::id.eq_any(&req.users))
                .select((users::id, users::email))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
        }
        if !req.clients.is_empty() {
            names.clients = oauth_clients::table
                .filter(oauth_clients::id.eq_any(&req.clients))
                .select((oauth_clients::id, oauth_clients::name))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
        }
        if !req.keys.is_empty() {
            names.keys = api_keys::table
                .filter(api_keys::id.eq_any(&req.keys))
                .select((api_keys::id, api_keys::name))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
        }
        Ok(names)
    }

    /// The name of `id` of `kind` (`user`, `client`, `api_key`), if it is known.
    pub fn of(&self, kind: &str, id: &str) -> Option<&str> {
        match kind {
            "user" => self.users.get(id),
            "client" => self.clients.get(id),
            "api_key" => self.keys.get(id),
            _ => None,
        }
        .map(String::as_str)
    }
}
