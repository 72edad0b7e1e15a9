//! Label matchers as Prometheus writes them: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//! A label a series lacks matches as the empty string, and regexes match the whole value.

use std::fmt;

use regex::Regex;

use crate::sample::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// Compiled, anchored regex for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad label matcher at character {position} of {input:?}: {message}")]
pub struct MatcherError {
    pub input: String,
    pub position: usize,
    pub message: String,
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, String> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?} for label {name:?}: {e}"))?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let actual = labels.get(&self.name).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => actual == self.value,
            (MatchOp::Ne, _) => actual != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(actual),
            (MatchOp::NotRe, Some(re)) => !re.is_match(actual),
            // `new` always compiles a regex for these two operators.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

/// True when every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// As [`parse_selector`] reads it: only `\\`, `"` and line feeds escaped (Rust's `{:?}` wrote
/// `\r` or `\u{1b}`, which read back as other text).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        f.write_str("\"")
    }
}

/// Parses `{a="x", b=~"y.*"}`, with or without the braces; an empty input gives no matchers.
/// Values are double-quoted with `\"`, `\\`, `\n` and `\t` escapes.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut parser = Parser {
        input,
        chars: input.char_indices().collect(),
        at: 0,
    };
    parser.skip_ws();
    let braced = parser.eat('{');
    let mut out = Vec::new();
    loop {
        parser.skip_ws();
        if parser.done() || (braced && parser.peek() == Some('}')) {
            break;
        }
        let start = parser.position();
        let name = parser.name()?;
        parser.skip_ws();
        let op = parser.op()?;
        parser.skip_ws();
        let value = parser.quoted()?;
        out.push(Matcher::new(name, op, value).map_err(|m| parser.error_at(start, m))?);
        parser.skip_ws();
        if !parser.eat(',') {
            break;
        }
    }
    parser.skip_ws();
    if braced && !parser.eat('}') {
        return Err(parser.error("expected ',' or '}'"));
    }
    parser.skip_ws();
    if !parser.done() {
        return Err(parser.error(if braced {
            "unexpected text after '}'"
        } else {
            "expected ',' between matchers"
        }));
    }
    Ok(out)
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|c| c.1)
    }

    fn position(&self) -> usize {
        self.at
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> MatcherError {
        self.error_at(self.at, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> MatcherError {
        MatcherError {
            input: self.input.to_string(),
            position: at,
            message: message.into(),
        }
    }

    fn name(&mut self) -> Result<String, MatcherError> {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            let ok =
                c == '_' || c.is_ascii_alphabetic() || (!name.is_empty() && c.is_ascii_digit());
            if !ok {
                break;
            }
            name.push(c);
            self.at += 1;
        }
        if name.is_empty() {
            return Err(self.error("expected a label name"));
        }
        Ok(name)
    }

    fn op(&mut self) -> Result<MatchOp, MatcherError> {
        let op = match (self.peek(), self.chars.get(self.at + 1).map(|c| c.1)) {
            (Some('='), Some('~')) => MatchOp::Re,
            (Some('!'), Some('~')) => MatchOp::NotRe,
            (Some('!'), Some('=')) => MatchOp::Ne,
            (Some('='), _) => MatchOp::Eq,
            _ => return Err(self.error("expected one of =, !=, =~, !~")),
        };
        self.at += op.as_str().len();
        Ok(op)
    }

    fn quoted(&mut self) -> Result<String, MatcherError> {
        if !self.eat('"') {
            return Err(self.error("expected a double-quoted value"));
        }
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('"') => {
                    self.at += 1;
                    return Ok(value);
                }
                Some('\\') => {
                    self.at += 1;
                    let c = match self.peek() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(c @ ('"' | '\\')) => c,
                        // Regexes keep their own escapes (`\d`, `\.`).
                        Some(c) => {
                            value.push('\\');
                            c
                        }
                        None => return Err(self.error("unterminated string")),
                    };
                    value.push(c);
                    self.at += 1;
                }
                Some(c) => {
                    value.push(c);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied())
    }

    #[test]
    fn parses_all_four_operators_with_and_without_braces() {
        let m = parse_selector(r#"{topic="a", cluster!="b",  group=~"g.*" , x!~"\d+",}"#).unwrap();
        let shown: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"topic="a""#,
                r#"cluster!="b""#,
                r#"group=~"g.*""#,
                r#"x!~"\\d+""#
            ]
        );
        assert_eq!(parse_selector(r#"a="1",b="2""#).unwrap().len(), 2);
        assert!(parse_selector("").unwrap().is_empty());
        assert!(parse_selector(" {} ").unwrap().is_empty());
    }

    #[test]
    fn escapes_in_values() {
        let m = parse_selector(r#"{t="say \"hi\"\\ok\n"}"#).unwrap();
        assert_eq!(m[0].value, "say \"hi\"\\ok\n");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse_selector(r#"{topic="a""#).unwrap_err();
        assert_eq!(e.message, "expected ',' or '}'");
        assert_eq!(e.position, 10);
        let e = parse_selector(r#"{topic=a}"#).unwrap_err();
        assert_eq!(
            (e.position, e.message.as_str()),
            (7, "expected a double-quoted value")
        );
        let e = parse_selector(r#"{topic~"a"}"#).unwrap_err();
        assert_eq!(e.message, "expected one of =, !=, =~, !~");
        let e = parse_selector(r#"{1a="x"}"#).unwrap_err();
        assert_eq!(e.message, "expected a label name");
        let e = parse_selector(r#"{t="x"#).unwrap_err();
        assert_eq!(e.message, "unterminated string");
        let e = parse_selector(r#"{t=~"("}"#).unwrap_err();
        assert_eq!(e.position, 1);
        assert!(
            e.message.starts_with("invalid regex \"(\" for label \"t\""),
            "{e}"
        );
        let e = parse_selector(r#"a="x" b="y""#).unwrap_err();
        assert_eq!(e.message, "expected ',' between matchers");
        assert!(
            e.to_string()
                .starts_with("bad label matcher at character 6")
        );
    }

    #[test]
    fn matching_treats_a_missing_label_as_empty_and_anchors_regexes() {
        let l = labels(&[("topic", "orders"), ("cluster", "prod")]);
        let check = |s: &str| matches_all(&parse_selector(s).unwrap(), &l);
        assert!(check(r#"topic="orders""#));
        assert!(!check(r#"topic="order""#));
        assert!(check(r#"topic!="x""#));
        assert!(!check(r#"topic!="orders""#));
        assert!(check(r#"topic=~"ord.*""#));
        assert!(!check(r#"topic=~"ord""#)); // anchored: no partial match
        assert!(check(r#"topic=~"orders|x""#));
        assert!(check(r#"topic!~"x.*""#));
        assert!(!check(r#"topic!~"o.*""#));
        assert!(check(r#"group="""#)); // missing label equals ""
        assert!(!check(r#"group!="""#));
        assert!(check(r#"group=~".*""#));
        assert!(check(r#"topic="orders",cluster="prod""#));
        assert!(!check(r#"topic="orders",cluster="dev""#));
        assert!(check(""));
    }

    #[test]
    fn a_matcher_written_back_parses_the_same() {
        let matchers = vec![
            Matcher::new("a", MatchOp::Eq, "q\"b\\s\nn\tt\rr\u{1b}e\u{301}'\0").unwrap(),
            Matcher::new("b", MatchOp::NotRe, r"\d+\.(x|y)").unwrap(),
        ];
        let written: Vec<String> = matchers.iter().map(ToString::to_string).collect();
        let written = format!("{{{}}}", written.join(","));
        assert_eq!(parse_selector(&written), Ok(matchers), "{written}");
    }
}
