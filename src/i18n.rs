//! The message catalogue (en-US, es-ES) and `Accept-Language` negotiation.

/// A language Tessera speaks. en-US is the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    /// Picks the best supported language from an `Accept-Language` header (RFC 9110 §12.5.4).
    pub fn negotiate(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Self::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "es" => Lang::Es,
                "en" => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en-US",
            Lang::Es => "es-ES",
        }
    }
}

/// Every error code with its en-US and es-ES text; `{0}` stands for the detail.
const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "api_key_not_active",
        "Only an active API key can be rotated.",
        "Solo se puede rotar una clave de API activa.",
    ),
    (
        "missing_api_key",
        "No API key or access token was sent.",
        "No se envió ninguna clave de API ni token de acceso.",
    ),
    (
        "invalid_api_key",
        "The API key or access token is not valid.",
        "La clave de API o el token de acceso no es válido.",
    ),
    (
        "expired_api_key",
        "The API key has expired.",
        "La clave de API ha caducado.",
    ),
    (
        "revoked_api_key",
        "The API key has been revoked.",
        "La clave de API ha sido revocada.",
    ),
    (
        "disabled_api_key",
        "The API key belongs to a disabled user; it works again once they are re-enabled.",
        "La clave de API pertenece a un usuario deshabilitado; volverá a funcionar cuando se le rehabilite.",
    ),
    (
        "insufficient_permissions",
        "The credential lacks a required scope: {0}",
        "La credencial no tiene un alcance necesario: {0}",
    ),
    (
        "wrong_environment",
        "An API key manages only keys of its own environment, and this is a {0} key.",
        "Una clave de API solo gestiona claves de su propio entorno, y esta es una clave {0}.",
    ),
    (
        "invalid_audience",
        "The credential is not valid for this API: {0}",
        "La credencial no es válida para esta API: {0}",
    ),
    (
        "insufficient_scope",
        "The credential lacks a required scope: {0}",
        "La credencial no tiene un alcance necesario: {0}",
    ),
    (
        "rate_limited",
        "Too many requests: try again in {0} seconds",
        "Demasiadas solicitudes: inténtelo de nuevo en {0} segundos",
    ),
    (
        "too_many_failed_sign_ins",
        "Too many failed sign-ins: try again in {0} seconds.",
        "Demasiados inicios de sesión fallidos: inténtelo de nuevo en {0} segundos.",
    ),
    (
        "unsupported_token_type",
        "This token type cannot be revoked here: {0}",
        "Este tipo de token no se puede revocar aquí: {0}",
    ),
    (
        "invalid_client",
        "Client authentication failed: {0}",
        "La autenticación del cliente falló: {0}",
    ),
    (
        "invalid_grant",
        "The grant is invalid, expired or revoked: {0}",
        "La concesión no es válida, ha caducado o fue revocada: {0}",
    ),
    (
        "unauthorized_client",
        "This client may not use this grant type: {0}",
        "Este cliente no puede usar este tipo de concesión: {0}",
    ),
    (
        "unsupported_grant_type",
        "The grant type is not supported: {0}",
        "El tipo de concesión no es compatible: {0}",
    ),
    (
        "invalid_scope",
        "The requested scope is invalid: {0}",
        "El alcance solicitado no es válido: {0}",
    ),
    (
        "invalid_target",
        "The requested resource is not a registered API: {0}",
        "El recurso solicitado no es una API registrada: {0}",
    ),
    (
        "server_error",
        "The server could not complete the request.",
        "El servidor no pudo completar la solicitud.",
    ),
    (
        "not_found",
        "The requested resource does not exist.",
        "El recurso solicitado no existe.",
    ),
    (
        "method_not_allowed",
        "This method is not allowed on this resource.",
        "Este método no está permitido en este recurso.",
    ),
    (
        "invalid_json",
        "The request body is not valid JSON: {0}",
        "El cuerpo de la solicitud no es JSON válido: {0}",
    ),
    (
        "invalid_form",
        "The form body could not be read: {0}",
        "No se pudo leer el cuerpo del formulario: {0}",
    ),
    (
        "invalid_request",
        "The request is invalid: {0}",
        "La solicitud no es válida: {0}",
    ),
    (
        "invalid_query",
        "The query string is invalid: {0}",
        "La cadena de consulta no es válida: {0}",
    ),
    (
        "payload_too_large",
        "The request body is larger than the limit of {0} bytes.",
        "El cuerpo de la solicitud supera el límite de {0} bytes.",
    ),
    (
        "request_timeout",
        "The request body did not arrive in full within {0} seconds.",
        "El cuerpo de la solicitud no llegó completo en {0} segundos.",
    ),
    (
        "unsupported_media_type",
        "The request body must be sent as {0}.",
        "El cuerpo de la solicitud debe enviarse como {0}.",
    ),
    (
        "unauthenticated",
        "Sign in or present valid credentials to use this resource.",
        "Inicie sesión o presente credenciales válidas para usar este recurso.",
    ),
    (
        "forbidden",
        "You are not allowed to do this.",
        "No tiene permiso para realizar esta acción.",
    ),
    (
        "csrf_failed",
        "The form's security token is missing or invalid. Reload the page and try again.",
        "El token de seguridad del formulario falta o no es válido. Recargue la página e inténtelo de nuevo.",
    ),
    (
        "invalid_credentials",
        "The email or password is incorrect.",
        "El correo electrónico o la contraseña no son correctos.",
    ),
    (
        "invalid_email",
        "The email address is not valid.",
        "La dirección de correo electrónico no es válida.",
    ),
    (
        "weak_password",
        "The password must be at least 12 and at most 1024 characters long.",
        "La contraseña debe tener al menos 12 y como máximo 1024 caracteres.",
    ),
    (
        "email_taken",
        "A user with this email address already exists.",
        "Ya existe un usuario con esta dirección de correo electrónico.",
    ),
    (
        "conflict",
        "The resource already exists.",
        "El recurso ya existe.",
    ),
    (
        "service_unavailable",
        "The service is temporarily unavailable. Try again shortly.",
        "El servicio no está disponible temporalmente. Inténtelo de nuevo en breve.",
    ),
    (
        "server_busy",
        "Too many sign-ins are being checked right now. Try again in a moment.",
        "Se están comprobando demasiados inicios de sesión en este momento. Inténtelo de nuevo en un instante.",
    ),
    (
        "internal_error",
        "Something went wrong on our side. Quote the request id when you report it.",
        "Algo salió mal en nuestro servidor. Indique el identificador de la solicitud al informar del problema.",
    ),
    // Error pages on the browser's routes and the sign-in page (issue 13, `pages`).
    (
        "page_bad_request",
        "The request could not be understood",
        "No se pudo entender la solicitud",
    ),
    (
        "page_unauthenticated",
        "Sign-in required",
        "Es necesario iniciar sesión",
    ),
    ("page_forbidden", "Access denied", "Acceso denegado"),
    ("page_not_found", "Page not found", "Página no encontrada"),
    (
        "page_method_not_allowed",
        "This page cannot be used that way",
        "Esta página no se puede usar de esa manera",
    ),
    (
        "page_too_many_requests",
        "Too many requests",
        "Demasiadas solicitudes",
    ),
    (
        "page_unavailable",
        "Temporarily unavailable",
        "No disponible temporalmente",
    ),
    (
        "page_server_error",
        "Something went wrong",
        "Algo salió mal",
    ),
    (
        "page_request_refused",
        "The request was refused",
        "La solicitud fue rechazada",
    ),
    (
        "page_request_id",
        "Request id",
        "Identificador de la solicitud",
    ),
    ("page_home", "Go to the dashboard", "Ir al panel"),
    (
        "sign_in_to_continue",
        "Sign in to continue to {0}",
        "Inicie sesión para continuar en {0}",
    ),
];

