//! Diesel queries for signing keys.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub public_jwk: String,
    pub private_key_encrypted: Vec<u8>,
    pub created_at: i64,
    pub publish_at: i64,
    pub sign_from: i64,
    pub sign_until: Option<i64>,
    pub retire_at: Option<i64>,
}

/// A key to store: `publish_at ≤ sign_from`; `successor_of` names the key it takes over from (for
/// the first key of an algorithm's chain, `first:<alg>:<the newest key of that algorithm, or none>`,
/// so that two nodes starting a chain at once conflict on the column's unique index).
#[derive(Debug)]
pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub public_jwk: &'a str,
    pub private_key_encrypted: &'a [u8],
    pub created_at: i64,
    pub publish_at: i64,
    pub sign_from: i64,
    pub successor_of: Option<&'a str>,
}

pub fn insert_signing_key(conn: &mut DbConn, key: &NewSigningKey<'_>) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(key.kid),
            signing_keys::algorithm.eq(key.algorithm),
            signing_keys::public_jwk.eq(key.public_jwk),
            signing_keys::private_key_encrypted.eq(key.private_key_encrypted),
            signing_keys::created_at.eq(key.created_at),
            signing_keys::publish_at.eq(key.publish_at),
            signing_keys::sign_from.eq(key.sign_from),
            signing_keys::successor_of.eq(key.successor_of),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Keys not yet retired at `now`, oldest first.
pub fn find_live_signing_keys(conn: &mut DbConn, now: i64) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::retire_at
                .is_null()
                .or(signing_keys::retire_at.gt(now)),
        )
        .order(signing_keys::sign_from.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Every key, newest first (for `signing-key list` and the dashboard).
pub fn find_all_signing_keys(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order(signing_keys::sign_from.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// The head of `algorithm`'s chain: its newest key with no end to its signing window.
pub fn find_head(conn: &mut DbConn, algorithm: &str) -> QueryResult<Option<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::algorithm.eq(algorithm))
        .filter(signing_keys::sign_until.is_null())
        .filter(signing_keys::retire_at.is_null())
        .order(signing_keys::sign_from.desc())
        .select(SigningKeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// The newest key of `algorithm` ever made (to name what a chain's new first key follows).
#[expect(
    clippy::disallowed_methods,
    reason = "the newest of many rows, read once per rotation: the re-prepared LIMIT costs nothing here"
)]
pub fn find_newest(conn: &mut DbConn, algorithm: &str) -> QueryResult<Option<String>> {
    signing_keys::table
        .filter(signing_keys::algorithm.eq(algorithm))
        .order(signing_keys::created_at.desc())
        .select(signing_keys::kid)
        .first(conn)
        .optional()
}

/// Ends `kid`'s signing window at `sign_until` and retires it at `retire_at`.
pub fn end_signing_key(
    conn: &mut DbConn,
    kid: &str,
    sign_until: i64,
    retire_at: i64,
) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(kid))
        .set((
            signing_keys::sign_until.eq(sign_until),
            signing_keys::retire_at.eq(retire_at),
        ))
        .execute(conn)
        .map(|_| ())
}
