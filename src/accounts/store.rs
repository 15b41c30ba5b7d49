//! Diesel queries for users and sessions. Synchronous; run them through `db::run`.

use diesel::prelude::*;

use super::model::{Session, User};
use crate::db::DbConn;
use crate::db::schema::{sessions, users};

pub fn insert_user(
    conn: &mut DbConn,
    id: &str,
    email: &str,
    password_hash: &str,
    is_admin: bool,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::email.eq(email),
            users::password_hash.eq(password_hash),
            users::is_admin.eq(is_admin),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_users(conn: &mut DbConn, limit: i64, offset: i64) -> QueryResult<Vec<User>> {
    users::table
        .order(users::created_at.asc())
        .then_order_by(users::id.asc())
        .limit(limit)
        .offset(offset)
        .select(User::as_select())
        .load(conn)
}

pub fn insert_session(
    conn: &mut DbConn,
    id_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(expires_at),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent),
            sessions::sid.eq(crate::crypto::random_id("sid", 22)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The live session with this hash and its enabled user.
pub fn find_session(
    conn: &mut DbConn,
    id_hash: &str,
    now: i64,
) -> QueryResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::expires_at.gt(now))
        .filter(users::disabled_at.is_null())
        .select((Session::as_select(), User::as_select()))
        .get_result(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConn, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)
}

pub fn update_user_flags(
    conn: &mut DbConn,
    id: &str,
    is_admin: bool,
    disabled_at: Option<i64>,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::is_admin.eq(is_admin),
            users::disabled_at.eq(disabled_at),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Writes a user's profile claims (already checked) and bumps `updated_at`.
pub fn update_profile(
    conn: &mut DbConn,
    id: &str,
    p: &super::model::Profile,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::name.eq(&p.name),
            users::given_name.eq(&p.given_name),
            users::family_name.eq(&p.family_name),
            users::preferred_username.eq(&p.preferred_username),
            users::locale.eq(&p.locale),
            users::picture.eq(&p.picture),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn delete_user_sessions(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

/// Deletes a user; the database cascades to their sessions, codes, consents, refresh tokens and keys.
pub fn delete_user(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}
