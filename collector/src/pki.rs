//! A small PKI for trials: `outpost-collector pki init` makes a CA and a
//! collector certificate; `pki issue-agent ID` makes an agent certificate
//! whose DNS SAN (and CN) is the agent id. Production sites should use
//! their organisation's CA instead (see SECURITY.md); this is a
//! convenience, and its CA key sits unencrypted in the output directory
//! (mode 0600).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0} already exists; fix: use another --dir or remove it first")]
    Exists(PathBuf),
    #[error("{0}: fix: run `outpost-collector pki init --dir DIR` first")]
    NoCa(PathBuf),
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    if days >= 0 {
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(days);
    } else {
        // An already-expired certificate, for tests of expiry handling.
        params.not_before = now + time::Duration::days(days * 2);
        params.not_after = now + time::Duration::days(days);
    }
}

/// Creates `ca.pem`, `ca-key.pem`, `collector.pem`, `collector-key.pem`
/// in `dir`; the collector certificate is valid for `hosts`.
pub fn init(dir: &Path, hosts: &[String], days: i64) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_path = dir.join("ca.pem");
    if ca_path.exists() {
        return Err(PkiError::Exists(ca_path));
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Outpost trial CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca, days.max(1) * 2);
    let ca_cert = ca.self_signed(&ca_key)?;
    write(&ca_path, &ca_cert.pem(), false)?;
    write(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca, ca_key);
    leaf(
        dir,
        "collector",
        hosts,
        ExtendedKeyUsagePurpose::ServerAuth,
        days,
        &issuer,
    )
}

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let ca_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|_| PkiError::NoCa(p.to_path_buf()));
    let key = KeyPair::from_pem(&read(&key_path)?)?;
    Ok(Issuer::from_ca_cert_pem(&read(&ca_path)?, key)?)
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[String],
    usage: ExtendedKeyUsagePurpose,
    days: i64,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_else(|| name.to_string()),
    );
    params.distinguished_name = dn;
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    let cert = params.signed_by(&key, issuer)?;
    write(&dir.join(format!("{name}.pem")), &cert.pem(), false)?;
    write(
        &dir.join(format!("{name}-key.pem")),
        &key.serialize_pem(),
        true,
    )
}

/// Creates `agent-ID.pem` and `agent-ID-key.pem` signed by the CA in `dir`.
/// A negative `days` makes an already-expired certificate (for tests).
pub fn issue_agent(dir: &Path, id: &str, days: i64) -> Result<(), PkiError> {
    let issuer = load_issuer(dir)?;
    leaf(
        dir,
        &format!("agent-{id}"),
        &[id.to_string()],
        ExtendedKeyUsagePurpose::ClientAuth,
        days,
        &issuer,
    )
}
