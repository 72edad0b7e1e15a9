//! librdkafka settings from a file, as kcat's `-F` reads them: one `KEY=VALUE` a line, so
//! secrets (`sasl.password`) stay out of the command line, where anyone can read them in `ps`.

use std::fmt;

/// One line of a settings file that is not `KEY=VALUE`; the line itself is not quoted, since it
/// may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected KEY=VALUE (a librdkafka setting), a # comment or a blank line")]
pub struct PropertiesError {
    pub line: usize,
}

/// The settings in `text`: `KEY=VALUE` lines, spaces around both trimmed; blank lines and lines
/// starting with `#` skipped. Values may hold `=`; a later key wins, as librdkafka does.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut settings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                settings.push((key.trim().to_string(), value.trim().to_string()));
            }
            _ => return Err(PropertiesError { line: index + 1 }),
        }
    }
    Ok(settings)
}

/// Whether a librdkafka setting holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, an inline private key...): its value is never shown.
pub fn is_secret_setting(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    ["password", "secret", "token", "jaas"]
        .iter()
        .any(|word| key.contains(word))
        || matches!(
            key.as_str(),
            "ssl.key.pem" | "ssl_key" | "sasl.oauthbearer.config"
        )
}

/// `-X` options as Debug shows them: `KEY=***` for secret settings.
pub struct RedactedOptions<'a>(pub &'a [String]);

impl fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|option| match option.split_once('=') {
                Some((key, _)) if is_secret_setting(key) => format!("{key}=***"),
                _ => option.clone(),
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_properties_file_is_read_as_kcat_reads_it() {
        let text = "# the cluster's login\n\nsecurity.protocol = SASL_SSL\n\
                    sasl.password=a=b=c \n  sasl.username=svc\r\n";
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parse_properties(text),
            Ok(pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.password", "a=b=c"),
                ("sasl.username", "svc"),
            ]))
        );
        assert_eq!(parse_properties(""), Ok(Vec::new()));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number_not_its_text() {
        let error = parse_properties("a=1\nhunter2\n").unwrap_err();
        assert_eq!(error, PropertiesError { line: 2 });
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(
            parse_properties("=hunter2").unwrap_err(),
            PropertiesError { line: 1 }
        );
    }

    #[test]
    fn secret_settings_are_recognised_and_redacted() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "SASL.PASSWORD",
        ] {
            assert!(is_secret_setting(key), "{key}");
        }
        for key in ["sasl.username", "security.protocol", "ssl.ca.location"] {
            assert!(!is_secret_setting(key), "{key}");
        }
        let options = ["sasl.password=hunter2".to_string(), "acks=all".to_string()];
        assert_eq!(
            format!("{:?}", RedactedOptions(&options)),
            r#"["sasl.password=***", "acks=all"]"#
        );
    }
}
