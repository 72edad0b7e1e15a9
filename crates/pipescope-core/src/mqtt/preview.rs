//! A bounded preview of a payload: text when it is UTF-8, hex otherwise, never more than
//! [`PREVIEW_BYTES`] bytes of the payload.

use serde::Serialize;

/// Bytes of the last payload kept per topic.
pub const PREVIEW_BYTES: usize = 64;

/// The first bytes of a payload, kept without allocating.
#[derive(Debug, Clone, Copy)]
pub struct PreviewBuf {
    bytes: [u8; PREVIEW_BYTES],
    len: u8,
    /// Size of the whole payload.
    size: u32,
}

impl Default for PreviewBuf {
    fn default() -> Self {
        Self {
            bytes: [0; PREVIEW_BYTES],
            len: 0,
            size: 0,
        }
    }
}

impl PreviewBuf {
    #[inline]
    pub fn set(&mut self, payload: &[u8]) {
        let n = payload.len().min(PREVIEW_BYTES);
        self.bytes[..n].copy_from_slice(&payload[..n]);
        self.len = n as u8;
        self.size = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    }

    pub fn preview(&self) -> Preview {
        Preview::of(&self.bytes[..self.len as usize], u64::from(self.size))
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Utf8,
    Hex,
}

/// What the API shows of a payload.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub encoding: Encoding,
    pub text: String,
    /// Bytes of the whole payload.
    pub size: u64,
    /// Whether `text` shows only the start of the payload.
    pub truncated: bool,
}

impl Preview {
    /// `head` is the start of a payload of `size` bytes.
    pub fn of(head: &[u8], size: u64) -> Self {
        let truncated = (head.len() as u64) < size;
        let text = match std::str::from_utf8(head) {
            Ok(text) => Some(text),
            // A cut through the middle of a character is still text: show what is whole.
            Err(e) if truncated && e.error_len().is_none() => {
                std::str::from_utf8(&head[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        match text {
            Some(text) if !text.chars().any(|c| c.is_control() && !c.is_whitespace()) => Self {
                encoding: Encoding::Utf8,
                text: text.to_string(),
                size,
                truncated,
            },
            _ => Self {
                encoding: Encoding::Hex,
                text: head.iter().map(|b| format!("{b:02x}")).collect(),
                size,
                truncated,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(payload: &[u8]) -> Preview {
        let mut buf = PreviewBuf::default();
        buf.set(payload);
        buf.preview()
    }

    #[test]
    fn text_is_shown_as_text() {
        let p = preview(b"{\"t\": 21.5}");
        assert_eq!(p.encoding, Encoding::Utf8);
        assert_eq!(p.text, "{\"t\": 21.5}");
        assert_eq!((p.size, p.truncated), (11, false));
    }

    #[test]
    fn binary_and_invalid_utf8_are_shown_as_hex() {
        let p = preview(&[0x00, 0xff, 0x10]);
        assert_eq!((p.encoding, p.text.as_str()), (Encoding::Hex, "00ff10"));
        let p = preview(b"ab\xc3\x28");
        assert_eq!((p.encoding, p.text.as_str()), (Encoding::Hex, "6162c328"));
    }

    #[test]
    fn empty_payload() {
        let p = preview(b"");
        assert_eq!(p.encoding, Encoding::Utf8);
        assert_eq!((p.text.as_str(), p.size, p.truncated), ("", 0, false));
    }

    #[test]
    fn long_payloads_are_capped_and_a_cut_character_is_dropped() {
        let big = vec![b'x'; 256 * 1024];
        let p = preview(&big);
        assert_eq!(p.text.len(), PREVIEW_BYTES);
        assert_eq!((p.size, p.truncated), (262_144, true));
        // 63 ASCII bytes then "é" (2 bytes) cut after its first byte.
        let mut text = "y".repeat(63);
        text.push_str("é and more");
        let p = preview(text.as_bytes());
        assert_eq!(p.encoding, Encoding::Utf8);
        assert_eq!(p.text, "y".repeat(63));
        assert!(p.truncated);
    }
}
