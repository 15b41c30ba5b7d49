//! Diesel queries for clients, redirect URIs, APIs and scopes.

use diesel::prelude::*;

use super::model::Client;
use crate::db::fixed::{Bind, Fixed, FixedSql};
use crate::db::schema::{oauth_clients, oauth_redirect_uris, users};
use crate::db::{DbConn, on_backend};
use diesel::sql_types::BigInt;

/// The columns of a new client.
#[derive(Debug)]
pub struct NewClient<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub is_public: bool,
    pub secret_hash: Option<&'a str>,
    pub auth_method: &'a str,
    pub grant_types: &'a str,
    pub allowed_scopes: &'a str,
    pub secret_encrypted: Option<&'a [u8]>,
    pub jwks_uri: Option<&'a str>,
    pub jwks: Option<&'a str>,
    pub introspect_audiences: Option<&'a str>,
    pub subject_type: &'a str,
    pub sector_identifier: Option<&'a str>,
    pub id_token_signed_response_alg: Option<&'a str>,
    pub post_logout_redirect_uris: &'a str,
    pub backchannel_logout_uri: Option<&'a str>,
}

pub fn insert_client(conn: &mut DbConn, c: &NewClient<'_>, now: i64) -> QueryResult<()> {
    diesel::insert_into(oauth_clients::table)
        .values((
            oauth_clients::id.eq(c.id),
            oauth_clients::name.eq(c.name),
            oauth_clients::owner_user_id.eq(c.owner_user_id),
            oauth_clients::is_public.eq(c.is_public),
            oauth_clients::secret_hash.eq(c.secret_hash),
            oauth_clients::secret_pepper_version.eq(c.secret_hash.map(|_| 1)),
            oauth_clients::token_endpoint_auth_method.eq(c.auth_method),
            oauth_clients::grant_types.eq(c.grant_types),
            oauth_clients::allowed_scopes.eq(c.allowed_scopes),
            oauth_clients::secret_encrypted.eq(c.secret_encrypted),
            oauth_clients::jwks_uri.eq(c.jwks_uri),
            oauth_clients::jwks.eq(c.jwks),
            oauth_clients::introspect_audiences.eq(c.introspect_audiences),
            oauth_clients::subject_type.eq(c.subject_type),
            oauth_clients::sector_identifier.eq(c.sector_identifier),
            oauth_clients::id_token_signed_response_alg.eq(c.id_token_signed_response_alg),
            oauth_clients::post_logout_redirect_uris.eq(c.post_logout_redirect_uris),
            oauth_clients::backchannel_logout_uri.eq(c.backchannel_logout_uri),
            oauth_clients::created_at.eq(now),
            oauth_clients::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn insert_redirect_uri(
    conn: &mut DbConn,
    client_id: &str,
    uri: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(oauth_redirect_uris::table)
        .values((
            oauth_redirect_uris::client_id.eq(client_id),
            oauth_redirect_uris::uri.eq(uri),
            oauth_redirect_uris::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find_client(conn: &mut DbConn, id: &str) -> QueryResult<Option<Client>> {
    oauth_clients::table
        .find(id)
        .select(Client::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_redirect_uris(conn: &mut DbConn, client_id: &str) -> QueryResult<Vec<String>> {
    oauth_redirect_uris::table
        .filter(oauth_redirect_uris::client_id.eq(client_id))
        .order(oauth_redirect_uris::created_at.asc())
        .select(oauth_redirect_uris::uri)
        .load(conn)
}

/// The columns of a new authorization code.
#[derive(Debug)]
pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub audience: &'a str,
    pub code_challenge: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
    /// OpenID Connect (`openid` granted): what the ID token will say of the sign-in.
    pub oidc: Option<&'a CodeOidc>,
}

/// What an ID token needs from its authorization request and sign-in, kept with the code and then
/// with the refresh family it starts.
#[derive(Debug, Clone, Default)]
pub struct CodeOidc {
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub sid: String,
    /// The checked `claims` request (`oidc::parse_claims_request`).
    pub claims: Option<String>,
}

pub fn insert_code(conn: &mut DbConn, c: &NewCode<'_>) -> QueryResult<()> {
    use crate::db::schema::authorization_codes as ac;
    diesel::insert_into(ac::table)
        .values((
            ac::code_hash.eq(c.code_hash),
            ac::client_id.eq(c.client_id),
            ac::user_id.eq(c.user_id),
            ac::redirect_uri.eq(c.redirect_uri),
            ac::scope.eq(c.scope),
            ac::audience.eq(c.audience),
            ac::code_challenge.eq(c.code_challenge),
            ac::code_challenge_method.eq("S256"),
            ac::created_at.eq(c.created_at),
            ac::expires_at.eq(c.expires_at),
            ac::nonce.eq(c.oidc.and_then(|o| o.nonce.as_deref())),
            ac::auth_time.eq(c.oidc.map(|o| o.auth_time)),
            ac::sid.eq(c.oidc.map(|o| o.sid.as_str())),
            ac::claims.eq(c.oidc.and_then(|o| o.claims.as_deref())),
        ))
        .execute(conn)
        .map(|_| ())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::db::schema::authorization_codes)]
pub struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub audience: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub refresh_family_id: Option<String>,
    pub access_token_jti: Option<String>,
    pub access_token_exp: Option<i64>,
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    pub claims: Option<String>,
}

pub fn find_code(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<CodeRow>> {
    use crate::db::schema::authorization_codes as ac;
    // Built in each arm: `as_select` is typed for one backend.
    on_backend!(conn, |c| ac::table
        .find(code_hash)
        .select(CodeRow::as_select())
        .get_result(c)
        .optional())
}

/// Consumes an unused, unexpired code, recording the access token (and the refresh family, when
/// there is one) it buys; true when this call won.
fn consume_code(
    conn: &mut DbConn,
    code_hash: &str,
    now: i64,
    jti: &str,
    jti_exp: i64,
    family_id: Option<&str>,
) -> QueryResult<bool> {
    Fixed::<ConsumeCodeSql>::new(&[
        Bind::Int(now),
        Bind::Text(jti),
        Bind::Int(jti_exp),
        Bind::NullText(family_id),
        Bind::Text(code_hash),
        Bind::Int(now),
    ])
    .execute_on(conn)
    .map(|n| n == 1)
}

/// The columns of a new refresh-token family (one per grant).
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub audience: String,
    /// OpenID Connect: the sign-in the family's ID tokens keep describing.
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    pub claims: Option<String>,
}

fn insert_family(conn: &mut DbConn, f: &NewFamily, now: i64, expires_at: i64) -> QueryResult<()> {
    use crate::db::schema::refresh_token_families as rf;
    let insert = diesel::insert_into(rf::table).values((
        rf::id.eq(&f.id),
        rf::client_id.eq(&f.client_id),
        rf::user_id.eq(&f.user_id),
        rf::scope.eq(&f.scope),
        rf::audience.eq(&f.audience),
        rf::created_at.eq(now),
        rf::expires_at.eq(expires_at),
        rf::auth_time.eq(f.auth_time),
        rf::sid.eq(&f.sid),
        rf::claims.eq(&f.claims),
    ));
    on_backend!(conn, |c| insert.execute(c)).map(|_| ())
}

/// Revokes a family and records the ids of the access tokens issued from it, so they are refused too.
pub fn revoke_family(
    conn: &mut DbConn,
    family_id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<()> {
    use crate::db::schema::refresh_token_families as rf;
    use crate::db::schema::refresh_tokens as rt;
    diesel::update(
        rf::table
            .filter(rf::id.eq(family_id))
            .filter(rf::revoked_at.is_null()),
    )
    .set((rf::revoked_at.eq(now), rf::revoked_reason.eq(reason)))
    .execute(conn)?;
    let issued: Vec<(Option<String>, Option<i64>)> = rt::table
        .filter(rt::family_id.eq(family_id))
        .select((rt::access_token_jti, rt::access_token_exp))
        .load(conn)?;
    for (jti, exp) in issued {
        if let (Some(jti), Some(exp)) = (jti, exp)
            && exp > now
        {
            insert_revoked_jti(conn, &jti, Some(family_id), now, exp)?;
        }
    }
    Ok(())
}

pub fn insert_revoked_jti(
    conn: &mut DbConn,
    jti: &str,
    family_id: Option<&str>,
    now: i64,
    expires_at: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    // Two replays of one code may revoke the same jti at once: the second insert does nothing (a
    // check before the insert would race, and on PostgreSQL a failed insert aborts the transaction).
    diesel::sql_query(
        "INSERT INTO revoked_access_tokens (jti, family_id, revoked_at, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
    )
    .bind::<Text, _>(jti)
    .bind::<Nullable<Text>, _>(family_id)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(expires_at)
    .execute(conn)
    .map(|_| ())
}

/// A refresh token to store (by its hash) with the access token issued beside it.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub token_hash: String,
    pub family_id: String,
    pub now: i64,
    pub expires_at: i64,
    pub jti: String,
    pub jti_exp: i64,
}

/// Inserts the next refresh token of a family the caller holds locked and live in its write
/// transaction ([`lock_live_family`]).
fn insert_refresh_token(conn: &mut DbConn, new: &NewRefresh) -> QueryResult<()> {
    use crate::db::schema::refresh_tokens as rt;
    let insert = diesel::insert_into(rt::table).values((
        rt::token_hash.eq(&new.token_hash),
        rt::family_id.eq(&new.family_id),
        rt::created_at.eq(new.now),
        rt::expires_at.eq(new.expires_at),
        rt::access_token_jti.eq(&new.jti),
        rt::access_token_exp.eq(new.jti_exp),
    ));
    on_backend!(conn, |c| insert.execute(c)).map(|_| ())
}

/// True when the family is not revoked. On PostgreSQL its row stays locked until the transaction
/// ends, so a concurrent revocation waits and then sees (and revokes) what this transaction issues;
/// on SQLite the caller's write transaction holds the database's write lock already.
fn lock_live_family(conn: &mut DbConn, family_id: &str) -> QueryResult<bool> {
    use crate::db::schema::refresh_token_families as rf;
    let query = rf::table
        .filter(rf::id.eq(family_id))
        .filter(rf::revoked_at.is_null())
        .select(rf::id);
    let found: Option<String> = match &mut *conn {
        DbConn::Pg(pg) => query.for_update().get_result(pg).optional()?,
        DbConn::Sqlite(sqlite) => query.get_result(sqlite).optional()?,
    };
    Ok(found.is_some())
}

/// How the write of a rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationWrite {
    /// The presented token is now used and the next one stored.
    Rotated,
    /// The presented token was used already (a concurrent use won): nothing written.
    Lost,
    /// The family was revoked meanwhile: nothing stored.
    FamilyRevoked,
}

/// The write of a rotation: marks the presented token used if it still is unused (so of concurrent
/// uses exactly one wins) and stores `next` if the family is still live. On PostgreSQL one
/// statement, which holds the family's row locked until it ends, so a concurrent revocation waits
/// and then sees (and revokes) `next` too; on SQLite three, in the caller's write transaction
/// (`db::Conn::atomic`).
pub fn rotate_refresh(
    conn: &mut DbConn,
    presented_hash: &str,
    next: &NewRefresh,
) -> QueryResult<RotationWrite> {
    if let DbConn::Pg(pg) = conn {
        let (used, stored) = Fixed::<RotateRefreshSql>::new(&[
            Bind::Int(next.now),
            Bind::Text(presented_hash),
            Bind::Text(&next.family_id),
            Bind::Text(&next.token_hash),
            Bind::Int(next.now),
            Bind::Int(next.expires_at),
            Bind::Text(&next.jti),
            Bind::Int(next.jti_exp),
        ])
        .get_result::<(i64, i64)>(pg)?;
        return Ok(match (used, stored) {
            (0, _) => RotationWrite::Lost,
            (_, 0) => RotationWrite::FamilyRevoked,
            _ => RotationWrite::Rotated,
        });
    }
    if !use_refresh_token(conn, presented_hash, next.now)? {
        return Ok(RotationWrite::Lost);
    }
    if !lock_live_family(conn, &next.family_id)? {
        return Ok(RotationWrite::FamilyRevoked);
    }
    insert_refresh_token(conn, next)?;
    Ok(RotationWrite::Rotated)
}

/// The write of a code exchange: consumes the code if it is unused and unexpired (so of
/// concurrent redemptions exactly one wins), recording the access token (and the refresh family)
/// it buys, and when there is a family, creates it with its first token. False when the code was
/// not consumed (nothing written). On PostgreSQL one statement; on SQLite three, in the caller's
/// write transaction (`db::Conn::atomic`).
pub fn redeem_code(
    conn: &mut DbConn,
    code_hash: &str,
    jti: &str,
    jti_exp: i64,
    family: Option<(&NewFamily, i64, &NewRefresh)>,
    now: i64,
) -> QueryResult<bool> {
    if let DbConn::Pg(pg) = conn {
        let (family_id, family_expires, first_hash) = match family {
            Some((f, expires, first)) => (Some(f.id.as_str()), expires, Some(&*first.token_hash)),
            None => (None, 0, None),
        };
        // The family takes the code's client, user, scope and audience.
        let (won, _) = Fixed::<RedeemCodeSql>::new(&[
            Bind::Int(now),
            Bind::Text(jti),
            Bind::Int(jti_exp),
            Bind::NullText(family_id),
            Bind::Text(code_hash),
            Bind::Int(now),
            Bind::NullText(family_id),
            Bind::Int(now),
            Bind::Int(family_expires),
            Bind::NullText(family_id),
            Bind::NullText(first_hash),
            Bind::Int(now),
            Bind::Int(family_expires),
            Bind::Text(jti),
            Bind::Int(jti_exp),
        ])
        .get_result::<(i64, i64)>(pg)?;
        return Ok(won == 1);
    }
    let family_id = family.map(|(f, _, _)| f.id.as_str());
    if !consume_code(conn, code_hash, now, jti, jti_exp, family_id)? {
        return Ok(false);
    }
    if let Some((f, expires, first)) = family {
        insert_family(conn, f, now, expires)?;
        insert_refresh_token(conn, first)?;
    }
    Ok(true)
}

/// PostgreSQL's rotation in one statement ([`rotate_refresh`]).
struct RotateRefreshSql;
impl FixedSql for RotateRefreshSql {
    const SQL: &'static str = "WITH used AS ( \
            UPDATE refresh_tokens SET used_at = ? \
            WHERE token_hash = ? AND used_at IS NULL RETURNING family_id \
          ), live AS ( \
            SELECT id FROM refresh_token_families \
            WHERE id = ? AND revoked_at IS NULL FOR UPDATE \
          ), stored AS ( \
            INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at, \
              access_token_jti, access_token_exp) \
            SELECT ?, live.id, ?, ?, ?, ? FROM live WHERE EXISTS (SELECT 1 FROM used) \
            RETURNING 1 \
          ) \
          SELECT (SELECT count(*) FROM used), (SELECT count(*) FROM stored)";
    type Row = (BigInt, BigInt);
}

/// PostgreSQL's redemption in one statement ([`redeem_code`]).
struct RedeemCodeSql;
impl FixedSql for RedeemCodeSql {
    const SQL: &'static str = "WITH won AS ( \
            UPDATE authorization_codes SET consumed_at = ?, access_token_jti = ?, \
              access_token_exp = ?, refresh_family_id = ? \
            WHERE code_hash = ? AND consumed_at IS NULL AND expires_at > ? \
            RETURNING client_id, user_id, scope, audience, auth_time, sid, claims \
          ), family AS ( \
            INSERT INTO refresh_token_families \
              (id, client_id, user_id, scope, audience, created_at, expires_at, auth_time, sid, \
               claims) \
            SELECT ?, client_id, user_id, scope, audience, ?, ?, auth_time, sid, claims FROM won \
            WHERE ?::text IS NOT NULL \
            RETURNING id \
          ), first AS ( \
            INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at, \
              access_token_jti, access_token_exp) \
            SELECT ?, id, ?, ?, ?, ? FROM family \
            RETURNING 1 \
          ) \
          SELECT (SELECT count(*) FROM won), (SELECT count(*) FROM first)";
    type Row = (BigInt, BigInt);
}

/// SQLite's step of a redemption that consumes the code ([`consume_code`]).
struct ConsumeCodeSql;
impl FixedSql for ConsumeCodeSql {
    const SQL: &'static str = "UPDATE authorization_codes SET consumed_at = ?, \
          access_token_jti = ?, access_token_exp = ?, refresh_family_id = ? \
          WHERE code_hash = ? AND consumed_at IS NULL AND expires_at > ?";
    type Row = ();
}

/// SQLite's step of a rotation that uses the presented token ([`use_refresh_token`]).
struct UseRefreshSql;
impl FixedSql for UseRefreshSql {
    const SQL: &'static str =
        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL";
    type Row = ();
}

/// A refresh token with its family.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub family_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub audience: String,
    pub token_expires_at: i64,
    pub family_expires_at: i64,
    pub family_revoked: bool,
    pub token_created_at: i64,
    pub token_used: bool,
    /// The family's user is disabled: refused until re-enabled (nothing is revoked).
    pub user_disabled: bool,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    pub claims: Option<String>,
}

pub fn find_refresh(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<RefreshRow>> {
    use crate::db::schema::refresh_token_families as rf;
    use crate::db::schema::refresh_tokens as rt;
    type Row = (
        String,
        String,
        Option<String>,
        String,
        String,
        i64,
        i64,
        Option<i64>,
        i64,
        Option<i64>,
        bool,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    // The user's state is a subquery (a family may have no user).
    let user_disabled = diesel::dsl::exists(
        users::table
            .select(users::id)
            .filter(users::id.nullable().eq(rf::user_id))
            .filter(users::disabled_at.is_not_null()),
    );
    let query = rt::table
        .inner_join(rf::table)
        .filter(rt::token_hash.eq(token_hash))
        .select((
            rf::id,
            rf::client_id,
            rf::user_id,
            rf::scope,
            rf::audience,
            rt::expires_at,
            rf::expires_at,
            rf::revoked_at,
            rt::created_at,
            rt::used_at,
            user_disabled,
            rf::auth_time,
            rf::sid,
            rf::claims,
        ));
    // `get_result`, not `first`: a lookup by a unique key needs no `LIMIT`, and SQLite (3.47 on)
    // compiles a bound `LIMIT ?` for its value, so re-binding it re-prepares the statement on every
    // run (a quarter of a refresh's CPU for this query).
    let row: Option<Row> = on_backend!(conn, |c| query.get_result(c).optional())?;
    Ok(row.map(|r| RefreshRow {
        family_id: r.0,
        client_id: r.1,
        user_id: r.2,
        scope: r.3,
        audience: r.4,
        token_expires_at: r.5,
        family_expires_at: r.6,
        family_revoked: r.7.is_some(),
        token_created_at: r.8,
        token_used: r.9.is_some(),
        user_disabled: r.10,
        auth_time: r.11,
        sid: r.12,
        claims: r.13,
    }))
}

/// Whether an access token that verified is still good, in one query: its `jti` is not revoked, its
/// client exists and is enabled, the user who owns the client is not disabled, and its subject is not
/// a disabled (or deleted) user.
pub fn access_token_live(
    conn: &mut DbConn,
    jti: &str,
    client_id: &str,
    sub: &str,
) -> QueryResult<bool> {
    use crate::db::schema::revoked_access_tokens as ra;
    use diesel::dsl::{exists, not};
    let disabled = users::table
        .select(users::id)
        .filter(users::disabled_at.is_not_null());
    let mut query = oauth_clients::table
        .filter(oauth_clients::id.eq(client_id))
        .filter(oauth_clients::disabled_at.is_null())
        .filter(not(exists(
            disabled.filter(users::id.nullable().eq(oauth_clients::owner_user_id)),
        )))
        .filter(not(exists(disabled.filter(users::id.eq(sub)))))
        .filter(not(exists(ra::table.find(jti).select(ra::jti))))
        .into_boxed();
    // A user's token dies with the user (`tessera user delete`).
    if sub.starts_with("usr_") {
        query = query.filter(exists(users::table.find(sub).select(users::id)));
    }
    query.count().get_result::<i64>(conn).map(|n| n > 0)
}

/// True when the access token `jti` was revoked (the row lives until the token's own expiry).
pub fn is_jti_revoked(conn: &mut DbConn, jti: &str) -> QueryResult<bool> {
    use crate::db::schema::revoked_access_tokens as ra;
    ra::table
        .find(jti)
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}

/// Records an assertion's `jti` for its client until `expires_at`; false when it was already used.
pub fn record_assertion_jti(
    conn: &mut DbConn,
    client_id: &str,
    jti: &str,
    expires_at: i64,
) -> QueryResult<bool> {
    use crate::db::schema::used_assertion_jtis as uj;
    let result = diesel::insert_into(uj::table)
        .values((
            uj::client_id.eq(client_id),
            uj::jti.eq(jti),
            uj::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match result {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Marks a refresh token used; true when this call won the rotation.
fn use_refresh_token(conn: &mut DbConn, token_hash: &str, now: i64) -> QueryResult<bool> {
    Fixed::<UseRefreshSql>::new(&[Bind::Int(now), Bind::Text(token_hash)])
        .execute_on(conn)
        .map(|n| n == 1)
}

pub fn find_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    audience: &str,
) -> QueryResult<Option<String>> {
    use crate::db::schema::consents as c;
    c::table
        .find((user_id, client_id, audience))
        .select(c::scope)
        .get_result(conn)
        .optional()
}

/// Remembers the scopes a user granted a client (the union with what was granted before).
pub fn upsert_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    audience: &str,
    scope: &str,
    now: i64,
) -> QueryResult<()> {
    use crate::db::schema::consents as c;
    match find_consent(conn, user_id, client_id, audience)? {
        Some(existing) => {
            let mut all: Vec<&str> = existing
                .split(' ')
                .chain(scope.split(' '))
                .filter(|s| !s.is_empty())
                .collect();
            all.sort_unstable();
            all.dedup();
            diesel::update(c::table.find((user_id, client_id, audience)))
                .set((c::scope.eq(all.join(" ")), c::updated_at.eq(now)))
                .execute(conn)
                .map(|_| ())
        }
        None => diesel::insert_into(c::table)
            .values((
                c::user_id.eq(user_id),
                c::client_id.eq(client_id),
                c::audience.eq(audience),
                c::scope.eq(scope),
                c::created_at.eq(now),
                c::updated_at.eq(now),
            ))
            .execute(conn)
            .map(|_| ()),
    }
}

/// Clients by name, optionally only those owned by `owner_user_id`.
/// Sets (or, with `None`, removes) a client's own token rate limit; false when there is no such client.
pub fn update_client_token_rate_limit(
    conn: &mut DbConn,
    id: &str,
    limit: Option<i32>,
    now: i64,
) -> QueryResult<bool> {
    diesel::update(oauth_clients::table.find(id))
        .set((
            oauth_clients::token_rate_limit.eq(limit),
            oauth_clients::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn find_clients(conn: &mut DbConn, owner_user_id: Option<&str>) -> QueryResult<Vec<Client>> {
    let mut query = oauth_clients::table
        .order((oauth_clients::name.asc(), oauth_clients::id.asc()))
        .select(Client::as_select())
        .into_boxed();
    if let Some(owner) = owner_user_id {
        query = query.filter(oauth_clients::owner_user_id.eq(owner));
    }
    query.load(conn)
}

pub fn delete_redirect_uris(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(oauth_redirect_uris::table.filter(oauth_redirect_uris::client_id.eq(client_id)))
        .execute(conn)
}

pub fn update_client_secret(
    conn: &mut DbConn,
    id: &str,
    secret_hash: Option<&str>,
    secret_encrypted: Option<&[u8]>,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(oauth_clients::table.find(id))
        .set((
            oauth_clients::secret_hash.eq(secret_hash),
            oauth_clients::secret_pepper_version.eq(secret_hash.map(|_| 1)),
            oauth_clients::secret_encrypted.eq(secret_encrypted),
            oauth_clients::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn touch_client(conn: &mut DbConn, id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(oauth_clients::table.find(id))
        .set(oauth_clients::updated_at.eq(now))
        .execute(conn)
}

pub fn delete_client(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(oauth_clients::table.find(id)).execute(conn)
}

/// Records that `client` used a nonce (its HMAC), until `expires_at`; false when it had already.
pub fn insert_used_nonce(
    conn: &mut DbConn,
    client_id: &str,
    nonce_hash: &str,
    expires_at: i64,
) -> QueryResult<bool> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO used_nonces (client_id, nonce_hash, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (client_id, nonce_hash) DO NOTHING",
    )
    .bind::<Text, _>(client_id)
    .bind::<Text, _>(nonce_hash)
    .bind::<BigInt, _>(expires_at)
    .execute(conn)
    .map(|n| n == 1)
}

/// Keeps the `claims` request of the grant an access token came from, for UserInfo.
pub fn insert_access_token_claims(
    conn: &mut DbConn,
    jti: &str,
    claims: &str,
    expires_at: i64,
) -> QueryResult<()> {
    use crate::db::schema::access_token_claims as atc;
    diesel::insert_into(atc::table)
        .values((
            atc::jti.eq(jti),
            atc::claims.eq(claims),
            atc::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The `claims` request of the grant an access token came from, when it made one.
pub fn find_grant_claims(conn: &mut DbConn, jti: &str) -> QueryResult<Option<String>> {
    use crate::db::schema::access_token_claims as atc;
    atc::table
        .find(jti)
        .select(atc::claims)
        .get_result(conn)
        .optional()
}

/// Records that session `sid` of `user_id` signed in to `client_id` (once per pair).
pub fn insert_session_client(
    conn: &mut DbConn,
    sid: &str,
    client_id: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO session_clients (sid, client_id, user_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sid, client_id) DO NOTHING",
    )
    .bind::<Text, _>(sid)
    .bind::<Text, _>(client_id)
    .bind::<Text, _>(user_id)
    .bind::<BigInt, _>(now)
    .execute(conn)
    .map(|_| ())
}

/// The clients session `sid` signed in to, its records of them deleted.
pub fn take_session_clients(conn: &mut DbConn, sid: &str) -> QueryResult<Vec<Client>> {
    use crate::db::schema::session_clients as sc;
    let ids: Vec<String> = sc::table
        .filter(sc::sid.eq(sid))
        .select(sc::client_id)
        .load(conn)?;
    diesel::delete(sc::table.filter(sc::sid.eq(sid))).execute(conn)?;
    oauth_clients::table
        .filter(oauth_clients::id.eq_any(&ids))
        .select(Client::as_select())
        .load(conn)
}
