//! The message catalogue (en-US, es-ES) and `Accept-Language` negotiation.
//!
//! Every text a user reads in an error comes from here, in both languages. Two tables:
//! - `CATALOGUE`: one `Entry { key, en, es }` per error code (the `error` field of a body). The
//!   placeholder `{detail}` is replaced by the error's `Detail` rendered in the same language (or,
//!   without one, removed together with a `: ` before it).
//! - `details!` (the `Detail` enum): one line per detail, `Name { field: Type, .. } => "en", "es";`.
//!   Placeholders are the field names in braces, `{field}`; `{n|one|other}` picks a plural form by
//!   whether `n` is 1. Field values are data (a grant type, a scope, a number), never English prose;
//!   a `Detail` field renders in the caller's language. A detail without both texts cannot compile.
//!
//! Unit tests check both texts are non-empty, have the same placeholders, and differ (unless the
//! text is only values), and that every error code the source uses has an entry.

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

    /// The first language of an OpenID Connect `ui_locales` (space-separated BCP 47 tags, in order
    /// of preference) that Tessera speaks.
    pub fn first_supported(ui_locales: &str) -> Option<Self> {
        ui_locales.split(' ').find_map(|tag| {
            match tag
                .split('-')
                .next()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("en") => Some(Lang::En),
                Some("es") => Some(Lang::Es),
                _ => None,
            }
        })
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en-US",
            Lang::Es => "es-ES",
        }
    }
}

/// One catalogue entry: a key and its en-US and es-ES texts with `{name}` placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub key: &'static str,
    pub en: &'static str,
    pub es: &'static str,
}

impl Entry {
    fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::Es => self.es,
        }
    }
}

