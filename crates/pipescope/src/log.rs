//! The log's writer: one event, one line.
//!
//! Names that brokers and clients choose (topics, group ids, client ids) reach log lines as they
//! are; a group id with a newline would otherwise start a line of its own and could forge an
//! entry. Every control character inside an event is written escaped (`\n`, `\r`, `\t`,
//! `\u{1b}`…); only the newline that ends the event stays.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes a writer to `inner` that escapes what [`escape_event`] escapes.
#[derive(Debug)]
pub struct OneLinePerEvent<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLinePerEvent<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

/// A writer that takes each write as one formatted event (the formatter writes an event at once).
#[derive(Debug)]
pub struct Escaping<W>(W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, event: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(event);
        self.0.write_all(escape_event(&text).as_bytes())?;
        Ok(event.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `event` with every control character but a final newline escaped.
pub fn escape_event(event: &str) -> Cow<'_, str> {
    let body = event.strip_suffix('\n').unwrap_or(event);
    if !body.chars().any(char::is_control) {
        return Cow::Borrowed(event);
    }
    let mut out = String::with_capacity(event.len() + 16);
    for c in body.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if body.len() < event.len() {
        out.push('\n');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_inside_an_event_cannot_start_a_forged_line() {
        let event = "WARN group lag group=evil\n2026-12-04T00:00:00Z INFO all fine\n";
        assert_eq!(
            escape_event(event),
            "WARN group lag group=evil\\n2026-12-04T00:00:00Z INFO all fine\n"
        );
        assert_eq!(
            escape_event("a\rb\tc\u{1b}[31m\n"),
            "a\\rb\\tc\\u{1b}[31m\n"
        );
    }

    #[test]
    fn plain_events_pass_unchanged() {
        assert!(matches!(escape_event("INFO ok é ✓\n"), Cow::Borrowed(_)));
        assert_eq!(escape_event("no newline"), "no newline");
    }

    #[test]
    fn the_writer_escapes_each_event() {
        let mut out = Vec::new();
        Escaping(&mut out).write_all(b"x=a\nb\n").unwrap();
        assert_eq!(out, b"x=a\\nb\n");
    }
}
