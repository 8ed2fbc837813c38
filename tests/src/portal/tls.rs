//! TLS mode of the simulated portal: a throwaway CA and a `localhost` /
//! `127.0.0.1` server certificate made with rcgen at start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::util::{civil_from_days, now_epoch};

const DAY: i64 = 86_400;

/// What [`server_config`] makes.
pub struct TlsMaterial {
    pub config: Arc<rustls::ServerConfig>,
    /// PEM of the CA that signed the server certificate: the one thing a
    /// client has to trust.
    pub ca_pem: String,
    /// PEM of the server certificate itself.
    pub cert_pem: String,
}

/// Makes a CA (valid from well before the server certificate until ten years
/// from now) and a server certificate for `localhost` and `127.0.0.1` whose
/// `notAfter` is `days` days from now (negative: already expired; clamped to
/// ±3650). The server certificate's `notBefore` is one hour ago, or for an
/// expired one 30 days before its `notAfter`.
pub fn server_config(days: i64) -> anyhow::Result<TlsMaterial> {
    let days = days.clamp(-3650, 3650);
    let now = i64::try_from(now_epoch().as_secs()).unwrap_or(0);
    let leaf_not_after = now + days * DAY;
    let leaf_not_before = if days > 0 {
        now - 3600
    } else {
        leaf_not_after - 30 * DAY
    };

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Outpost test portal CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(
        &mut ca_params,
        leaf_not_before.min(now) - DAY,
        now + 3650 * DAY,
    );
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).context("signing the CA")?;

    let leaf_key = KeyPair::generate().context("generating the server key")?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    set_validity(&mut leaf, leaf_not_before, leaf_not_after);
    let cert = leaf
        .signed_by(&leaf_key, &ca)
        .context("signing the server certificate")?;

    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS server certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
    })
}

/// Sets `notBefore` / `notAfter` from epoch seconds (clamped at the epoch).
fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let stamp = |epoch_secs: i64| {
        let secs = epoch_secs.max(0);
        let (y, m, d) = civil_from_days(secs / DAY);
        let midnight = date_time_ymd(
            i32::try_from(y).unwrap_or(1970),
            u8::try_from(m).unwrap_or(1),
            u8::try_from(d).unwrap_or(1),
        );
        midnight + Duration::from_secs(u64::try_from(secs % DAY).unwrap_or(0))
    };
    params.not_before = stamp(not_before);
    params.not_after = stamp(not_after);
}
