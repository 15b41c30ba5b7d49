//! Users and sessions as stored, and the validated inputs that create them.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{sessions, users};
use crate::error::AppError;

crate::db::string_id! {
    /// A user's id (`usr_…`).
    UserId
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    #[diesel(deserialize_as = String)]
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[diesel(embed)]
    pub profile: Profile,
    pub email_verified: bool,
}

/// What a user says about themself: the OpenID Connect `profile` claims they can edit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_username: Option<String>,
    /// A BCP 47 language tag (`en-US`, `es`).
    pub locale: Option<String>,
    /// An `https` URL of their picture.
    pub picture: Option<String>,
}

impl Profile {
    /// Checks a profile as a user typed it: each field trimmed (empty means unset), names at most
    /// 200 characters, a username of at most 64 without spaces, a BCP 47 language tag, an `https`
    /// picture URL.
    pub fn checked(self) -> Result<Self, AppError> {
        use crate::i18n::Detail;
        let bad = |detail: Detail| AppError::BadRequest {
            code: "invalid_profile",
            detail: Some(detail),
        };
        let clean = |v: Option<String>, field: &'static str, max: usize| {
            let v = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            match v {
                Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
                    Err(bad(Detail::ProfileTooLong { field, max }))
                }
                v => Ok(v),
            }
        };
        let out = Self {
            name: clean(self.name, "name", 200)?,
            given_name: clean(self.given_name, "given_name", 200)?,
            family_name: clean(self.family_name, "family_name", 200)?,
            preferred_username: clean(self.preferred_username, "preferred_username", 64)?,
            locale: clean(self.locale, "locale", 35)?,
            picture: clean(self.picture, "picture", 2000)?,
        };
        if out
            .preferred_username
            .as_deref()
            .is_some_and(|u| u.chars().any(char::is_whitespace))
        {
            return Err(bad(Detail::ProfileUsername));
        }
        if let Some(locale) = &out.locale {
            let mut parts = locale.split('-');
            let primary = parts.next().unwrap_or("");
            let ok = (2..=3).contains(&primary.len())
                && primary.bytes().all(|b| b.is_ascii_alphabetic())
                && parts.all(|p| {
                    (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !ok {
                return Err(bad(Detail::ProfileLocale));
            }
        }
        if let Some(picture) = &out.picture {
            let ok = url::Url::parse(picture)
                .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
            if !ok {
                return Err(bad(Detail::ProfilePicture));
            }
        }
        Ok(out)
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

/// What the API and CLI show of a user (never the password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            is_admin: u.is_admin,
            disabled: u.disabled_at.is_some(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub expires_at: i64,
    /// When the user signed in (OpenID Connect `auth_time`).
    pub created_at: i64,
    /// The sign-in's public id (OpenID Connect `sid`).
    pub sid: String,
}

/// A syntactically plausible email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let e = raw.trim().to_lowercase();
        let invalid = || AppError::BadRequest {
            code: "invalid_email",
            detail: None,
        };
        if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = e.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(e))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the length policy. `Debug` never shows it.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, AppError> {
        let n = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            return Err(AppError::BadRequest {
                code: "weak_password",
                detail: None,
            });
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}