/// Every error code with its en-US and es-ES text; `{detail}` stands for the rendered `Detail`.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        key: "api_key_not_active",
        en: "Only an active API key can be rotated.",
        es: "Solo se puede rotar una clave de API activa.",
    },
    Entry {
        key: "api_key_already_rotated",
        en: "This API key has already been rotated: rotate the key that replaced it.",
        es: "Esta clave de API ya se rotó: rote la clave que la sustituyó.",
    },
    Entry {
        key: "missing_api_key",
        en: "No API key or access token was sent.",
        es: "No se envió ninguna clave de API ni token de acceso.",
    },
    Entry {
        key: "invalid_api_key",
        en: "The API key or access token is not valid.",
        es: "La clave de API o el token de acceso no es válido.",
    },
    Entry {
        key: "expired_api_key",
        en: "The API key has expired.",
        es: "La clave de API ha caducado.",
    },
    Entry {
        key: "revoked_api_key",
        en: "The API key has been revoked.",
        es: "La clave de API ha sido revocada.",
    },
    Entry {
        key: "disabled_api_key",
        en: "The API key belongs to a disabled user; it works again once they are re-enabled.",
        es: "La clave de API pertenece a un usuario deshabilitado; volverá a funcionar cuando se le rehabilite.",
    },
    Entry {
        key: "insufficient_permissions",
        en: "The credential lacks a required scope: {detail}.",
        es: "La credencial no tiene un alcance necesario: {detail}.",
    },
    Entry {
        key: "wrong_environment",
        en: "An API key manages only keys of its own environment, and this is a {detail} key.",
        es: "Una clave de API solo gestiona claves de su propio entorno, y esta es una clave {detail}.",
    },
    Entry {
        key: "invalid_audience",
        en: "The credential is not valid for this API: {detail}.",
        es: "La credencial no es válida para esta API: {detail}.",
    },
    Entry {
        key: "insufficient_scope",
        en: "The credential lacks a required scope: {detail}.",
        es: "La credencial no tiene un alcance necesario: {detail}.",
    },
    Entry {
        key: "rate_limited",
        en: "Too many requests: try again in {detail}.",
        es: "Demasiadas solicitudes: inténtelo de nuevo en {detail}.",
    },
    Entry {
        key: "too_many_failed_sign_ins",
        en: "Too many failed sign-ins: try again in {detail}.",
        es: "Demasiados inicios de sesión fallidos: inténtelo de nuevo en {detail}.",
    },
    Entry {
        key: "unsupported_token_type",
        en: "This token type cannot be revoked here: {detail}.",
        es: "Este tipo de token no se puede revocar aquí: {detail}.",
    },
    Entry {
        key: "invalid_client",
        en: "Client authentication failed: {detail}.",
        es: "La autenticación del cliente falló: {detail}.",
    },
    Entry {
        key: "invalid_grant",
        en: "The grant is invalid, expired or revoked: {detail}.",
        es: "La concesión no es válida, ha caducado o fue revocada: {detail}.",
    },
    Entry {
        key: "unauthorized_client",
        en: "This client may not use this grant type: {detail}.",
        es: "Este cliente no puede usar este tipo de concesión: {detail}.",
    },
    Entry {
        key: "unsupported_grant_type",
        en: "The grant type is not supported: {detail}.",
        es: "El tipo de concesión no es compatible: {detail}.",
    },
    Entry {
        key: "invalid_scope",
        en: "The requested scope is invalid: {detail}.",
        es: "El alcance solicitado no es válido: {detail}.",
    },
    Entry {
        key: "invalid_target",
        en: "The requested resource is not a registered API: {detail}.",
        es: "El recurso solicitado no es una API registrada: {detail}.",
    },
    Entry {
        key: "invalid_authorization_request",
        en: "The application that sent you here is unknown or asked to return you to an address it has not registered.",
        es: "La aplicación que le envió aquí es desconocida o pidió devolverle a una dirección que no ha registrado.",
    },
    Entry {
        key: "client_has_no_secret",
        en: "This client has no secret to regenerate: it is public or signs with its own key.",
        es: "Este cliente no tiene un secreto que regenerar: es público o firma con su propia clave.",
    },
    Entry {
        key: "cannot_change_self",
        en: "You cannot disable your own account or remove your own administrator role.",
        es: "No puede deshabilitar su propia cuenta ni quitarse su propio rol de administrador.",
    },
    Entry {
        key: "access_denied",
        en: "The user or the server denied the request.",
        es: "El usuario o el servidor denegó la solicitud.",
    },
    Entry {
        key: "unsupported_response_type",
        en: "The response type is not supported; use code.",
        es: "El tipo de respuesta no es compatible; use code.",
    },
    Entry {
        key: "temporarily_unavailable",
        en: "The server cannot handle the request right now. Try again shortly.",
        es: "El servidor no puede atender la solicitud ahora. Inténtelo de nuevo en breve.",
    },
    Entry {
        key: "server_error",
        en: "The server could not complete the request.",
        es: "El servidor no pudo completar la solicitud.",
    },
    Entry {
        key: "not_found",
        en: "The requested resource does not exist.",
        es: "El recurso solicitado no existe.",
    },
    Entry {
        key: "method_not_allowed",
        en: "This method is not allowed on this resource.",
        es: "Este método no está permitido en este recurso.",
    },
    Entry {
        key: "invalid_json",
        en: "The request body is not valid JSON: {detail}.",
        es: "El cuerpo de la solicitud no es JSON válido: {detail}.",
    },
    Entry {
        key: "invalid_form",
        en: "The form body could not be read: {detail}.",
        es: "No se pudo leer el cuerpo del formulario: {detail}.",
    },
    Entry {
        key: "invalid_request",
        en: "The request is invalid: {detail}.",
        es: "La solicitud no es válida: {detail}.",
    },
    Entry {
        key: "invalid_query",
        en: "The query string is invalid: {detail}.",
        es: "La cadena de consulta no es válida: {detail}.",
    },
    Entry {
        key: "payload_too_large",
        en: "The request body is larger than the limit of {detail}.",
        es: "El cuerpo de la solicitud supera el límite de {detail}.",
    },
    Entry {
        key: "request_timeout",
        en: "The request body did not arrive in full within {detail}.",
        es: "El cuerpo de la solicitud no llegó completo en {detail}.",
    },
    Entry {
        key: "unsupported_content_encoding",
        en: "The request body must be sent uncompressed, without a Content-Encoding.",
        es: "El cuerpo de la solicitud debe enviarse sin comprimir, sin Content-Encoding.",
    },
    Entry {
        key: "unsupported_media_type",
        en: "The request body must be sent as {detail}.",
        es: "El cuerpo de la solicitud debe enviarse como {detail}.",
    },
    Entry {
        key: "login_required",
        en: "The user must sign in, and the request asked for no page (prompt=none).",
        es: "El usuario debe iniciar sesión, y la solicitud no admite ninguna página (prompt=none).",
    },
    Entry {
        key: "consent_required",
        en: "The user has not consented to these scopes, and the request asked for no page (prompt=none).",
        es: "El usuario no ha dado su consentimiento a estos alcances, y la solicitud no admite ninguna página (prompt=none).",
    },
    Entry {
        key: "interaction_required",
        en: "The user must interact with the server, and the request asked for no page (prompt=none).",
        es: "El usuario debe interactuar con el servidor, y la solicitud no admite ninguna página (prompt=none).",
    },
    Entry {
        key: "invalid_profile",
        en: "The profile was not saved: {detail}.",
        es: "El perfil no se guardó: {detail}.",
    },
    Entry {
        key: "missing_token",
        en: "No access token was sent: use the Authorization header (Bearer) or, on a POST, the access_token form field.",
        es: "No se envió ningún token de acceso: use la cabecera Authorization (Bearer) o, en un POST, el campo de formulario access_token.",
    },
    Entry {
        key: "invalid_token",
        en: "The access token is not valid: it is unknown, expired or revoked, or its user is gone.",
        es: "El token de acceso no es válido: es desconocido, ha caducado o se revocó, o su usuario ya no existe.",
    },
    Entry {
        key: "unauthenticated",
        en: "Sign in or present valid credentials to use this resource.",
        es: "Inicie sesión o presente credenciales válidas para usar este recurso.",
    },
    Entry {
        key: "forbidden",
        en: "You are not allowed to do this.",
        es: "No tiene permiso para realizar esta acción.",
    },
    Entry {
        key: "csrf_failed",
        en: "The form's security token is missing or invalid. Reload the page and try again.",
        es: "El token de seguridad del formulario falta o no es válido. Recargue la página e inténtelo de nuevo.",
    },
    Entry {
        key: "invalid_credentials",
        en: "The email or password is incorrect.",
        es: "El correo electrónico o la contraseña no son correctos.",
    },
    Entry {
        key: "invalid_email",
        en: "The email address is not valid.",
        es: "La dirección de correo electrónico no es válida.",
    },
    Entry {
        key: "weak_password",
        en: "The password must be at least 12 and at most 1024 characters long.",
        es: "La contraseña debe tener al menos 12 y como máximo 1024 caracteres.",
    },
    Entry {
        key: "email_taken",
        en: "A user with this email address already exists.",
        es: "Ya existe un usuario con esta dirección de correo electrónico.",
    },
    Entry {
        key: "conflict",
        en: "The resource already exists.",
        es: "El recurso ya existe.",
    },
    Entry {
        key: "service_unavailable",
        en: "The service is temporarily unavailable. Try again shortly.",
        es: "El servicio no está disponible temporalmente. Inténtelo de nuevo en breve.",
    },
    Entry {
        key: "server_busy",
        en: "Too many sign-ins are being checked right now. Try again in a moment.",
        es: "Se están comprobando demasiados inicios de sesión en este momento. Inténtelo de nuevo en un instante.",
    },
    Entry {
        key: "internal_error",
        en: "Something went wrong on our side. Quote the request id when you report it.",
        es: "Algo salió mal en nuestro servidor. Indique el identificador de la solicitud al informar del problema.",
    },
    // Error pages on the browser's routes and the sign-in page (issue 13, `pages`).
    Entry {
        key: "page_bad_request",
        en: "The request could not be understood",
        es: "No se pudo entender la solicitud",
    },
    Entry {
        key: "page_unauthenticated",
        en: "Sign-in required",
        es: "Es necesario iniciar sesión",
    },
    Entry {
        key: "page_forbidden",
        en: "Access denied",
        es: "Acceso denegado",
    },
    Entry {
        key: "page_not_found",
        en: "Page not found",
        es: "Página no encontrada",
    },
    Entry {
        key: "page_method_not_allowed",
        en: "This page cannot be used that way",
        es: "Esta página no se puede usar de esa manera",
    },
    Entry {
        key: "page_too_many_requests",
        en: "Too many requests",
        es: "Demasiadas solicitudes",
    },
    Entry {
        key: "page_unavailable",
        en: "Temporarily unavailable",
        es: "No disponible temporalmente",
    },
    Entry {
        key: "page_server_error",
        en: "Something went wrong",
        es: "Algo salió mal",
    },
    Entry {
        key: "page_request_refused",
        en: "The request was refused",
        es: "La solicitud fue rechazada",
    },
    Entry {
        key: "page_request_id",
        en: "Request id",
        es: "Identificador de la solicitud",
    },
    Entry {
        key: "page_home",
        en: "Go to the dashboard",
        es: "Ir al panel",
    },
    Entry {
        key: "sign_in_to_continue",
        en: "Sign in to continue to {detail}",
        es: "Inicie sesión para continuar en {detail}",
    },
];

