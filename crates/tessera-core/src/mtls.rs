//! Mutual-TLS client authentication and certificate-bound tokens (RFC 8705).
//!
//! The listener proved that the client holds the private key of the certificate it presented
//! (the TLS handshake signature); here the certificate is compared with what the client
//! registered: its subject or one subject alternative name for `tls_client_auth` (§2.1.2,
//! after the server validated the chain), its public key among the registered JWKS for
//! `self_signed_tls_client_auth` (§2.2). A token bound to the certificate carries
//! `cnf.x5t#S256`, the SHA-256 of the certificate's DER (§3.1).

use std::net::IpAddr;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// RFC 8705 §2.1.2: the one name a `tls_client_auth` client registered, which its
/// certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateName {
    /// `tls_client_auth_subject_dn`: the subject, as an RFC 4514 string.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`: a dNSName SAN.
    SanDns(String),
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier SAN.
    SanUri(String),
    /// `tls_client_auth_san_ip`: an iPAddress SAN (IPv4 or IPv6).
    SanIp(IpAddr),
    /// `tls_client_auth_san_email`: an rfc822Name SAN.
    SanEmail(String),
}

impl CertificateName {
    /// The RFC 8705 §2.1.2 metadata names, in the order the store keeps them.
    pub const MEMBERS: [&'static str; 5] = [
        "tls_client_auth_subject_dn",
        "tls_client_auth_san_dns",
        "tls_client_auth_san_uri",
        "tls_client_auth_san_ip",
        "tls_client_auth_san_email",
    ];

    /// Parses the value of the metadata member `member`.
    pub fn parse(member: &str, value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{member} must not be empty"));
        }
        Ok(match member {
            "tls_client_auth_subject_dn" => {
                parse_dn(value).map_err(|e| format!("{member}: {e}"))?;
                Self::SubjectDn(value.to_owned())
            }
            "tls_client_auth_san_dns" => Self::SanDns(value.to_owned()),
            "tls_client_auth_san_uri" => {
                url::Url::parse(value).map_err(|_| format!("{member}: not an absolute URI"))?;
                Self::SanUri(value.to_owned())
            }
            "tls_client_auth_san_ip" => Self::SanIp(
                value.parse().map_err(|_| format!("{member}: not an IPv4 or IPv6 address"))?,
            ),
            "tls_client_auth_san_email" => {
                if !value.contains('@') {
                    return Err(format!("{member}: not an e-mail address"));
                }
                Self::SanEmail(value.to_owned())
            }
            _ => return Err(format!("{member} is not a tls_client_auth name")),
        })
    }

    /// Its metadata member name.
    pub fn member(&self) -> &'static str {
        let i = match self {
            Self::SubjectDn(_) => 0,
            Self::SanDns(_) => 1,
            Self::SanUri(_) => 2,
            Self::SanIp(_) => 3,
            Self::SanEmail(_) => 4,
        };
        Self::MEMBERS[i]
    }

    /// Its metadata value, as registered.
    pub fn value(&self) -> String {
        match self {
            Self::SubjectDn(v) | Self::SanDns(v) | Self::SanUri(v) | Self::SanEmail(v) => v.clone(),
            Self::SanIp(ip) => ip.to_string(),
        }
    }

    /// Whether the certificate (DER) carries this name. A certificate that does not parse
    /// carries none.
    pub fn matches(&self, der: &[u8]) -> bool {
        let Ok((_, cert)) = X509Certificate::from_der(der) else { return false };
        match self {
            Self::SubjectDn(dn) => {
                let Ok(registered) = parse_dn(dn) else { return false };
                subject_matches(&cert, &registered)
            }
            other => {
                let Ok(Some(san)) = cert.subject_alternative_name() else { return false };
                san.value.general_names.iter().any(|name| match (other, name) {
                    // RFC 5280 §7.2 / RFC 4343: host names compare case-insensitively.
                    (Self::SanDns(want), GeneralName::DNSName(have)) => {
                        want.trim_end_matches('.').eq_ignore_ascii_case(have.trim_end_matches('.'))
                    }
                    (Self::SanUri(want), GeneralName::URI(have)) => want == have,
                    (Self::SanIp(want), GeneralName::IPAddress(have)) => ip_bytes(*want) == *have,
                    // RFC 5280 §4.2.1.6: the local part is exact, the domain case-insensitive.
                    (Self::SanEmail(want), GeneralName::RFC822Name(have)) => email_eq(want, have),
                    _ => false,
                })
            }
        }
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn email_eq(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => false,
    }
}

