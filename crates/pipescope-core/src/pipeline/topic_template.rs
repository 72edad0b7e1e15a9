//! MQTT topics made from a record's fields (`simulate machines --replay --topic-template`):
//! `machine/{line}/{machine}` takes the record's `line` and `machine` fields. A field may be a
//! path into nested objects (`{site.hall}`); `{{` and `}}` are literal braces.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A field path, split at dots.
    Field(Vec<String>),
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    pieces: Vec<Piece>,
}

/// Why a template is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "topic template {0:?}: a '{{' at byte {1} is not closed — write {{field}}, or {{{{ for a brace"
    )]
    Unclosed(String, usize),
    #[error("topic template {0:?}: a '}}' at byte {1} closes nothing — write }}}} for a brace")]
    Unopened(String, usize),
    #[error(
        "topic template {0:?}: the field name at byte {1} is empty or holds a brace — write {{field}}"
    )]
    EmptyField(String, usize),
    #[error("topic template {0:?} names no field: every record would go to the same topic")]
    NoField(String),
    #[error("topic template {0:?} holds {1:?}: a topic to publish to has no wildcards")]
    Wildcard(String, char),
}

/// Why a record gives no topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The record has no such field (or it is null).
    Missing(String),
    /// The field is an object or an array.
    NotScalar(String),
    /// The field's value is empty or holds `+`, `#` or NUL (not a level of a topic).
    BadLevel(String, String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Missing(field) => write!(f, "the record has no field {field:?}"),
            RenderError::NotScalar(field) => write!(
                f,
                "field {field:?} is an object or an array, not text or a number"
            ),
            RenderError::BadLevel(field, value) => write!(
                f,
                "field {field:?} is {value:?}, which cannot be part of an MQTT topic (empty, or holds + # or NUL)"
            ),
        }
    }
}

impl std::error::Error for RenderError {}

impl TopicTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if let Some(c) = template.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
            return Err(TemplateError::Wildcard(template.into(), c));
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::Unopened(template.into(), at)),
                '{' => {
                    let rest = &template[at + 1..];
                    let end = rest
                        .find('}')
                        .ok_or_else(|| TemplateError::Unclosed(template.into(), at))?;
                    let name = rest[..end].trim();
                    if name.is_empty() || name.contains('{') {
                        return Err(TemplateError::EmptyField(template.into(), at));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name.split('.').map(str::to_owned).collect()));
                    // Skip the name and its closing brace.
                    for _ in 0..=rest[..end].chars().count() {
                        chars.next();
                    }
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Field(_))) {
            return Err(TemplateError::NoField(template.into()));
        }
        Ok(Self { pieces })
    }

    /// The topic of `record`: text as written, numbers and booleans in JSON form.
    pub fn render(&self, record: &Value) -> Result<String, RenderError> {
        let mut topic = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => topic.push_str(text),
                Piece::Field(path) => {
                    let name = path.join(".");
                    let value = path
                        .iter()
                        .try_fold(record, |v, key| v.get(key))
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| RenderError::Missing(name.clone()))?;
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(RenderError::NotScalar(name)),
                    };
                    if text.is_empty() || text.contains(['+', '#', '\0']) {
                        return Err(RenderError::BadLevel(name, text));
                    }
                    topic.push_str(&text);
                }
            }
        }
        Ok(topic)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(template: &str, record: Value) -> Result<String, RenderError> {
        TopicTemplate::parse(template).unwrap().render(&record)
    }

    #[test]
    fn fields_fill_the_template() {
        let record = json!({"line": "l1", "machine": "m-07", "value": 3.5});
        assert_eq!(
            render("machine/{line}/{machine}", record).unwrap(),
            "machine/l1/m-07"
        );
    }

    #[test]
    fn numbers_booleans_and_nested_fields_are_written_as_json_writes_them() {
        let record = json!({"site": {"hall": 3}, "ok": true, "t": 1.5});
        assert_eq!(
            render("s/{site.hall}/{ok}/{t}", record).unwrap(),
            "s/3/true/1.5"
        );
    }

    #[test]
    fn doubled_braces_are_literal_and_spaces_in_a_name_are_trimmed() {
        assert_eq!(render("a{{b}}/{ x }", json!({"x": "y"})).unwrap(), "a{b}/y");
    }

    #[test]
    fn a_missing_or_null_field_is_named() {
        let err = render("machine/{line}/{machine}", json!({"line": "l1"})).unwrap_err();
        assert_eq!(err, RenderError::Missing("machine".into()));
        assert_eq!(err.to_string(), "the record has no field \"machine\"");
        assert_eq!(
            render("{a.b}", json!({"a": {"b": null}})).unwrap_err(),
            RenderError::Missing("a.b".into())
        );
        assert_eq!(
            render("{a.b}", json!({"a": "text"})).unwrap_err(),
            RenderError::Missing("a.b".into())
        );
    }

    #[test]
    fn values_that_are_no_topic_level_are_refused() {
        assert_eq!(
            render("m/{x}", json!({"x": {"y": 1}})).unwrap_err(),
            RenderError::NotScalar("x".into())
        );
        assert_eq!(
            render("m/{x}", json!({"x": "a+b"})).unwrap_err(),
            RenderError::BadLevel("x".into(), "a+b".into())
        );
        assert_eq!(
            render("m/{x}", json!({"x": ""})).unwrap_err(),
            RenderError::BadLevel("x".into(), String::new())
        );
        assert!(render("m/{x}", json!(["x"])).is_err());
    }

    #[test]
    fn malformed_templates_say_where() {
        let parse = |t: &str| TopicTemplate::parse(t).unwrap_err();
        assert_eq!(
            parse("m/{line"),
            TemplateError::Unclosed("m/{line".into(), 2)
        );
        assert_eq!(
            parse("m/line}"),
            TemplateError::Unopened("m/line}".into(), 6)
        );
        assert_eq!(parse("m/{}"), TemplateError::EmptyField("m/{}".into(), 2));
        assert_eq!(
            parse("m/{a{b}"),
            TemplateError::EmptyField("m/{a{b}".into(), 2)
        );
        assert_eq!(parse("m/fixed"), TemplateError::NoField("m/fixed".into()));
        assert_eq!(
            parse("m/+/{x}"),
            TemplateError::Wildcard("m/+/{x}".into(), '+')
        );
        assert!(parse("m/{a}/#").to_string().contains("no wildcards"));
    }
}
