//! The parameters of an OAuth request, read once: a form body without repeated parameters (RFC 6749
//! §3.1, §3.2), its `Authorization` header, and the headers of a response that carries tokens.

use std::borrow::Cow;
use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::AppError;
use crate::i18n::Detail;
use crate::request::header_text;

/// Parses an `application/x-www-form-urlencoded` OAuth request body; a repeated parameter is an error
/// (RFC 6749 §3.1), even one sent once without a value, as is a body of another type.
pub fn parse_form(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HashMap<String, String>, AppError> {
    parse_pairs(content_type, body).map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
}

/// A form's pairs: borrowed from the body when there was nothing to decode.
type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// [`parse_form`] as the pairs in the order sent (a token request has a handful: a list is
/// cheaper to build and to search than a map).
fn parse_pairs<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Pairs<'a>, AppError> {
    let is_form = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(AppError::oauth("invalid_request", Detail::FormBodyRequired));
    }
    let mut pairs = form_pairs(body);
    if let Some(name) = repeated(&pairs) {
        return Err(AppError::oauth(
            "invalid_request",
            Detail::RepeatedParameter {
                name: printable(name),
            },
        ));
    }
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    pairs.retain(|(_, v)| !v.is_empty());
    Ok(pairs)
}

/// The pairs of a form body, as `url::form_urlencoded::parse` reads them, without decoding the
/// names and values that have nothing to decode (no `%`, no `+`): a token or an assertion is hundreds
/// of plain base64url characters, which the decoder copied one byte at a time (a sixth of an
/// introspection's work), nor copying them out of the body. The body is checked to be UTF-8 once,
/// not each name and value apart: cut at the ASCII `&` and `=`, the pieces of a text are text.
fn form_pairs(body: &[u8]) -> Pairs<'_> {
    let whole = std::str::from_utf8(body).ok();
    let mut pairs = Vec::new();
    let mut start = 0;
    while start <= body.len() {
        let end = memchr::memchr(b'&', &body[start..]).map_or(body.len(), |at| start + at);
        if end > start {
            pairs.push(form_pair(body, whole, start..end));
        }
        start = end + 1;
    }
    pairs
}

/// The `name=value` at `at` in `body` (no `=`: an empty value); `whole` is the body when it is UTF-8.
fn form_pair<'a>(
    body: &'a [u8],
    whole: Option<&'a str>,
    at: std::ops::Range<usize>,
) -> (Cow<'a, str>, Cow<'a, str>) {
    let pair = &body[at.clone()];
    if memchr::memchr2(b'%', b'+', pair).is_some() {
        let (name, value) = url::form_urlencoded::parse(pair)
            .into_owned()
            .next()
            .unwrap_or_default();
        return (Cow::Owned(name), Cow::Owned(value));
    }
    let (name, value) = match memchr::memchr(b'=', pair) {
        Some(eq) => (at.start..at.start + eq, at.start + eq + 1..at.end),
        None => (at.clone(), at.end..at.end),
    };
    let piece = |r: std::ops::Range<usize>| match whole.and_then(|w| w.get(r.clone())) {
        Some(s) => Cow::Borrowed(s),
        None => text(&body[r]),
    };
    (piece(name), piece(value))
}

/// Bytes as text, invalid sequences replaced.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` first: `from_utf8_lossy` walks the bytes in chunks, several times slower on a
    // 500-byte token.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The first parameter name that occurs more than once, with or without a value. RFC 6749 §3.1:
/// "Request and response parameters MUST NOT be included more than once."
pub fn repeated<K: AsRef<str>, V>(params: &[(K, V)]) -> Option<&str> {
    // A handful of parameters: comparing each with those before it beats hashing them.
    if params.len() <= 16 {
        return params
            .iter()
            .enumerate()
            .find(|(i, (k, _))| {
                params[..*i]
                    .iter()
                    .any(|(seen, _)| seen.as_ref() == k.as_ref())
            })
            .map(|(_, (k, _))| k.as_ref());
    }
    let mut seen = std::collections::HashSet::with_capacity(params.len());
    params
        .iter()
        .map(|(k, _)| k.as_ref())
        .find(|k| !seen.insert(*k))
}

/// A caller's parameter name fit for an `error_description` (RFC 6749 §5.2: printable ASCII
/// without `"` and `\`), at most 64 characters.
pub fn printable(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// A form request to the token, revocation or introspection endpoint: its parameters and its
/// `Authorization` header. `Debug` shows neither (they hold secrets, codes and tokens).
pub struct FormRequest<'a> {
    /// The parameters with a value, each name once, in the order sent (borrowed from the body
    /// when there was nothing to decode).
    params: Pairs<'a>,
    pub authorization: Option<&'a str>,
}