/// RFC 8705 §3.1 `x5t#S256`: the base64url SHA-256 of the certificate's DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, der))
}

/// The RFC 7638 thumbprint of the certificate's public key as a JWK (RSA, EC P-256/P-384,
/// Ed25519), to find it among a client's registered keys (§2.2); `None` for other keys or a
/// certificate that does not parse.
pub fn public_key_thumbprint(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spki = cert.public_key();
    let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
    let mut jwk = Map::new();
    let algorithm = spki.algorithm.algorithm.to_id_string();
    if algorithm == "1.3.101.112" {
        jwk.insert("kty".into(), "OKP".into());
        jwk.insert("crv".into(), "Ed25519".into());
        jwk.insert("x".into(), b64(&spki.subject_public_key.data));
        return tessera_jose::dpop::thumbprint(&jwk);
    }
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let strip = |b: &[u8]| b.iter().skip_while(|x| **x == 0).copied().collect::<Vec<_>>();
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert("n".into(), b64(&strip(rsa.modulus)));
            jwk.insert("e".into(), b64(&strip(rsa.exponent)));
        }
        PublicKey::EC(point) => {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?.to_id_string();
            let (crv, size) = match curve.as_str() {
                "1.2.840.10045.3.1.7" => ("P-256", 32),
                "1.3.132.0.34" => ("P-384", 48),
                _ => return None,
            };
            // Uncompressed point: 0x04 ‖ x ‖ y.
            let data = point.data();
            if data.len() != 1 + 2 * size || data[0] != 4 {
                return None;
            }
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), crv.into());
            jwk.insert("x".into(), b64(&data[1..=size]));
            jwk.insert("y".into(), b64(&data[1 + size..]));
        }
        _ => return None,
    }
    tessera_jose::dpop::thumbprint(&jwk)
}

/// Whether the certificate's public key is one of `keys` (RFC 8705 §2.2: the client
/// registered the key of its self-signed certificate in its JWKS).
pub fn key_is_registered(der: &[u8], keys: &tessera_jose::Jwks) -> bool {
    let Some(presented) = public_key_thumbprint(der) else { return false };
    keys.keys().iter().any(|k| {
        k.thumbprint().is_some_and(|t| {
            subtle::ConstantTimeEq::ct_eq(t.as_bytes(), presented.as_bytes()).into()
        })
    })
}

/// One attribute of a distinguished name: its type as a dotted OID and its value.
type Attribute = (String, String);

/// Parses an RFC 4514 string into its RDNs in the order written (most specific first), each
/// a sorted list of attributes.
fn parse_dn(text: &str) -> Result<Vec<Vec<Attribute>>, String> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(text, ',') {
        let mut attributes = Vec::new();
        for ava in split_unescaped(&rdn, '+') {
            let (name, value) =
                ava.split_once('=').ok_or_else(|| format!("`{ava}` is not TYPE=value"))?;
            let oid = attribute_oid(name.trim())
                .ok_or_else(|| format!("unknown attribute type `{}`", name.trim()))?;
            attributes.push((oid, normalize(&unescape(value.trim())?)));
        }
        attributes.sort();
        rdns.push(attributes);
    }
    if rdns.is_empty() {
        return Err("empty distinguished name".into());
    }
    Ok(rdns)
}

