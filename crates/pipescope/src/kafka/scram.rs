//! The client side of SCRAM (RFC 5802, with SHA-256 / SHA-512 as RFC 7677 and Kafka use them),
//! on ring's HMAC, PBKDF2 and digests. No channel binding (`n,,`), as Kafka expects.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2};

/// The iteration counts a server may ask for. The server picks the count, so an unbounded one
/// is a denial of service: `i=4294967295` is about an hour of PBKDF2. RFC 7677 (section 4) says
/// the count SHOULD be at least 4096, and Kafka accepts 4096 to 16384 when a SCRAM credential
/// is made (`ScramMechanism` minIterations / maxIterations): a Kafka broker never asks for more.
pub const ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }
    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// One authentication exchange. Debug leaves the password out.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    client_first_bare: String,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Checks the server's final message against the signature it must contain.
#[derive(Debug)]
pub struct ServerVerifier {
    expected: Vec<u8>,
}

impl ScramClient {
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        let mut random = [0u8; 24];
        // The system's random source failing leaves a weaker, still unique-enough nonce.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
        Self::with_nonce(hash, username, password, &B64.encode(random))
    }

    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
        }
    }

    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message for the server-first message, and the check of the server's answer.
    pub fn client_final(&self, server_first: &str) -> Result<(String, ServerVerifier), String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(v),
                Some(("i=", v)) => iterations = Some(v),
                Some(("e=", v)) => return Err(format!("the server refused: {v}")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend ours".to_string());
        }
        let salt = B64
            .decode(salt.ok_or("server-first message has no salt")?)
            .map_err(|e| format!("invalid salt: {e}"))?;
        let iterations: u32 = iterations
            .ok_or("server-first message has no iteration count")?
            .parse()
            .map_err(|_| "invalid iteration count".to_string())?;
        if !ITERATIONS.contains(&iterations) {
            return Err(format!(
                "the server asks for {iterations} PBKDF2 iterations; pipescope accepts {} to {} (Kafka's own range)",
                ITERATIONS.start(),
                ITERATIONS.end()
            ));
        }
        let iterations = NonZeroU32::new(iterations).ok_or("iteration count 0")?;

        let mut salted = vec![0u8; self.hash.len()];
        pbkdf2::derive(
            self.hash.pbkdf2(),
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(self.hash.hmac(), &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), server_key.as_ref()),
            auth_message.as_bytes(),
        );
        Ok((
            format!("{without_proof},p={}", B64.encode(proof)),
            ServerVerifier {
                expected: server_signature.as_ref().to_vec(),
            },
        ))
    }
}

impl ServerVerifier {
    pub fn verify(&self, server_final: &str) -> Result<(), String> {
        for part in server_final.split(',') {
            if let Some(error) = part.strip_prefix("e=") {
                return Err(format!("the server refused: {error}"));
            }
            if let Some(signature) = part.strip_prefix("v=") {
                let signature = B64
                    .decode(signature)
                    .map_err(|e| format!("invalid server signature: {e}"))?;
                return if signature == self.expected {
                    Ok(())
                } else {
                    Err("the server's signature is wrong: it does not know the password".into())
                };
            }
        }
        Err("server-final message has no signature".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 exchange of RFC 7677 section 3.
    #[test]
    fn rfc7677_sha256_example() {
        let client =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, verifier) = client
            .client_final(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        verifier
            .verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            verifier
                .verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
    }

    #[test]
    fn a_nonce_that_does_not_extend_ours_is_refused() {
        let client = ScramClient::with_nonce(ScramHash::Sha512, "u", "p", "abc");
        assert!(client.client_final("r=xyz,s=AAAA,i=4096").is_err());
        assert!(client.client_final("r=abc,s=AAAA,i=4096").is_err());
        assert!(
            client
                .client_final("e=invalid-proof")
                .unwrap_err()
                .contains("invalid-proof")
        );
    }

    #[test]
    fn iteration_counts_outside_kafkas_range_are_refused_before_any_work() {
        let client = ScramClient::with_nonce(ScramHash::Sha512, "u", "p", "abc");
        let first = |i: &str| client.client_final(&format!("r=abcd,s=AAAA,i={i}"));
        for refused in ["4294967295", "16385", "4095", "0"] {
            let error = first(refused).unwrap_err();
            assert!(
                error.contains(&format!("asks for {refused} PBKDF2 iterations")),
                "{error}"
            );
        }
        assert!(first("4096").is_ok());
        assert!(first("16384").is_ok());
    }

    #[test]
    fn usernames_are_escaped() {
        let client = ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", "p", "n");
        assert_eq!(client.client_first(), "n,,n=a=3Db=2Cc,r=n");
    }
}