impl std::fmt::Debug for FormRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormRequest([redacted])")
    }
}

impl<'a> FormRequest<'a> {
    /// Reads the body and the `Authorization` header (a header that is not visible ASCII is a
    /// malformed client authentication: 401 `invalid_client`).
    pub fn read(req: &'a HttpRequest, body: &'a [u8]) -> Result<Self, AppError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(header_text);
        let params = parse_pairs(content_type, body)?;
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| {
                header_text(v).ok_or_else(|| {
                    AppError::oauth("invalid_client", Detail::AuthorizationHeaderMalformed)
                })
            })
            .transpose()?;
        Ok(Self {
            params,
            authorization,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Takes a parameter out of the request (its value, when it was sent).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.take_text(name).map(Cow::into_owned)
    }

    /// [`FormRequest::take`], still borrowed from the body when it was not decoded.
    pub fn take_text(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let at = self.params.iter().position(|(k, _)| k == name)?;
        Some(self.params.swap_remove(at).1)
    }

    /// A parameter the request cannot do without (`invalid_request` when absent).
    pub fn require(&self, name: &'static str) -> Result<&str, AppError> {
        self.get(name)
            .ok_or_else(|| AppError::oauth("invalid_request", Detail::MissingParameter { name }))
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` on a response that carries tokens (RFC 6749 §5.1).
pub fn no_store(mut res: actix_web::HttpResponse) -> actix_web::HttpResponse {
    // Constants: `from_static` checks its text where it runs, here at compile time.
    const NO_STORE: header::HeaderValue = header::HeaderValue::from_static("no-store");
    const NO_CACHE: header::HeaderValue = header::HeaderValue::from_static("no-cache");
    res.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    res.headers_mut().insert(header::PRAGMA, NO_CACHE);
    res
}

/// The kinds of token Tessera issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
    ApiKey,
}

impl TokenKind {
    /// The lookup order: the hinted kind first (an unknown hint is ignored, RFC 7009 §2.1).
    pub fn order(hint: Option<&str>) -> [TokenKind; 3] {
        match hint {
            Some("refresh_token") => [
                TokenKind::RefreshToken,
                TokenKind::AccessToken,
                TokenKind::ApiKey,
            ],
            Some("api_key") => [
                TokenKind::ApiKey,
                TokenKind::AccessToken,
                TokenKind::RefreshToken,
            ],
            _ => [
                TokenKind::AccessToken,
                TokenKind::RefreshToken,
                TokenKind::ApiKey,
            ],
        }
    }

    /// Whether `token` can be of this kind at all (no database work for the wrong shape).
    pub fn fits(self, token: &str, settings: &crate::config::Settings) -> bool {
        match self {
            TokenKind::ApiKey => crate::apikeys::well_formed(settings, token),
            TokenKind::AccessToken => token.bytes().filter(|b| *b == b'.').count() == 2,
            TokenKind::RefreshToken => {
                token.len() == 43
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
        }
    }
}

/// A revocation or introspection request: the form, and the token it is about.
pub fn request_parts<'a>(
    req: &'a HttpRequest,
    body: &'a [u8],
) -> Result<(FormRequest<'a>, Cow<'a, str>), AppError> {
    let mut form = FormRequest::read(req, body)?;
    form.require("token")?;
    let token = form.take_text("token").unwrap_or_default();
    Ok((form, token))
}

/// The form of `POST /oauth/revoke` and `POST /oauth/introspect` (read as pairs by `request_parts`;
/// this describes them).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
pub struct RevokeForm {
    /// An access token, a refresh token or an API key.
    #[schema(min_length = 1)]
    token: String,
    /// `access_token`, `refresh_token` or `api_key`: which kind to look for first.
    token_type_hint: Option<String>,
    client_id: Option<String>,
    /// `client_secret_post`.
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

#[cfg(test)]
mod form_tests {
    fn reference(body: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(body).into_owned().collect()
    }

    #[test]
    fn form_pairs_read_as_the_url_crate_does() {
        for body in [
            &b""[..],
            b"&&",
            b"token=abc.def-ghi_j",
            b"a=1&b=&c&=d&a=2",
            b"scope=read+write&redirect_uri=http%3A%2F%2Fx%2Fcb",
            b"name%=bad%zz&x=%41%42+%2B",
            b"k=\xff\xfe&%ff=1",
            b"==&=x=y",
            "k=é&ñ=ü&x".as_bytes(),
            b"a=ok&b=\xc3&c=\xc3\xa9&\xc3=d&e",
        ] {
            let pairs: Vec<(String, String)> = super::form_pairs(body)
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(pairs, reference(body), "{body:?}");
        }
    }
}
