//! Reading variables: the rules every setting shares (empty means unset, booleans, lists,
//! `key=value` pairs), and the warnings collected on the way.

/// The variables, seen through a lookup, and the warnings found while reading them.
pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            warnings: Vec::new(),
        }
    }

    /// The trimmed value of `name`. Empty counts as unset, as the OTel spec requires of every
    /// variable ("The SDK MUST interpret an empty value … the same way as when the variable is
    /// unset"); we apply it to the Lambda and Powertools variables too, for one rule everywhere.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// The first of `names` that is set, with its name: signal-specific variables before generic
    /// ones, ours before the ecosystem's.
    pub(super) fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names
            .iter()
            .find_map(|name| self.get(name).map(|value| (*name, value)))
    }

    pub(super) fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// An OTel boolean: only `true` (any case) is true. Anything but `true`/`false` warns and
    /// counts as false, as the spec says.
    pub(super) fn otel_bool(&mut self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some(value) if value.eq_ignore_ascii_case("true") => true,
            Some(value) if value.eq_ignore_ascii_case("false") => false,
            Some(value) => {
                self.warn(format!(
                    "{name}={value:?} is not true or false; treated as false"
                ));
                false
            }
        }
    }

    /// A Powertools-style or project switch: `true`/`1` or `false`/`0` (any case); `None` when
    /// unset or unreadable (which warns).
    pub(super) fn flag(&mut self, name: &str) -> Option<bool> {
        let value = self.get(name)?;
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                self.warn(format!(
                    "{name}={value:?} is not true, false, 1 or 0; ignored"
                ));
                None
            }
        }
    }
}

/// The entries of a comma-separated list, trimmed and lowercased, empty entries dropped.
pub(super) fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// One entry of a `key=value,…` list (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`):
/// the W3C Baggage format without properties, values percent-decoded, blanks around keys and
/// values trimmed. `Err` carries the raw entry, for the caller to name (or not, for headers that
/// may hold secrets).
pub(super) fn key_values(value: &str) -> Vec<Result<(String, String), &str>> {
    value
        .split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (key, raw) = entry.split_once('=').ok_or(entry)?;
            let key = key.trim();
            if key.is_empty() {
                return Err(entry);
            }
            let value = percent_decode(raw.trim()).ok_or(entry)?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_accepts_escapes_and_rejects_broken_ones() {
        assert_eq!(percent_decode("a%20b%2Cc").as_deref(), Some("a b,c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn key_value_lists_trim_decode_and_report_malformed_entries() {
        assert_eq!(
            key_values(" a = 1 ,b=x%3Dy,, noequals ,=v,c=%"),
            vec![
                Ok(("a".to_owned(), "1".to_owned())),
                Ok(("b".to_owned(), "x=y".to_owned())),
                Err(" noequals "),
                Err("=v"),
                Err("c=%"),
            ]
        );
    }

    #[test]
    fn empty_and_blank_values_are_unset() {
        let lookup = |name: &str| match name {
            "EMPTY" => Some(String::new()),
            "BLANK" => Some("  ".to_owned()),
            "SET" => Some(" x ".to_owned()),
            _ => None,
        };
        let env = Env::new(&lookup);
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get("BLANK"), None);
        assert_eq!(env.get("SET").as_deref(), Some("x"));
        assert_eq!(env.first(&["EMPTY", "SET"]), Some(("SET", "x".to_owned())));
    }
}
