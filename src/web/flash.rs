//! Flashes: what a form created (a client secret, an API key) carried across its POST → 303 → GET,
//! so a reload never creates a second one and the secret is shown exactly once.
//!
//! A flash is stored server-side (table `flashes`), bound to the session that made it and to one
//! target page, sealed under the master key (AES-256-GCM with the session and target as associated
//! data: a database dump or backup holds no usable secret, and a row cannot be replayed for another
//! session or page), deleted by the GET that reads it, and refused after [`FLASH_TTL`] seconds even
//! when nobody read it. Neither the URL nor a cookie ever carries the secret.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::crypto::SecretBytes;
use crate::db::schema::flashes;
use crate::db::{self, DbConn};
use crate::error::AppError;

/// How long a flash waits for its page: long enough for a slow redirect, short enough that a
/// forgotten one is gone in minutes.
pub const FLASH_TTL: i64 = 300;

/// The page after a create: which title it shows, the secret (once) and a note.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// What happened: `app_created`, `secret_regenerated`, `key_created`, `key_rotated`.
    pub kind: String,
    pub secret: Option<String>,
    pub note: String,
}

/// `Debug` never prints the secret.
impl std::fmt::Debug for Flash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flash")
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

fn aad(session_hash: &str, target: &str) -> String {
    format!("flash:{session_hash}:{target}")
}

/// Stores `flash` for the next GET of `target` in this session, replacing one that waits there.
/// Expired flashes of every session are deleted on the way (they are few: one per create).
pub fn put(
    conn: &mut DbConn,
    master: &SecretBytes,
    session_hash: &str,
    target: &str,
    flash: &Flash,
) -> Result<(), AppError> {
    let plain = serde_json::to_vec(flash).map_err(AppError::internal)?;
    let sealed = crate::jwt::keys::seal(master, &aad(session_hash, target), &plain)
        .map_err(AppError::internal)?;
    let now = db::now();
    crate::db::transaction(conn, |conn| {
        diesel::delete(flashes::table.filter(flashes::expires_at.le(now))).execute(conn)?;
        diesel::delete(
            flashes::table
                .filter(flashes::session_hash.eq(session_hash))
                .filter(flashes::target.eq(target)),
        )
        .execute(conn)?;
        diesel::insert_into(flashes::table)
            .values((
                flashes::id.eq(crate::crypto::random_id("fls", 20)),
                flashes::session_hash.eq(session_hash),
                flashes::target.eq(target),
                flashes::sealed.eq(sealed),
                flashes::created_at.eq(now),
                flashes::expires_at.eq(now + FLASH_TTL),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// The flash waiting for `target` in this session, deleted as it is read: of two concurrent reads
/// only the one whose delete removed the row gets it. `None` when there is none (already shown,
/// expired, another session's, or sealed under other key material).
pub fn take(
    conn: &mut DbConn,
    master: &SecretBytes,
    session_hash: &str,
    target: &str,
) -> Result<Option<Flash>, AppError> {
    let now = db::now();
    let found: Option<(String, Vec<u8>, i64)> = flashes::table
        .filter(flashes::session_hash.eq(session_hash))
        .filter(flashes::target.eq(target))
        .order(flashes::created_at.desc())
        .select((flashes::id, flashes::sealed, flashes::expires_at))
        .get_result(conn)
        .optional()?;
    let Some((id, sealed, expires_at)) = found else {
        return Ok(None);
    };
    let deleted = diesel::delete(flashes::table.find(&id)).execute(conn)?;
    if deleted != 1 || expires_at <= now {
        return Ok(None);
    }
    let Ok(plain) = crate::jwt::keys::open(master, &aad(session_hash, target), &sealed) else {
        tracing::warn!("a flash could not be opened (other key material?); dropped");
        return Ok(None);
    };
    Ok(serde_json::from_slice(&plain).ok())
}
