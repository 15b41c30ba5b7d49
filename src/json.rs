//! A JSON object written field by field into a `String`, for the few answers on the token path
//! whose shape is fixed: the access token's claims and the token response. serde_json escapes a
//! string byte by byte; a JWT (base64url and dots) or an id never needs escaping, so a string is
//! checked in one pass and copied whole when it has nothing to escape, and escaped by serde_json
//! (the same text byte for byte) when it has. Everything else answers through serde.

/// `{"name":value,…}` being written. Field names are written as given: they must be JSON string
/// contents that need no escaping (they are the caller's literals).
#[derive(Debug)]
pub struct Object {
    out: String,
    first: bool,
}

impl Object {
    /// An object whose text is expected to be about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        Self { out, first: true }
    }

    fn name(&mut self, name: &str) {
        debug_assert!(!needs_escape(name), "a field name that needs escaping");
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
    }

    /// A string field.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.name(name);
        push_str(&mut self.out, value);
        self
    }

    /// A number field.
    pub fn int(&mut self, name: &str, value: i64) -> &mut Self {
        self.name(name);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Whether `s` has a byte that JSON (and serde_json) escapes: a control character, `"` or `\`.
fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// `s` as a JSON string, quotes included, as serde_json writes it.
fn push_str(out: &mut String, s: &str) {
    if needs_escape(s) {
        // serde_json cannot fail to write a string into memory.
        let mut buf = Vec::with_capacity(s.len() + 8);
        if serde_json::to_writer(&mut buf, s).is_ok() {
            out.push_str(&String::from_utf8_lossy(&buf));
        }
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_object_reads_back_as_its_fields() {
        let mut o = Object::with_capacity(8);
        o.str("a", "plain")
            .str("b", "quote \" back\\slash \n tab\t nul\u{0} é ☃")
            .int("n", -42)
            .int("m", i64::MAX);
        let text = o.finish();
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!({"a": "plain", "b": "quote \" back\\slash \n tab\t nul\u{0} é ☃",
                "n": -42, "m": i64::MAX})
        );
        assert_eq!(Object::with_capacity(0).finish(), "{}");
    }

    proptest! {
        #[test]
        fn a_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            let mut out = String::new();
            push_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).expect("serialize"));
        }

        #[test]
        fn ascii_with_escapes_is_written_as_serde_json_writes_it(s in "[\\x00-\\x7f]{0,40}") {
            let mut out = String::new();
            push_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).expect("serialize"));
        }
    }
}