/// Splits on `separator` where it is not escaped by a backslash (RFC 4514 §2.4).
fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let (mut parts, mut current, mut escaped) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// RFC 4514 §3: `\` followed by a special character or by two hex digits (a UTF-8 byte).
fn unescape(value: &str) -> Result<String, String> {
    if value.starts_with('#') {
        return Err("hex-encoded (#…) attribute values are not supported".into());
    }
    let mut bytes = Vec::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let first = chars.next().ok_or("a value ends with a lone backslash")?;
        match (first.to_digit(16), chars.peek().and_then(|c| c.to_digit(16))) {
            (Some(high), Some(low)) => {
                chars.next();
                bytes.push((high * 16 + low) as u8);
            }
            _ => {
                let mut buf = [0; 4];
                bytes.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".into())
}

/// The comparison form of a value: caseIgnoreMatch with insignificant spaces removed
/// (RFC 4517 §4.2.11, RFC 4518 §2.6.1), which is how the common directory attributes compare.
fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The short names of RFC 4514 §3 and the few more certificates commonly carry.
fn attribute_oid(name: &str) -> Option<String> {
    let known = [
        ("CN", "2.5.4.3"),
        ("L", "2.5.4.7"),
        ("ST", "2.5.4.8"),
        ("O", "2.5.4.10"),
        ("OU", "2.5.4.11"),
        ("C", "2.5.4.6"),
        ("STREET", "2.5.4.9"),
        ("DC", "0.9.2342.19200300.100.1.25"),
        ("UID", "0.9.2342.19200300.100.1.1"),
        ("SERIALNUMBER", "2.5.4.5"),
        ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
    ];
    if let Some((_, oid)) = known.iter().find(|(short, _)| short.eq_ignore_ascii_case(name)) {
        return Some((*oid).to_owned());
    }
    // RFC 4514 §3: a dotted-decimal OID.
    let dotted =
        name.split('.').all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    (dotted && name.contains('.')).then(|| name.to_owned())
}

/// RFC 4514 §2.1 writes the RDNs in reverse order of the certificate's sequence.
fn subject_matches(cert: &X509Certificate<'_>, registered: &[Vec<Attribute>]) -> bool {
    let mut subject = Vec::new();
    for rdn in cert.subject().iter() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let Ok(value) = attribute.as_str() else { return false };
            attributes.push((attribute.attr_type().to_id_string(), normalize(value)));
        }
        attributes.sort();
        subject.push(attributes);
    }
    subject.reverse();
    subject == registered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_distinguished_names_parse_with_escapes_and_multivalued_rdns() {
        let dn = parse_dn(r"CN=Acme\, Inc.+UID=7,O=Example, C=DE").unwrap();
        assert_eq!(dn.len(), 3);
        assert_eq!(
            dn[0],
            vec![
                ("0.9.2342.19200300.100.1.1".to_owned(), "7".to_owned()),
                ("2.5.4.3".to_owned(), "acme, inc.".to_owned())
            ]
        );
        assert_eq!(dn[2], vec![("2.5.4.6".to_owned(), "de".to_owned())]);
        assert!(parse_dn("CN").is_err());
        assert!(parse_dn("XYZ=1").is_err());
        assert!(parse_dn("CN=#0403").is_err());
        assert_eq!(parse_dn(r"CN=caf\C3\A9").unwrap()[0][0].1, "café");
    }

    #[test]
    fn rfc8705_2_1_2_only_one_known_member_parses() {
        assert!(CertificateName::parse("tls_client_auth_san_ip", "10.0.0.1").is_ok());
        assert!(CertificateName::parse("tls_client_auth_san_ip", "host").is_err());
        assert!(CertificateName::parse("tls_client_auth_san_uri", "relative").is_err());
        assert!(CertificateName::parse("tls_client_auth_subject_dn", "").is_err());
        assert!(CertificateName::parse("tls_client_auth_other", "x").is_err());
        assert!(!CertificateName::SanDns("a.example".into()).matches(b"not a certificate"));
    }
}