/// The message for an error `code` in `lang`, with `{0}` replaced by `detail` (or removed with its colon).
pub fn message(lang: Lang, code: &str, detail: Option<&str>) -> String {
    let (template, detail) = match CATALOGUE.iter().find(|(c, _, _)| *c == code) {
        Some((_, en, es)) => (
            if lang == Lang::Es { *es } else { *en },
            detail.unwrap_or(""),
        ),
        None if lang == Lang::Es => ("La solicitud falló ({0}).", code),
        None => ("The request failed ({0}).", code),
    };
    if detail.is_empty() {
        template.replace(": {0}", ".").replace("{0}", "")
    } else {
        template.replace("{0}", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_by_quality() {
        assert_eq!(Lang::negotiate(Some("es-ES,es;q=0.9,en;q=0.8")), Lang::Es);
        assert_eq!(Lang::negotiate(Some("en-US,es;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-FR, es-MX;q=0.3")), Lang::Es);
        assert_eq!(Lang::negotiate(Some("de")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }

    #[test]
    fn every_code_has_both_languages_and_fills_details() {
        for (code, en, es) in CATALOGUE {
            assert!(!en.is_empty() && !es.is_empty() && en != es, "{code}");
        }
        assert_eq!(
            message(Lang::Es, "payload_too_large", Some("65536")),
            "El cuerpo de la solicitud supera el límite de 65536 bytes."
        );
        assert_eq!(
            message(Lang::En, "invalid_json", None),
            "The request body is not valid JSON."
        );
    }
}
