//! An API key as stored (never the key itself) and its public view.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{api_keys, oauth_clients, users};

/// Scopes of a full-access key (`sk`).
pub const ALL_SCOPES: &str = "*";

crate::db::string_id! {
    /// An API key's id (`key_…`; never the key).
    ApiKeyId
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    #[diesel(deserialize_as = String)]
    pub id: ApiKeyId,
    pub display_prefix: String,
    pub last_four: String,
    pub name: String,
    pub key_type: String,
    pub environment: String,
    pub scopes: String,
    pub owner_user_id: Option<String>,
    pub owner_client_id: Option<String>,
    pub rate_limit: Option<i32>,
    pub metadata: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<String>,
    /// The APIs (audiences, space-separated) the key is good for; empty: any API.
    pub audiences: String,
    /// The key's owner is a disabled user, or an app owned by one: the key is refused until they are
    /// re-enabled. Read with the key (subqueries of the same query), so verifying needs no extra
    /// round trip, and cached with it.
    #[diesel(select_expression = owner_disabled())]
    pub owner_disabled: bool,
}

/// Whether the key's owner is a disabled user, or an app whose owner is one (lookups by primary key).
#[diesel::dsl::auto_type]
fn owner_disabled() -> _ {
    diesel::dsl::exists(
        users::table
            .select(users::id)
            .filter(users::id.nullable().eq(api_keys::owner_user_id))
            .filter(users::disabled_at.is_not_null()),
    )
    .or(diesel::dsl::exists(
        oauth_clients::table
            .inner_join(users::table.on(users::id.nullable().eq(oauth_clients::owner_user_id)))
            .select(users::id)
            .filter(oauth_clients::id.nullable().eq(api_keys::owner_client_id))
            .filter(users::disabled_at.is_not_null()),
    ))
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("display", &self.display())
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// `sk_live_…AbCd`: all that is ever shown of a key after its creation.
    pub fn display(&self) -> String {
        format!("{}…{}", self.display_prefix, self.last_four)
    }

    pub fn full_access(&self) -> bool {
        self.scopes == ALL_SCOPES
    }

    /// Who forward-auth says is calling (`X-Auth-Subject`): the owning user, else the owning app,
    /// else the key itself.
    pub fn subject(&self) -> &str {
        self.owner_user_id
            .as_deref()
            .or(self.owner_client_id.as_deref())
            .unwrap_or(self.id.as_str())
    }

    pub fn scope_list(&self) -> Vec<&str> {
        self.scopes.split(' ').filter(|s| !s.is_empty()).collect()
    }

    /// Whether the key grants `scope` (a full-access key grants every scope).
    pub fn grants(&self, scope: &str) -> bool {
        self.full_access() || self.scopes.split(' ').any(|s| s == scope && !s.is_empty())
    }

    /// The audiences of the APIs the key is restricted to (none: any API).
    pub fn audience_list(&self) -> Vec<&str> {
        self.audiences
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether the key may be used for the API with this audience (a key with no list: any API).
    pub fn serves(&self, audience: &str) -> bool {
        self.audiences.is_empty()
            || self
                .audiences
                .split(' ')
                .any(|s| s == audience && !s.is_empty())
    }

    pub fn owner(&self) -> Option<Owner> {
        match (&self.owner_user_id, &self.owner_client_id) {
            (Some(u), _) => Some(Owner::User { id: u.clone() }),
            (None, Some(c)) => Some(Owner::Client { id: c.clone() }),
            (None, None) => None,
        }
    }

    /// Revoked, expired (at `now`) or active.
    pub fn status(&self, now: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    pub fn view(&self, now: i64) -> KeyView {
        KeyView {
            id: self.id.to_string(),
            name: self.name.clone(),
            display: self.display(),
            r#type: self.key_type.clone(),
            env: self.environment.clone(),
            scopes: if self.full_access() {
                vec![ALL_SCOPES.to_owned()]
            } else {
                self.scope_list().into_iter().map(str::to_owned).collect()
            },
            apis: self
                .audience_list()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            owner: self.owner(),
            rate_limit: self.rate_limit,
            metadata: serde_json::from_str(&self.metadata).unwrap_or_default(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
            replaced_by: self.replaced_by.clone(),
            status: self.status(now),
        }
    }
}

/// Where a key is in its life at a given time (`status` in JSON, pages and the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Who a key belongs to: `{"type": "user", "id": …}` or `{"type": "client", "id": …}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Owner {
    User { id: String },
    Client { id: String },
}

/// What the CLI and the JSON API show of a key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub display: String,
    pub r#type: String,
    pub env: String,
    pub scopes: Vec<String>,
    /// The audiences of the APIs the key is restricted to; empty: any API.
    pub apis: Vec<String>,
    pub owner: Option<Owner>,
    pub rate_limit: Option<i32>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<String>,
    #[schema(value_type = String, examples("active", "expired", "revoked"))]
    pub status: KeyStatus,
}

#[cfg(test)]
impl ApiKey {
    /// A live, full-access `sk` key row with id `id` (for unit tests).
    pub fn fixture(id: &str) -> Self {
        Self {
            id: id.into(),
            display_prefix: "sk_live_".into(),
            last_four: "abcd".into(),
            name: "n".into(),
            key_type: "sk".into(),
            environment: "live".into(),
            scopes: ALL_SCOPES.into(),
            owner_user_id: None,
            owner_client_id: None,
            rate_limit: None,
            metadata: "{}".into(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            replaced_by: None,
            audiences: String::new(),
            owner_disabled: false,
        }
    }
}
