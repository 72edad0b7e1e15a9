//! Turning a JSON record into one line by a mapping of JSON paths (`a.b.c`) to tags and fields
//! (what `pipescope sink influx` writes), with the escaping of [`super`].

use std::fmt::Write;

use serde_json::Value;

use super::{escape_key, escape_measurement, escapes_to_empty, write_string_field};

/// Which parts of a JSON record become what in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMapping {
    pub measurement: String,
    /// (tag key, JSON path); a missing or null value leaves the tag out.
    pub tags: Vec<(String, String)>,
    /// (field key, JSON path); numbers are written as floats, strings quoted, booleans as such.
    pub fields: Vec<(String, String)>,
    /// JSON path of the time in epoch milliseconds; when absent the record's own timestamp.
    pub time: Option<String>,
}

/// Why a record gives no line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    NotJson(String),
    NoFields,
    BadTime(String),
}

impl std::fmt::Display for MappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MappingError::NotJson(e) => write!(f, "the record is not JSON ({e})"),
            MappingError::NoFields => write!(f, "none of the mapped fields is in the record"),
            MappingError::BadTime(v) => {
                write!(f, "the time path holds {v}, not epoch milliseconds")
            }
        }
    }
}

impl std::error::Error for MappingError {}

/// The value at a dotted path (`a.b.0.c`: array elements by index).
pub fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn tag_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        // Also what escapes to nothing (trailing backslashes): `m,t= v=1` does not parse.
        Value::String(s) if escapes_to_empty(s) => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl LineMapping {
    /// One line (no trailing newline) with the time in milliseconds (write with precision=ms).
    pub fn to_line(&self, payload: &[u8], record_ts_ms: i64) -> Result<String, MappingError> {
        let json: Value =
            serde_json::from_slice(payload).map_err(|e| MappingError::NotJson(e.to_string()))?;
        let mut line = String::new();
        escape_measurement(&mut line, &self.measurement);
        let mut tags: Vec<(&str, String)> = self
            .tags
            .iter()
            .filter_map(|(k, p)| {
                json_path(&json, p)
                    .and_then(tag_text)
                    .map(|v| (k.as_str(), v))
            })
            .collect();
        // InfluxDB's documentation: tags sorted by key write fastest.
        tags.sort();
        for (k, v) in tags {
            line.push(',');
            escape_key(&mut line, k);
            line.push('=');
            escape_key(&mut line, &v);
        }
        let mut first = true;
        for (k, p) in &self.fields {
            let mut value = String::new();
            match json_path(&json, p) {
                Some(Value::Number(n)) => match n.as_f64().filter(|f| f.is_finite()) {
                    Some(f) => write!(value, "{f:?}").expect("write to a String"),
                    None => continue,
                },
                Some(Value::String(s)) => write_string_field(&mut value, s),
                Some(Value::Bool(b)) => value.push_str(if *b { "true" } else { "false" }),
                _ => continue,
            }
            line.push(if first { ' ' } else { ',' });
            first = false;
            escape_key(&mut line, k);
            line.push('=');
            line.push_str(&value);
        }
        if first {
            return Err(MappingError::NoFields);
        }
        let ts = match &self.time {
            None => record_ts_ms,
            Some(p) => match json_path(&json, p) {
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| MappingError::BadTime(v.to_string()))?,
                None => record_ts_ms,
            },
        };
        write!(line, " {ts}").expect("write to a String");
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> LineMapping {
        LineMapping {
            measurement: "machine state".into(),
            tags: vec![
                ("machine".into(), "machine".into()),
                ("line".into(), "line".into()),
                ("site".into(), "where.site".into()),
            ],
            fields: vec![
                ("value".into(), "value".into()),
                ("note".into(), "note".into()),
                ("ok".into(), "flags.0".into()),
            ],
            time: Some("ts".into()),
        }
    }

    #[test]
    fn maps_json_paths_to_an_escaped_line() {
        let payload = br#"{"line":"l 1","machine":"m,3","value":21,"note":"say \"hi\"","flags":[true],"ts":1700000000123,"where":{"site":"a=b"}}"#;
        assert_eq!(
            mapping().to_line(payload, 5).unwrap(),
            r#"machine\ state,line=l\ 1,machine=m\,3,site=a\=b value=21.0,note="say \"hi\"",ok=true 1700000000123"#
        );
    }

    #[test]
    fn missing_parts_are_left_out_and_the_record_time_is_the_fallback() {
        let payload = br#"{"machine":"m1","value":1.5,"line":null,"where":{"site":"\\"}}"#;
        assert_eq!(
            mapping().to_line(payload, 42).unwrap(),
            "machine\\ state,machine=m1 value=1.5 42"
        );
    }

    #[test]
    fn records_that_give_no_line_say_why() {
        assert!(matches!(
            mapping().to_line(b"{", 0),
            Err(MappingError::NotJson(_))
        ));
        assert_eq!(
            mapping().to_line(br#"{"machine":"m"}"#, 0),
            Err(MappingError::NoFields)
        );
        assert_eq!(
            mapping().to_line(br#"{"value":1,"ts":"x"}"#, 0),
            Err(MappingError::BadTime("\"x\"".into()))
        );
    }

    #[test]
    fn json_paths_walk_objects_and_arrays() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":[{"c":3}]}}"#).unwrap();
        assert_eq!(json_path(&v, "a.b.0.c"), Some(&Value::from(3)));
        assert_eq!(json_path(&v, "a.x"), None);
        assert_eq!(json_path(&v, "a.b.1"), None);
    }
}
