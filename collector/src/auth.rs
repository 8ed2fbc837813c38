//! Who an agent is, and whether it may send results.
//!
//! An agent proves its identity in one of two ways:
//! * **mutual TLS** — its client certificate chains to `[grpc] client_ca`
//!   (checked by rustls during the handshake, with CRLs and expiry) and
//!   names the agent id as a DNS SAN or, failing that, the subject CN;
//! * **bearer token** — for sites without a PKI, over server-side TLS: the
//!   `authorization: Bearer TOKEN` metadata, whose SHA-256 must equal the
//!   one configured for that agent (tokens are stored hashed).
//!
//! The id claimed in the hello must be the proven id, otherwise the stream
//! is refused with PERMISSION_DENIED. With an allow-list, ids not on it
//! are refused. [`AuthState`] is swapped on SIGHUP, and running streams
//! re-check it on every batch, so a revoked agent is cut off without a
//! restart. With no authentication configured (loopback development),
//! any id is accepted.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::AuthConfig;

/// How a stream authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Ids named by a verified client certificate.
    Certificate(Vec<String>),
    /// SHA-256 of the presented bearer token.
    Token([u8; 32]),
    /// Nothing presented.
    None,
}

/// Why a stream was refused (also the `reason` label of the counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    IdentityMismatch,
    NotAllowed,
    BadToken,
    Unauthenticated,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::IdentityMismatch => "identity_mismatch",
            Refusal::NotAllowed => "agent_not_allowed",
            Refusal::BadToken => "bad_token",
            Refusal::Unauthenticated => "unauthenticated",
        }
    }
}

/// The current policy.
#[derive(Debug, Clone, Default)]
pub struct AuthState {
    pub mtls: bool,
    pub allowed: Option<BTreeSet<String>>,
    pub tokens: BTreeMap<String, [u8; 32]>,
}

impl AuthState {
    pub fn new(config: &AuthConfig, mtls: bool) -> Self {
        AuthState {
            mtls,
            allowed: config.allowed_agents.clone(),
            tokens: config.tokens.clone(),
        }
    }

    /// Whether an agent that claims `agent` with `proof` may stream.
    pub fn check(&self, agent: &str, proof: &Proof) -> Result<(), Refusal> {
        match proof {
            Proof::Certificate(ids) => {
                if !ids.iter().any(|id| id == agent) {
                    return Err(Refusal::IdentityMismatch);
                }
            }
            Proof::Token(digest) => match self.tokens.get(agent) {
                Some(expected) if expected == digest => {}
                _ => return Err(Refusal::BadToken),
            },
            Proof::None => {
                if self.mtls || !self.tokens.is_empty() {
                    return Err(Refusal::Unauthenticated);
                }
            }
        }
        match &self.allowed {
            Some(set) if !set.contains(agent) => Err(Refusal::NotAllowed),
            _ => Ok(()),
        }
    }

    /// Whether `agent` is still allowed (re-checked per batch after a reload).
    pub fn still_allowed(&self, agent: &str) -> bool {
        self.allowed.as_ref().is_none_or(|set| set.contains(agent))
    }
}

/// SHA-256 of a token.
pub fn hash_token(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The agent ids a (verified) client certificate names: its DNS SANs, or
/// its subject CN when it has none. Unparseable certificates name nobody.
pub fn cert_identities(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                ids.push((*n).to_string());
            }
        }
    }
    if ids.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                ids.push(s.to_string());
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(mtls: bool, allowed: Option<&[&str]>, tokens: &[(&str, &[u8])]) -> AuthState {
        AuthState {
            mtls,
            allowed: allowed.map(|a| a.iter().map(|s| s.to_string()).collect()),
            tokens: tokens
                .iter()
                .map(|(a, t)| (a.to_string(), hash_token(t)))
                .collect(),
        }
    }

    #[test]
    fn certificate_must_name_the_claimed_agent() {
        let s = state(true, None, &[]);
        assert_eq!(
            s.check("a1", &Proof::Certificate(vec!["a1".into()])),
            Ok(())
        );
        assert_eq!(
            s.check("a2", &Proof::Certificate(vec!["a1".into()])),
            Err(Refusal::IdentityMismatch)
        );
        assert_eq!(s.check("a1", &Proof::None), Err(Refusal::Unauthenticated));
    }

    #[test]
    fn tokens_and_allow_list() {
        let s = state(false, Some(&["a1"]), &[("a1", b"t1"), ("a2", b"t2")]);
        assert_eq!(s.check("a1", &Proof::Token(hash_token(b"t1"))), Ok(()));
        assert_eq!(
            s.check("a1", &Proof::Token(hash_token(b"t2"))),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            s.check("a2", &Proof::Token(hash_token(b"t2"))),
            Err(Refusal::NotAllowed)
        );
        assert!(!s.still_allowed("a2"));
    }

    #[test]
    fn no_auth_configured_accepts_any_id() {
        assert_eq!(AuthState::default().check("anyone", &Proof::None), Ok(()));
    }

    #[test]
    fn hex_round_trip() {
        let d = hash_token(b"secret");
        assert_eq!(parse_sha256_hex(&hex(&d)), Some(d));
        assert_eq!(parse_sha256_hex("zz"), None);
        assert_eq!(parse_sha256_hex(&"é".repeat(32)), None);
    }
}
