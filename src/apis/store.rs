//! Queries of the APIs (resource servers) and their scopes.

use diesel::prelude::*;

use super::model::{Api, ScopeRow};
use crate::db::DbConn;
use crate::db::schema::{resource_servers, scopes};

pub fn insert_api(
    conn: &mut DbConn,
    id: &str,
    audience: &str,
    name: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(resource_servers::table)
        .values((
            resource_servers::id.eq(id),
            resource_servers::audience.eq(audience),
            resource_servers::name.eq(name),
            resource_servers::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find_api_by_audience(conn: &mut DbConn, audience: &str) -> QueryResult<Option<Api>> {
    resource_servers::table
        .filter(resource_servers::audience.eq(audience))
        .select(Api::as_select())
        .get_result(conn)
        .optional()
}

pub fn insert_scope(
    conn: &mut DbConn,
    id: &str,
    api_id: &str,
    name: &str,
    description: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(scopes::table)
        .values((
            scopes::id.eq(id),
            scopes::resource_server_id.eq(api_id),
            scopes::name.eq(name),
            scopes::description.eq(description),
            scopes::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find_scopes(conn: &mut DbConn, api_id: &str) -> QueryResult<Vec<ScopeRow>> {
    scopes::table
        .filter(scopes::resource_server_id.eq(api_id))
        .order(scopes::name.asc())
        .select(ScopeRow::as_select())
        .load(conn)
}

/// Every registered API, by audience.
pub fn find_apis(conn: &mut DbConn) -> QueryResult<Vec<Api>> {
    resource_servers::table
        .order(resource_servers::audience.asc())
        .select(Api::as_select())
        .load(conn)
}

/// The audiences of every registered API, sorted.
pub fn find_api_audiences(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    resource_servers::table
        .select(resource_servers::audience)
        .order(resource_servers::audience.asc())
        .load(conn)
}

pub fn find_all_scope_names(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    scopes::table
        .select(scopes::name)
        .distinct()
        .order(scopes::name.asc())
        .load(conn)
}
