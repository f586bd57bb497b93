//! Parsing the client's SCRAM messages (RFC 5802 §7), without channel binding.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `gs2-header client-first-message-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// `n,,` / `y,,` / `n,a=<authzid>,`: echoed, base64-encoded, in the final message.
    pub gs2_header: &'a str,
    /// `n=<user>,r=<nonce>[,ext]`: the part that enters the AuthMessage.
    pub bare: &'a str,
    pub username: String,
    pub nonce: &'a str,
}

/// `c=<cbind>,r=<nonce>[,ext],p=<proof>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    /// Everything before `,p=`: the part that enters the AuthMessage.
    pub without_proof: &'a str,
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub proof: Vec<u8>,
}

pub(crate) fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, &'static str> {
    let mut parts = msg.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("client-first-message lacks a gs2 header");
    };
    match flag {
        // `y`: the client could do channel binding but thinks we cannot, which is true.
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err("channel binding is not supported"),
        _ => return Err("invalid gs2 channel-binding flag"),
    }
    let gs2_header = &msg[..flag.len() + authzid.len() + 2];
    let authzid = match authzid {
        "" => None,
        _ => Some(decode_saslname(
            authzid
                .strip_prefix("a=")
                .ok_or("invalid authorization identity")?,
        )?),
    };
    let mut attrs = bare.split(',');
    let user = attrs.next().unwrap_or_default();
    if user.starts_with("m=") {
        return Err("mandatory extensions are not supported");
    }
    let username = decode_saslname(user.strip_prefix("n=").ok_or("missing username")?)?;
    if username.is_empty() {
        return Err("empty username");
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing client nonce")?;
    if !valid_nonce(nonce) {
        return Err("invalid client nonce");
    }
    if authzid.is_some_and(|a| a != username) {
        return Err("authorization identity differs from the username");
    }
    Ok(ClientFirst {
        gs2_header,
        bare,
        username,
        nonce,
    })
}

pub(crate) fn parse_client_final(msg: &str) -> Result<ClientFinal<'_>, &'static str> {
    let (without_proof, proof) = msg.rsplit_once(",p=").ok_or("missing client proof")?;
    let proof = STANDARD
        .decode(proof)
        .map_err(|_| "client proof is not base64")?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or("missing channel binding")?;
    let channel_binding = STANDARD
        .decode(channel_binding)
        .map_err(|_| "channel binding is not base64")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing nonce")?;
    Ok(ClientFinal {
        without_proof,
        channel_binding,
        nonce,
        proof,
    })
}

/// Printable ASCII except `,` (RFC 5802 `printable`).
pub(crate) fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Undoes `=2C` / `=3D` escaping; any other `=` is malformed.
pub(crate) fn decode_saslname(text: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("invalid '=' escape in name"),
        }
        rest = &rest[at + 3..];
    }
    if rest.contains(',') {
        return Err("unescaped ',' in name");
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes `,` and `=` in a name for a SCRAM message.
#[cfg(test)]
pub(crate) fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7677_client_first() {
        let first = parse_client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").expect("valid");
        assert_eq!(first.gs2_header, "n,,");
        assert_eq!(first.bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first.username, "user");
        assert_eq!(first.nonce, "rOprNGfwEbeRWgbNEkqO");
    }

    #[test]
    fn authzid_and_extensions() {
        let first = parse_client_first("y,a=us=3Der,n=us=3Der,r=abc,x=ext").expect("valid");
        assert_eq!(first.gs2_header, "y,a=us=3Der,");
        assert_eq!(first.username, "us=er");
        assert!(parse_client_first("n,a=other,n=user,r=abc").is_err());
    }

    #[test]
    fn rejects_bad_client_first() {
        for bad in [
            "",
            "n,,",
            "p=tls-unique,,n=user,r=abc",
            "x,,n=user,r=abc",
            "n,,m=ext,n=user,r=abc",
            "n,,n=,r=abc",
            "n,,n=us=2Xer,r=abc",
            "n,,n=user",
            "n,,n=user,r=",
            "n,,n=user,r=a b",
            "n,,r=abc,n=user",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_client_final() {
        let msg = "c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let fin = parse_client_final(msg).expect("valid");
        assert_eq!(fin.without_proof, "c=biws,r=abcdef");
        assert_eq!(fin.channel_binding, b"n,,");
        assert_eq!(fin.nonce, "abcdef");
        assert_eq!(fin.proof.len(), 32);
        for bad in [
            "c=biws,r=abc",
            "r=abc,c=biws,p=AAAA",
            "c=!!,r=a,p=AAAA",
            "c=biws,p=%%",
        ] {
            assert!(parse_client_final(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn saslname_round_trip() {
        for name in ["plain", "a,b", "a=b", "=,=,", "ünï"] {
            assert_eq!(decode_saslname(&encode_saslname(name)).as_deref(), Ok(name));
        }
        assert!(decode_saslname("a=").is_err());
    }
}