/// A value put into a message: rendered the same in every language, except a nested `Detail`.
pub trait Arg {
    fn arg(&self, lang: Lang) -> String;
}

macro_rules! plain_arg {
    ($($t:ty),*) => {
        $(impl Arg for $t {
            fn arg(&self, _: Lang) -> String {
                self.to_string()
            }
        })*
    };
}
plain_arg!(String, &'static str, u64, u32, usize, i64);

impl Arg for Box<Detail> {
    fn arg(&self, lang: Lang) -> String {
        self.render(lang)
    }
}

/// A list of names (scopes, audiences), joined with ", ".
impl Arg for Vec<String> {
    fn arg(&self, _: Lang) -> String {
        self.join(", ")
    }
}

macro_rules! details {
    ($(
        $(#[$meta:meta])*
        $name:ident $({ $($field:ident : $ty:ty),* $(,)? })? => $en:literal, $es:literal;
    )*) => {
        /// What exactly went wrong, as a catalogue key with typed values (never free-form text).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Detail {
            $($(#[$meta])* $name $({ $($field: $ty),* })?,)*
        }

        impl Detail {
            /// The catalogue key of this detail (its variant name).
            pub fn key(&self) -> &'static str {
                match self {
                    $(Self::$name { .. } => stringify!($name),)*
                }
            }

            fn entry(&self) -> Entry {
                match self {
                    $(Self::$name { .. } => Entry { key: stringify!($name), en: $en, es: $es },)*
                }
            }

            #[allow(unused_variables)]
            fn args(&self, lang: Lang) -> Vec<(&'static str, String)> {
                match self {
                    $(Self::$name $({ $($field),* })? => vec![$($((stringify!($field), Arg::arg($field, lang))),*)?],)*
                }
            }
        }

        /// Every detail's texts, for the completeness tests.
        pub const DETAILS: &[Entry] = &[$(Entry { key: stringify!($name), en: $en, es: $es },)*];
    };
}

details! {
    /// A number of seconds, for waits and limits.
    Seconds { n: u64 } => "{n} {n|second|seconds}", "{n} {n|segundo|segundos}";
    /// A number of bytes.
    Bytes { n: usize } => "{n} bytes", "{n} bytes";
    /// A value quoted as it was sent or registered (a scope, an audience, a media type).
    Value { value: String } => "{value}", "{value}";

    // Request bodies (JSON, forms, query strings).
    JsonSyntax { line: usize, column: usize } =>
        "syntax error at line {line} column {column}",
        "error de sintaxis en la línea {line}, columna {column}";
    JsonValue { line: usize, column: usize } =>
        "a value has the wrong type or is not allowed (line {line} column {column})",
        "un valor tiene un tipo incorrecto o no está permitido (línea {line}, columna {column})";
    InvalidValue =>
        "a value has the wrong type or is not allowed",
        "un valor tiene un tipo incorrecto o no está permitido";
    MissingField { field: String } => "missing field '{field}'", "falta el campo '{field}'";
    UnknownField { field: String } => "unknown field '{field}'", "campo desconocido '{field}'";
    UnknownVariant { value: String } =>
        "'{value}' is not one of the accepted values",
        "'{value}' no es uno de los valores aceptados";
    TextLength { field: &'static str, max: u64 } =>
        "{field} must have 1 to {max} characters",
        "{field} debe tener de 1 a {max} caracteres";
    NotADuration { field: String, value: String } =>
        "{field}: '{value}' is not a duration (e.g. 30s, 15m, 12h, 90d)",
        "{field}: '{value}' no es una duración (p. ej. 30s, 15m, 12h, 90d)";

    // OAuth requests (token, revocation, introspection, authorization).
    MissingParameter { name: &'static str } => "{name} is missing", "falta {name}";
    RepeatedParameter { name: String } =>
        "the parameter '{name}' is repeated",
        "el parámetro '{name}' está repetido";
    FormBodyRequired =>
        "the body must be application/x-www-form-urlencoded",
        "el cuerpo debe ser application/x-www-form-urlencoded";
    GrantTypeNotSupported { grant_type: String } =>
        "'{grant_type}' is not supported here",
        "'{grant_type}' no se admite aquí";
    ScopeNotAllowed { scope: String } =>
        "'{scope}' is not allowed for this client and API",
        "'{scope}' no está permitido para este cliente y esta API";
    ScopeNotGranted { scope: String } =>
        "'{scope}' was not granted; refresh may only narrow the scope",
        "'{scope}' no se concedió; una renovación solo puede reducir el alcance";
    ClientCredentialsNeedsConfidential =>
        "client_credentials needs a confidential client registered for it",
        "client_credentials requiere un cliente confidencial registrado para ello";
    GrantNotRegistered { grant_type: &'static str } =>
        "this client is not registered for the {grant_type} grant",
        "este cliente no está registrado para la concesión {grant_type}";
    ClientIdNotAssertionIssuer =>
        "client_id differs from the assertion's issuer",
        "client_id difiere del emisor de la aserción";
    AssertionOfOtherClient =>
        "the assertion was issued by another client",
        "la aserción fue emitida por otro cliente";
    CodeInvalid =>
        "the code is unknown, expired, used, or its PKCE verifier does not match",
        "el código es desconocido, ha caducado, ya se usó o su verificador PKCE no coincide";
    CodeRedeemedTwice =>
        "the authorization code was redeemed twice; what it granted is revoked",
        "el código de autorización se canjeó dos veces; lo que concedió queda revocado";
    CodeVerifierFormat =>
        "code_verifier must be 43 to 128 unreserved characters (RFC 7636)",
        "code_verifier debe tener de 43 a 128 caracteres no reservados (RFC 7636)";
    SubjectTypeUnknown { value: String } =>
        "subject_type must be public or pairwise, not {value}",
        "subject_type debe ser public o pairwise, no {value}";
    SectorIdentifierNeeded =>
        "a pairwise client needs a sector: a host name, or redirect URIs that all share one host",
        "un cliente pairwise necesita un sector: un nombre de host, o URI de redirección que compartan todas un host";
    IdTokenAlgUnknown { value: String } =>
        "id_token_signed_response_alg must be RS256, ES256 or EdDSA, not {value}",
        "id_token_signed_response_alg debe ser RS256, ES256 o EdDSA, no {value}";
    ProfileTooLong { field: &'static str, max: usize } =>
        "{field} may have at most {max} characters and no control characters",
        "{field} admite como máximo {max} caracteres y ningún carácter de control";
    ProfileUsername =>
        "the username may not contain spaces",
        "el nombre de usuario no puede contener espacios";
    ProfileLocale =>
        "the language must be a language tag such as es-ES or en",
        "el idioma debe ser una etiqueta de idioma como es-ES o en";
    ProfilePicture =>
        "the picture must be an https URL",
        "la imagen debe ser una URL https";
    LogoutClientMismatch =>
        "client_id is not the audience of id_token_hint",
        "client_id no es la audiencia de id_token_hint";
    LogoutClientUnknown =>
        "the client of this logout request is unknown",
        "el cliente de esta solicitud de cierre de sesión es desconocido";
    PostLogoutRedirectUnregistered =>
        "post_logout_redirect_uri is not one the client registered, or the request names no client",
        "post_logout_redirect_uri no es una de las que registró el cliente, o la solicitud no nombra ningún cliente";
    BearerRequestMalformed =>
        "send the access token once: a Bearer Authorization header or the access_token form field",
        "envíe el token de acceso una sola vez: una cabecera Authorization Bearer o el campo de formulario access_token";
    NonceReused =>
        "this nonce was already used by this client",
        "este cliente ya usó este nonce";
    ClaimsRequestMalformed =>
        "claims must be a JSON object whose userinfo and id_token members map claim names to null or objects",
        "claims debe ser un objeto JSON cuyos miembros userinfo e id_token asignen nombres de claims a null o a objetos";
    PromptInvalid =>
        "prompt must be none, login, consent or select_account, and none alone",
        "prompt debe ser none, login, consent o select_account, y none solo";
    MaxAgeInvalid =>
        "max_age must be a whole number of seconds",
        "max_age debe ser un número entero de segundos";
    ResponseModeUnsupported =>
        "response_mode must be query or form_post",
        "response_mode debe ser query o form_post";
    IdTokenHintInvalid =>
        "id_token_hint is not an ID token this server issued",
        "id_token_hint no es un token de ID emitido por este servidor";
    NonceTooLong =>
        "nonce must be at most 512 characters",
        "nonce debe tener como máximo 512 caracteres";
    TokenRequestMalformed =>
        "the token request is malformed",
        "la solicitud de token está mal formada";
    DecisionAllowOrDeny => "decision must be allow or deny", "decision debe ser allow o deny";
    RefreshTokenUnknown => "unknown refresh token", "token de actualización desconocido";
    ReferenceUnknown =>
        "a record the request names does not exist",
        "un registro que nombra la solicitud no existe";
    RefreshTokenOfOtherClient =>
        "the refresh token was issued to another client",
        "el token de actualización se emitió para otro cliente";
    RefreshTokenReused =>
        "the refresh token was already used; its family is revoked",
        "el token de actualización ya se usó; su familia queda revocada";
    RefreshTokenExpired =>
        "the refresh token is expired or revoked",
        "el token de actualización ha caducado o fue revocado";
    RefreshTokenUserDisabled =>
        "the user the refresh token was issued for is disabled",
        "el usuario para el que se emitió el token de actualización está deshabilitado";

    // Client authentication.
    ClientUnknown =>
        "unknown client, wrong secret or disabled client",
        "cliente desconocido, secreto incorrecto o cliente deshabilitado";
    NoClientAuthentication =>
        "no client authentication was sent",
        "no se envió ninguna autenticación de cliente";
    AuthorizationHeaderMalformed =>
        "malformed Authorization header",
        "cabecera Authorization mal formada";
    AuthorizationSchemeUnsupported =>
        "unsupported Authorization scheme",
        "esquema de Authorization no admitido";
    BasicCredentialsMalformed =>
        "malformed Basic credentials",
        "credenciales Basic mal formadas";
    CredentialsTwice =>
        "send the client credentials once, in Basic or in the body",
        "envíe las credenciales del cliente una sola vez, en Basic o en el cuerpo";
    BasicAndClientSecret =>
        "use one client authentication method, not Basic and client_secret both",
        "use un solo método de autenticación de cliente, no Basic y client_secret a la vez";
    AssertionAndSecret =>
        "use one client authentication method, not an assertion and a secret",
        "use un solo método de autenticación de cliente, no una aserción y un secreto a la vez";
    BodyClientIdDiffers =>
        "client_id in the body differs from the Basic credentials",
        "el client_id del cuerpo difiere de las credenciales Basic";
    AssertionTypeWithoutAssertion =>
        "client_assertion and client_assertion_type go together",
        "client_assertion y client_assertion_type van juntos";
    AssertionTypeUnsupported =>
        "unsupported client_assertion_type",
        "client_assertion_type no admitido";
    IntrospectionNeedsConfidential =>
        "introspection needs a confidential client",
        "la introspección requiere un cliente confidencial";
    ApiKeyNotUsable { code: &'static str } =>
        "the API key is not usable ({code})",
        "la clave de API no se puede usar ({code})";

    // Client-signed JWTs (RFC 7523).
    AssertionInvalid => "the client assertion is invalid", "la aserción del cliente no es válida";
    AssertionMustBeHs256 =>
        "client_secret_jwt assertions must be HS256",
        "las aserciones client_secret_jwt deben ser HS256";
    AssertionMustBeAsymmetric =>
        "private_key_jwt assertions must be RS256, ES256 or EdDSA",
        "las aserciones private_key_jwt deben ser RS256, ES256 o EdDSA";
    ClientKeysUnavailable =>
        "the client's keys could not be fetched",
        "no se pudieron obtener las claves del cliente";
    NotJwtClient =>
        "this client is not registered for JWT authentication",
        "este cliente no está registrado para la autenticación con JWT";
    AssertionSignature =>
        "the assertion's signature does not verify",
        "la firma de la aserción no es válida";
    AssertionClaimsMalformed =>
        "the assertion's claims are malformed; iss, sub, aud and exp are required",
        "los claims de la aserción están mal formados; se requieren iss, sub, aud y exp";
    AssertionIssSub =>
        "iss and sub must both be the client_id",
        "iss y sub deben ser ambos el client_id";
    AssertionAudience =>
        "aud must be the issuer, the token endpoint or this endpoint's URL",
        "aud debe ser el emisor, el endpoint de token o la URL de este endpoint";
    AssertionExpired => "the assertion has expired", "la aserción ha caducado";
    AssertionTooLong =>
        "exp may be at most one hour ahead",
        "exp puede estar como máximo una hora en el futuro";
    IatInFuture => "iat is in the future", "iat está en el futuro";
    AssertionNotYetValid =>
        "the assertion is not valid yet (nbf)",
        "la aserción aún no es válida (nbf)";
    JtiFormat =>
        "jti is missing or longer than 256 characters",
        "jti falta o tiene más de 256 caracteres";
    JtiReused =>
        "this assertion (jti) was already used",
        "esta aserción (jti) ya se usó";

    // Client, API and scope registration.
    UnknownGrantType { value: String } =>
        "unknown grant type '{value}' (expected authorization_code, client_credentials, refresh_token or jwt-bearer)",
        "tipo de concesión desconocido '{value}' (se esperaba authorization_code, client_credentials, refresh_token o jwt-bearer)";
    PublicClientCredentials =>
        "a public client cannot use client_credentials (it has no secret)",
        "un cliente público no puede usar client_credentials (no tiene secreto)";
    RedirectUriInvalid { uri: String, why: Box<Detail> } =>
        "redirect URI '{uri}' {why}",
        "el URI de redirección '{uri}' {why}";
    RedirectUriTwice { uri: String } =>
        "redirect URI '{uri}' is listed twice",
        "el URI de redirección '{uri}' aparece dos veces";
    OnLine { line: usize, what: Box<Detail> } => "Line {line}: {what}", "Línea {line}: {what}";
    CodeGrantNeedsRedirectUri =>
        "authorization_code needs at least one redirect URI",
        "authorization_code requiere al menos un URI de redirección";
    UnknownAuthMethod { value: String } =>
        "unknown authentication method '{value}' (expected client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none)",
        "método de autenticación desconocido '{value}' (se esperaba client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt o none)";
    PublicMeansNone =>
        "public clients use the method none, and only they do",
        "los clientes públicos usan el método none, y solo ellos";
    JwtBearerNeedsJwtAuth =>
        "the jwt-bearer grant needs private_key_jwt or client_secret_jwt (the key that signs the assertions)",
        "la concesión jwt-bearer requiere private_key_jwt o client_secret_jwt (la clave que firma las aserciones)";
    JwksUriInvalid { why: Box<Detail> } => "the jwks_uri {why}", "el jwks_uri {why}";
    PublicKeyInvalid { why: Box<Detail> } => "the public key {why}", "la clave pública {why}";
    PrivateKeyJwtNeedsKeys =>
        "private_key_jwt needs exactly one of a jwks_uri or the public keys (JWKS or PEM)",
        "private_key_jwt requiere exactamente uno de estos: un jwks_uri o las claves públicas (JWKS o PEM)";
    KeysOnlyForPrivateKeyJwt =>
        "a jwks_uri or public keys are only for private_key_jwt clients",
        "un jwks_uri o claves públicas son solo para clientes private_key_jwt";
    ScopeNotRegistered { scope: String } =>
        "scope '{scope}' is not registered (tessera scope create)",
        "el alcance '{scope}' no está registrado (tessera scope create)";
    PublicCannotIntrospect =>
        "a public client cannot introspect (it has no credentials)",
        "un cliente público no puede hacer introspección (no tiene credenciales)";
    UnknownAudience { audience: String, registered: Vec<String> } =>
        "'{audience}' is not the audience of a registered API (registered: {registered})",
        "'{audience}' no es la audiencia de una API registrada (registradas: {registered})";
    NoApiWithAudience { audience: String } =>
        "no API has the audience '{audience}'",
        "ninguna API tiene la audiencia '{audience}'";
    TokenRateLimitRange =>
        "the token rate limit must be 1 to 2147483647",
        "el límite de tokens debe estar entre 1 y 2147483647";
    AudienceFormat =>
        "the audience must be 1 to 512 characters without spaces",
        "la audiencia debe tener de 1 a 512 caracteres sin espacios";
    NotAScopeName { value: String } =>
        "'{value}' is not a scope name (printable ASCII without spaces, quotes or backslashes)",
        "'{value}' no es un nombre de alcance (ASCII imprimible sin espacios, comillas ni barras invertidas)";

    // Why a redirect URI or jwks_uri is refused (after "redirect URI 'x'").
    UriEmpty => "is empty", "está vacío";
    UriWildcard => "must not contain a wildcard", "no debe contener un comodín";
    UriFragment => "must not contain a fragment (#…)", "no debe contener un fragmento (#…)";
    UriCharacter { character: String } =>
        "must not contain {character} (percent-encode it)",
        "no debe contener {character} (codifíquelo con %)";
    UriPercent =>
        "has a '%' that is not followed by two hex digits",
        "tiene un '%' que no va seguido de dos dígitos hexadecimales";
    UriNotAbsolute => "is not an absolute URL with a host", "no es una URL absoluta con host";
    UriCredentials => "must not contain credentials", "no debe contener credenciales";
    UriNeedsHttps =>
        "must use https unless the host is 127.0.0.1, [::1] or localhost",
        "debe usar https salvo que el host sea 127.0.0.1, [::1] o localhost";
    UriScheme { scheme: String } =>
        "uses the unsupported scheme '{scheme}'",
        "usa el esquema no admitido '{scheme}'";

    // Why registered public keys are refused (after "the public key").
    KeysNotJwksOrPem => "is neither a JWKS nor PEM", "no es ni un JWKS ni PEM";
    KeysNotArray => "has a 'keys' that is not an array", "tiene un 'keys' que no es un array";
    KeysNotJwk => "is neither a JWKS (with 'keys') nor a JWK", "no es ni un JWKS (con 'keys') ni un JWK";
    KeysCount { max: usize } => "must hold 1 to {max} keys", "debe contener de 1 a {max} claves";
    KeyPrivateMember { member: String } =>
        "holds private key material ('{member}'): register the public key only",
        "contiene material de clave privada ('{member}'): registre solo la clave pública";
    KeyUse => "has a 'use' other than 'sig'", "tiene un 'use' distinto de 'sig'";
    KeyNotJwk => "is not a valid JWK", "no es un JWK válido";
    KeyRsaModulus => "has a bad RSA modulus", "tiene un módulo RSA incorrecto";
    KeyRsaBits => "must be an RSA key of 2048 to 8192 bits", "debe ser una clave RSA de 2048 a 8192 bits";
    KeyRsaExponent => "has a bad RSA exponent", "tiene un exponente RSA incorrecto";
    KeyEcSize => "needs x and y of 32 bytes (EC P-256)", "necesita x e y de 32 bytes (EC P-256)";
    KeyEcCurve => "must be on the curve P-256 (EC)", "debe estar en la curva P-256 (EC)";
    KeyEdSize => "needs an x of 32 bytes (Ed25519)", "necesita una x de 32 bytes (Ed25519)";
    KeyOkpCurve => "must be Ed25519 (OKP)", "debe ser Ed25519 (OKP)";
    KeySymmetric => "is symmetric ('oct'), not a public key", "es simétrica ('oct'), no una clave pública";
    PemNotBase64 => "has a PEM body that is not base64", "tiene un cuerpo PEM que no es base64";
    PemIncomplete => "is not complete PEM", "no es un PEM completo";
    PemUnknownKey => "is not RSA, EC P-256 or Ed25519", "no es RSA, EC P-256 ni Ed25519";
    PemBadPkcs1 => "is not a valid PKCS#1 RSA public key", "no es una clave pública RSA PKCS#1 válida";
    PemPrivate =>
        "is a private key: register the public key only",
        "es una clave privada: registre solo la clave pública";
    PemLabel { label: String } => "is PEM '{label}', not a public key", "es PEM '{label}', no una clave pública";

    // API keys.
    UnknownKeyType { name: String, known: Vec<String> } =>
        "unknown key type '{name}' (configured: {known})",
        "tipo de clave desconocido '{name}' (configurados: {known})";
    FullAccessTakesNoScopes { key_type: String } =>
        "{key_type} keys have full access and take no scopes; use a restricted type (rk) to limit them",
        "las claves {key_type} tienen acceso total y no admiten alcances; use un tipo restringido (rk) para limitarlas";
    KeysNeedScope { key_type: String } =>
        "{key_type} keys need at least one scope",
        "las claves {key_type} necesitan al menos un alcance";
    ScopeNotOfType { scope: String, key_type: String, allowed: Vec<String> } =>
        "'{scope}' is not one of the scopes of {key_type} keys ({allowed})",
        "'{scope}' no es uno de los alcances de las claves {key_type} ({allowed})";
    ScopeNotPublicOfType { scope: String, key_type: String, allowed: Vec<String> } =>
        "'{scope}' is not one of the public scopes of {key_type} keys ({allowed})",
        "'{scope}' no es uno de los alcances públicos de las claves {key_type} ({allowed})";
    ScopeNotRegisteredValid { scope: String, valid: Vec<String> } =>
        "'{scope}' is not a registered scope (valid: {valid})",
        "'{scope}' no es un alcance registrado (válidos: {valid})";
    EnvLiveOrTest => "env must be live or test", "env debe ser live o test";
    KeyMaxLifetime { key_type: String, days: u64 } =>
        "{key_type} keys live at most {days} {days|day|days}",
        "las claves {key_type} viven como máximo {days} {days|día|días}";
    KeyMinLifetime =>
        "a key must live for at least one second",
        "una clave debe vivir al menos un segundo";
    KeyRateLimitRange =>
        "rate_limit must be between 1 and 10000000 requests per 15 minutes",
        "rate_limit debe estar entre 1 y 10000000 solicitudes cada 15 minutos";
    MetadataObject => "metadata must be a JSON object", "metadata debe ser un objeto JSON";
    MetadataTooLarge { max: usize } =>
        "metadata is larger than {max} bytes",
        "metadata supera los {max} bytes";
}

impl Detail {
    /// This detail's text in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        fill(self.entry().text(lang), &self.args(lang))
    }
}

/// Replaces each `{name}` by its value and each `{name|one|other}` by the form for that number.
fn fill(template: &str, args: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &after[..close];
        let mut parts = inner.split('|');
        let name = parts.next().unwrap_or("");
        let value = args
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str());
        match (value, parts.next(), parts.next()) {
            (Some(v), Some(one), Some(other)) => out.push_str(if v == "1" { one } else { other }),
            (Some(v), _, _) => out.push_str(v),
            (None, _, _) => {
                out.push('{');
                out.push_str(inner);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The message for an error `code` in `lang`, with `{detail}` replaced by `detail` (or removed with its colon).
pub fn message(lang: Lang, code: &str, detail: Option<&Detail>) -> String {
    let Some(entry) = CATALOGUE.iter().find(|e| e.key == code) else {
        let template = match lang {
            Lang::Es => "La solicitud falló ({code}).",
            Lang::En => "The request failed ({code}).",
        };
        return fill(template, &[("code", code.to_owned())]);
    };
    let template = entry.text(lang);
    match detail {
        Some(d) => fill(template, &[("detail", d.render(lang))]),
        None => template
            .replace(": {detail}.", ".")
            .replace(": {detail}", ".")
            .replace("{detail}", ""),
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

    /// The placeholder names of a template, sorted, with their plural forms dropped.
    fn placeholders(template: &str) -> Vec<&str> {
        let mut names = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .unwrap_or_else(|| panic!("unclosed {{ in {template}"));
            names.push(after[..close].split('|').next().unwrap_or(""));
            rest = &after[close + 1..];
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether a text is only values and punctuation: then it reads the same in both languages.
    fn only_values(template: &str) -> bool {
        let mut stripped = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            stripped.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').unwrap_or(after.len() - 1);
            rest = &after[close + 1..];
        }
        stripped.push_str(rest);
        // Units that are the same word in both languages.
        let stripped = stripped.replace("bytes", "");
        !stripped.chars().any(char::is_alphabetic)
    }

    #[test]
    fn every_entry_has_both_languages_with_the_same_placeholders() {
        let mut keys = std::collections::HashSet::new();
        for e in CATALOGUE.iter().chain(DETAILS) {
            assert!(keys.insert(e.key), "{} is listed twice", e.key);
            assert!(!e.en.trim().is_empty(), "{}: no en-US text", e.key);
            assert!(!e.es.trim().is_empty(), "{}: no es-ES text", e.key);
            assert_eq!(
                placeholders(e.en),
                placeholders(e.es),
                "{}: en-US and es-ES differ in placeholders",
                e.key
            );
            assert!(
                e.en != e.es || only_values(e.en),
                "{}: the es-ES text is the en-US text",
                e.key
            );
        }
        for e in CATALOGUE {
            assert!(
                placeholders(e.en).iter().all(|p| *p == "detail"),
                "{}: an error code's text has only {{detail}}",
                e.key
            );
        }
    }

    #[test]
    fn every_detail_placeholder_is_a_field() {
        // Rendering with every field filled leaves no `{` behind.
        for e in DETAILS {
            for text in [e.en, e.es] {
                let names = placeholders(text);
                let args: Vec<(&str, String)> =
                    names.iter().map(|n| (*n, "2".to_owned())).collect();
                assert!(!fill(text, &args).contains('{'), "{}: {text}", e.key);
            }
        }
    }

    /// Every error code the source passes to `AppError` (or to `message`) has a catalogue entry:
    /// a code without one would be answered with a generic text.
    #[test]
    fn every_error_code_in_the_source_is_in_the_catalogue() {
        const CALLS: [&str; 10] = [
            "Unauthorized(\"",
            "Forbidden(\"",
            "Conflict(\"",
            "bad_request(\"",
            "oauth(\"",
            "oauth_bare(\"",
            "forbidden(\"",
            "code: \"",
            "error: \"",
            ", \"",
        ];
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut used = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("i18n.rs")) {
            let text = std::fs::read_to_string(file).expect("readable");
            for line in text.lines() {
                let line = line.trim();
                // `, "` only where a message is asked for: `i18n::message(lang, "code", …)`.
                for call in CALLS {
                    if call == ", \"" && !line.contains("message(") {
                        continue;
                    }
                    let mut rest = line;
                    while let Some(at) = rest.find(call) {
                        let after = &rest[at + call.len()..];
                        let code = &after[..after.find('"').unwrap_or(0)];
                        if !code.is_empty()
                            && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        {
                            used.push((code.to_owned(), file.display().to_string()));
                        }
                        rest = after;
                    }
                }
            }
        }
        assert!(used.len() > 40, "the scan found the codes: {used:?}");
        let missing: Vec<String> = used
            .into_iter()
            .filter(|(code, _)| !CATALOGUE.iter().any(|e| e.key == code))
            .map(|(code, file)| format!("{code} ({file})"))
            .collect();
        assert!(
            missing.is_empty(),
            "codes without a catalogue entry: {missing:?}"
        );
    }

    #[test]
    fn fills_details_and_plurals() {
        assert_eq!(
            message(
                Lang::Es,
                "payload_too_large",
                Some(&Detail::Bytes { n: 65536 })
            ),
            "El cuerpo de la solicitud supera el límite de 65536 bytes."
        );
        assert_eq!(
            message(Lang::En, "invalid_json", None),
            "The request body is not valid JSON."
        );
        assert_eq!(Detail::Seconds { n: 1 }.render(Lang::En), "1 second");
        assert_eq!(Detail::Seconds { n: 2 }.render(Lang::En), "2 seconds");
        assert_eq!(Detail::Seconds { n: 1 }.render(Lang::Es), "1 segundo");
        assert_eq!(Detail::Seconds { n: 30 }.render(Lang::Es), "30 segundos");
        assert_eq!(
            message(Lang::Es, "nope", None),
            "La solicitud falló (nope)."
        );
    }
}
