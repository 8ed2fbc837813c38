//! Optional encryption at rest of buffered results (ChaCha20-Poly1305,
//! from `ring`, which the agent already links for TLS).
//!
//! With `[buffer] encryption_key_file` set, every payload is stored as
//! `MAGIC(4) | nonce(12) | ciphertext+tag`, with the entry's sequence
//! number as associated data, so a record moved to another key, edited,
//! or written in clear by someone else fails to open. Such records are
//! never sent: they are dropped and counted (`corrupt`). Nonces are
//! random (96 bits); one key may seal far fewer than 2^32 records before
//! rotation is advisable (years at any realistic probe rate).
//!
//! Without a key, payloads are the plain prost bytes that go on the wire.

use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: [u8; 4] = *b"OPS1";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read the buffer key {path}: {reason}; fix: point [buffer] encryption_key_file at a file holding 32 random bytes or 64 hex digits (e.g. `head -c 32 /dev/urandom > key`)")]
    Key { path: String, reason: String },
    #[error("record is not sealed with the configured key (tampered, wrong key, or written without encryption)")]
    Open,
    #[error("record is sealed but no encryption key is configured")]
    NoKey,
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens payloads; a no-op without a key.
pub struct Sealer {
    key: Option<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("encrypting", &self.key.is_some())
            .finish()
    }
}

impl Sealer {
    /// No encryption.
    pub fn none() -> Self {
        Sealer {
            key: None,
            rng: SystemRandom::new(),
        }
    }

    /// A sealer with the 32-byte key in `path` (raw, or 64 hex digits).
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let err = |reason: String| SealError::Key {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let key = parse_key(&bytes)
            .ok_or_else(|| err(format!("it holds {} bytes, not a 32-byte key", bytes.len())))?;
        Self::from_key(&key).map_err(|_| err("unusable key".into()))
    }

    /// A sealer with `key`.
    pub fn from_key(key: &[u8; 32]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| SealError::Open)?;
        Ok(Sealer {
            key: Some(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
        })
    }

    /// Whether payloads are encrypted.
    pub fn encrypting(&self) -> bool {
        self.key.is_some()
    }

    /// The stored form of `plain` for sequence `seq`.
    pub fn seal(&self, seq: u64, plain: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let Some(key) = &self.key else {
            return Ok(plain);
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = plain;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(seq.to_be_bytes()),
            &mut in_out,
        )
        .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + in_out.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// The plain payload of a stored record of sequence `seq`.
    pub fn open(&self, seq: u64, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let sealed = stored.starts_with(&MAGIC);
        let Some(key) = &self.key else {
            return if sealed {
                Err(SealError::NoKey)
            } else {
                Ok(stored.to_vec())
            };
        };
        if !sealed || stored.len() < MAGIC.len() + NONCE_LEN {
            return Err(SealError::Open);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&stored[MAGIC.len()..MAGIC.len() + NONCE_LEN]);
        let mut buf = stored[MAGIC.len() + NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seq.to_be_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

/// Whether a stored payload is in the sealed format (prost never starts
/// with these bytes: field 9 with wire type 7 does not exist).
pub fn looks_sealed(stored: &[u8]) -> bool {
    stored.starts_with(&MAGIC)
}

fn parse_key(bytes: &[u8]) -> Option<[u8; 32]> {
    if bytes.len() == 32 {
        return bytes.try_into().ok();
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_tamper_is_detected() {
        let s = Sealer::from_key(&[7; 32]).unwrap();
        let sealed = s.seal(42, b"result bytes".to_vec()).unwrap();
        assert_ne!(&sealed[MAGIC.len() + NONCE_LEN..], b"result bytes");
        assert_eq!(s.open(42, &sealed).unwrap(), b"result bytes");
        // Another sequence (record moved), another key, a flipped bit, plaintext.
        assert!(s.open(43, &sealed).is_err());
        assert!(Sealer::from_key(&[8; 32])
            .unwrap()
            .open(42, &sealed)
            .is_err());
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(s.open(42, &t).is_err(), "bit flip at {i} accepted");
        }
        assert!(s.open(42, b"result bytes").is_err());
        // Without a key: plain passes through, sealed is refused.
        assert_eq!(Sealer::none().open(1, b"plain").unwrap(), b"plain");
        assert!(matches!(
            Sealer::none().open(42, &sealed),
            Err(SealError::NoKey)
        ));
    }

    #[test]
    fn keys_parse_from_raw_or_hex() {
        assert_eq!(parse_key(&[1; 32]), Some([1; 32]));
        assert_eq!(
            parse_key(format!("{}\n", "0a".repeat(32)).as_bytes()),
            Some([10; 32])
        );
        assert_eq!(parse_key(b"short"), None);
    }
}
