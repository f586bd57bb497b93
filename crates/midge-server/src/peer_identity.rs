//! The Common Name of a client certificate, for `use_identity_as_username`.
//!
//! rustls has already verified the certificate when this runs; all that is needed is one field
//! of its subject, so a small DER walk does instead of a full X.509 parser. Anything unexpected
//! yields `None` (the client is then treated as having no identity).

/// DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// DER tag of a SET.
const SET: u8 = 0x31;
/// DER tag of the explicit `[0]` version field of a TBSCertificate.
const VERSION: u8 = 0xA0;
/// DER tag of an OBJECT IDENTIFIER.
const OID: u8 = 0x06;
/// The encoded OID 2.5.4.3 (id-at-commonName).
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// String types a CN may use: UTF8String, PrintableString, TeletexString, IA5String,
/// BMPString is not accepted (not UTF-8).
const STRING_TAGS: &[u8] = &[0x0C, 0x13, 0x14, 0x16];

/// The first Common Name in the subject of the DER certificate `cert`.
pub(crate) fn common_name(cert: &[u8]) -> Option<String> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity: skipped.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, mut subject, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !subject.is_empty() {
        let (tag, mut rdn, next) = tlv(subject)?;
        subject = next;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, next) = tlv(rdn)?;
            rdn = next;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag != OID || oid != COMMON_NAME {
                continue;
            }
            let (tag, text, _) = tlv(value)?;
            if !STRING_TAGS.contains(&tag) {
                return None;
            }
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

/// Splits one DER element off `buf`: (tag, contents, what follows). Only single-byte tags and
/// lengths of up to four bytes, which is all a certificate uses.
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps `contents` in a DER element with `tag`.
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn name(attrs: &[(&[u8], u8, &str)]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, tag, value) in attrs {
            let mut atv = der(OID, oid);
            atv.extend(der(*tag, value.as_bytes()));
            rdns.extend(der(SET, &der(SEQUENCE, &atv)));
        }
        der(SEQUENCE, &rdns)
    }

    fn cert(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[0x01, 0x23]));
        tbs.extend(der(SEQUENCE, &der(OID, &[0x2A, 0x86])));
        tbs.extend(name(&[(COMMON_NAME, 0x0C, "Midge Test CA")]));
        tbs.extend(der(SEQUENCE, &[0x17, 0x00, 0x17, 0x00]));
        tbs.extend_from_slice(subject);
        // A long public key pushes the lengths into the long form.
        tbs.extend(der(SEQUENCE, &[0u8; 300]));
        der(SEQUENCE, &der(SEQUENCE, &tbs))
    }

    #[test]
    fn finds_the_subject_common_name_not_the_issuers() {
        let country: &[u8] = &[0x55, 0x04, 0x06];
        let subject = name(&[(country, 0x13, "DE"), (COMMON_NAME, 0x0C, "alice")]);
        assert_eq!(common_name(&cert(&subject, true)), Some("alice".into()));
        let printable = name(&[(COMMON_NAME, 0x13, "bob")]);
        assert_eq!(common_name(&cert(&printable, false)), Some("bob".into()));
    }

    #[test]
    fn garbage_and_subjects_without_cn_give_none() {
        let country: &[u8] = &[0x55, 0x04, 0x06];
        let subject = name(&[(country, 0x13, "DE")]);
        assert_eq!(common_name(&cert(&subject, true)), None);
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        let full = cert(&name(&[(COMMON_NAME, 0x0C, "alice")]), true);
        for cut in 0..full.len() {
            assert_eq!(common_name(&full[..cut]), None, "cut at {cut}");
        }
    }
}
