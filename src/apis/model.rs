//! APIs (resource servers) and scopes as stored.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{resource_servers, scopes};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = resource_servers)]
pub struct Api {
    pub id: String,
    pub audience: String,
    pub name: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = scopes)]
pub struct ScopeRow {
    pub id: String,
    pub resource_server_id: String,
    pub name: String,
    pub description: String,
}

/// A scope name: RFC 6749 `scope-token` characters, no spaces.
pub fn valid_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
