//! The API a service token is for, and the scopes a grant gets on it.

use std::sync::Arc;

use crate::apis::{ApiScopes, find_api};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

/// The API a service token is asked for (`resource`, else the default API: the issuer), or
/// `invalid_target`.
pub async fn requested_api(
    state: &actix_web::web::Data<OAuth>,
    resource: Option<&str>,
) -> Result<Arc<ApiScopes>, AppError> {
    let audience = resource.unwrap_or_else(|| state.settings.issuer_str());
    find_api(&state.apis, audience).await?.ok_or_else(|| {
        AppError::oauth(
            "invalid_target",
            Detail::Value {
                value: audience.chars().take(128).collect(),
            },
        )
    })
}

/// The scopes a token gets, sorted and space-separated: the requested ones (each allowed to the
/// client and defined on the API), or, when none are requested, every allowed scope the API defines
/// except `offline_access` and the OpenID Connect scopes.
pub fn grant_scopes(
    requested: Option<&str>,
    allowed: &[&str],
    defined: &[String],
) -> Result<String, AppError> {
    let defines = |s: &str| defined.iter().any(|d| d == s);
    let mut out: Vec<&str> = match requested {
        Some(req) => {
            let mut out = Vec::new();
            for s in req.split(' ').filter(|s| !s.is_empty()) {
                if !allowed.contains(&s) || !defines(s) {
                    return Err(AppError::oauth(
                        "invalid_scope",
                        Detail::ScopeNotAllowed {
                            scope: s.chars().take(64).collect(),
                        },
                    ));
                }
                out.push(s);
            }
            out
        }
        None => allowed
            .iter()
            .copied()
            .filter(|s| {
                *s != "offline_access" && !crate::apis::IDENTITY_SCOPES.contains(s) && defines(s)
            })
            .collect(),
    };
    out.sort_unstable();
    out.dedup();
    Ok(out.join(" "))
}
