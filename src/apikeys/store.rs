//! Diesel queries for API keys.

use diesel::prelude::*;

use super::model::ApiKey;
use crate::db::DbConn;
use crate::db::schema::api_keys;

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub key_hash: &'a str,
    pub pepper_version: i32,
    pub display_prefix: &'a str,
    pub last_four: &'a str,
    pub name: &'a str,
    pub key_type: &'a str,
    pub environment: &'a str,
    pub scopes: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub owner_client_id: Option<&'a str>,
    pub rate_limit: Option<i32>,
    pub metadata: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub audiences: &'a str,
}

pub fn insert_key(conn: &mut DbConn, key: &NewApiKey<'_>) -> QueryResult<()> {
    diesel::insert_into(api_keys::table)
        .values(key)
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::key_hash.eq(hash))
        .select(ApiKey::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .get_result(conn)
        .optional()
}

/// Keys newest first, optionally only those owned by `owner_user_id`, or of the environment `env`.
pub fn list_keys(
    conn: &mut DbConn,
    owner_user_id: Option<&str>,
    env: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<ApiKey>> {
    let mut query = api_keys::table
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKey::as_select())
        .limit(limit)
        .offset(offset)
        .into_boxed();
    if let Some(owner) = owner_user_id {
        query = query.filter(api_keys::owner_user_id.eq(owner));
    }
    if let Some(env) = env {
        query = query.filter(api_keys::environment.eq(env));
    }
    query.load(conn)
}

/// Sets `revoked_at` once; false when the key was already revoked.
pub fn revoke(conn: &mut DbConn, id: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends a rotated key's life at `expires_at` (its grace) and names its successor.
pub fn retire_rotated(
    conn: &mut DbConn,
    id: &str,
    expires_at: i64,
    replaced_by: &str,
) -> QueryResult<bool> {
    // Only a key that is neither revoked nor replaced: of two rotations at once, one wins.
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::replaced_by.is_null())
            .filter(api_keys::revoked_at.is_null()),
    )
    .set((
        api_keys::expires_at.eq(expires_at),
        api_keys::replaced_by.eq(replaced_by),
    ))
    .execute(conn)
    .map(|n| n == 1)
}
