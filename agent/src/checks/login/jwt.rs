//! ID token checks: decode the JWT, validate `iss`, `aud`, `exp` and
//! `nonce`, and verify the signature against the provider's JWKS
//! (RS256/RS384/RS512 and ES256 with `ring`; HS256 with the client secret).
//!
//! Pure functions: the caller fetches the JWKS. Errors say which claim
//! failed and never include the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// Longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`.
pub const LEEWAY_SECS: i64 = 60;

/// A decoded, not yet verified JWT.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// `alg` of the header.
    pub fn alg(&self) -> &str {
        self.header["alg"].as_str().unwrap_or("")
    }

    /// `kid` of the header.
    pub fn kid(&self) -> Option<&str> {
        self.header["kid"].as_str()
    }
}

/// Splits and decodes a compact JWS.
pub fn decode(token: &str) -> Result<Jwt, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("id_token longer than {MAX_TOKEN_BYTES} bytes"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("id_token is not a compact JWT (three dot-separated parts)".into());
    };
    let part = |x: &str, what: &str| -> Result<Value, String> {
        let raw = URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| format!("id_token {what} is not base64url"))?;
        serde_json::from_slice(&raw).map_err(|_| format!("id_token {what} is not JSON"))
    };
    let header = part(h, "header")?;
    let claims = part(p, "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "id_token signature is not base64url".to_string())?;
    Ok(Jwt {
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// Checks `iss`, `aud` (and `azp` with several audiences), `exp` and
/// `nonce` against what the login expects. `now` is Unix seconds.
pub fn validate_claims(
    jwt: &Jwt,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<(), String> {
    let c = &jwt.claims;
    let iss = c["iss"].as_str().unwrap_or("");
    if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(format!("id_token iss {iss:?} is not the issuer {issuer:?}"));
    }
    let aud_ok = match &c["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(list) => {
            list.iter().any(|a| a.as_str() == Some(client_id))
                && (list.len() == 1 || c["azp"].as_str() == Some(client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "id_token aud does not name the client {client_id:?}"
        ));
    }
    let Some(exp) = c["exp"].as_i64() else {
        return Err("id_token has no exp".into());
    };
    if exp + LEEWAY_SECS < now {
        return Err(format!("id_token expired {} s ago", now - exp));
    }
    if let Some(n) = nonce {
        if c["nonce"].as_str() != Some(n) {
            return Err("id_token nonce does not match the authorize request".into());
        }
    }
    Ok(())
}

/// Verifies the signature with a key of `jwks` (`{"keys": [...]}`) or, for
/// HS256, with `client_secret`.
pub fn verify_signature(
    jwt: &Jwt,
    jwks: &Value,
    client_secret: Option<&str>,
) -> Result<(), String> {
    use ring::signature as sig;
    let msg = jwt.signing_input.as_bytes();
    let alg = jwt.alg();
    if alg == "HS256" {
        let secret = client_secret
            .ok_or("id_token is HS256 but the login has no client secret to verify it")?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        return ring::hmac::verify(&key, msg, &jwt.signature)
            .map_err(|_| "id_token HS256 signature does not verify".to_string());
    }
    let (kty, rsa_alg): (&str, Option<&'static sig::RsaParameters>) = match alg {
        "RS256" => ("RSA", Some(&sig::RSA_PKCS1_2048_8192_SHA256)),
        "RS384" => ("RSA", Some(&sig::RSA_PKCS1_2048_8192_SHA384)),
        "RS512" => ("RSA", Some(&sig::RSA_PKCS1_2048_8192_SHA512)),
        "PS256" => ("RSA", Some(&sig::RSA_PSS_2048_8192_SHA256)),
        "ES256" => ("EC", None),
        other => return Err(format!("id_token alg {other:?} is not supported")),
    };
    let keys = jwks["keys"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| k["kty"].as_str() == Some(kty))
        .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
        .filter(|k| match (jwt.kid(), k["kid"].as_str()) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "no {kty} key{} in the provider's JWKS",
            jwt.kid()
                .map(|k| format!(" with kid {k:?}"))
                .unwrap_or_default()
        ));
    }
    let b64 = |v: &Value| v.as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    for key in candidates {
        let ok = match rsa_alg {
            Some(params) => match (b64(&key["n"]), b64(&key["e"])) {
                (Some(n), Some(e)) => sig::RsaPublicKeyComponents { n, e }
                    .verify(params, msg, &jwt.signature)
                    .is_ok(),
                _ => false,
            },
            None => match (b64(&key["x"]), b64(&key["y"])) {
                (Some(x), Some(y)) if key["crv"].as_str() == Some("P-256") => {
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                        .verify(msg, &jwt.signature)
                        .is_ok()
                }
                _ => false,
            },
        };
        if ok {
            return Ok(());
        }
    }
    Err(format!(
        "id_token {alg} signature does not verify against the provider's JWKS"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hs256(claims: &Value, secret: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg":"HS256","typ":"JWT"}).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn claims_are_checked_one_by_one() {
        let now = 1_700_000_000;
        let good = json!({"iss":"http://id/","aud":"outpost","exp":now+300,"nonce":"n1"});
        let jwt = decode(&hs256(&good, "s")).unwrap();
        validate_claims(&jwt, "http://id", "outpost", Some("n1"), now).unwrap();
        verify_signature(&jwt, &json!({}), Some("s")).unwrap();
        assert!(verify_signature(&jwt, &json!({}), Some("other")).is_err());
        let cases = [
            (
                json!({"iss":"http://evil","aud":"outpost","exp":now+300,"nonce":"n1"}),
                "iss",
            ),
            (
                json!({"iss":"http://id","aud":"other","exp":now+300,"nonce":"n1"}),
                "aud",
            ),
            (
                json!({"iss":"http://id","aud":["outpost","x"],"exp":now+300,"nonce":"n1"}),
                "aud",
            ),
            (
                json!({"iss":"http://id","aud":"outpost","exp":now-300,"nonce":"n1"}),
                "expired",
            ),
            (
                json!({"iss":"http://id","aud":"outpost","exp":now+300,"nonce":"n2"}),
                "nonce",
            ),
            (
                json!({"iss":"http://id","aud":"outpost","nonce":"n1"}),
                "exp",
            ),
        ];
        for (claims, want) in cases {
            let jwt = decode(&hs256(&claims, "s")).unwrap();
            let err = validate_claims(&jwt, "http://id", "outpost", Some("n1"), now).unwrap_err();
            assert!(err.contains(want), "{claims}: {err}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.??.##",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(decode(bad).is_err(), "{bad:.20}");
        }
        let jwt = decode(&hs256(&json!({}), "s")).unwrap();
        let mut rs = jwt.clone();
        rs.header = json!({"alg":"RS256","kid":"k1"});
        let err = verify_signature(&rs, &json!({"keys":[]}), None).unwrap_err();
        assert!(err.contains("kid"), "{err}");
        rs.header = json!({"alg":"none"});
        assert!(verify_signature(&rs, &json!({"keys":[]}), None).is_err());
    }
}
