//! Hashes and sprig's cryptographic functions: certificates, private keys,
//! bcrypt, htpasswd, AES and the Master Password algorithm behind
//! `derivePassword`.
//!
//! Keys, serial numbers and IVs are random (as in helm); the shape of what is
//! returned (PEM block types, key sizes, hash formats) matches sprig. Keys
//! are generated and encoded by well-kept crates (rsa, p256, dsa, ed25519,
//! der), never assembled here.

use base64::Engine as _;
use der::pem::LineEnding;
use gotemplate::func::arg::{err, int, string, string_bytes};
use gotemplate::{Func, FuncError, FuncResult, Param as P, Struct, Value};
use rand::RngCore as _;
use rand::rngs::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use sha2::Digest as _;

use super::conversions::strval;

pub(super) const FUNCS: &[Func] = &[
    Func::go("sha1sum", &[P::Str], None, |a| {
        Ok(Value::String(hex::encode(sha1::Sha1::digest(
            string_bytes(&a[0])?,
        ))))
    })
    .reading_bytes(),
    Func::go("sha256sum", &[P::Str], None, |a| {
        Ok(Value::String(hex::encode(sha2::Sha256::digest(
            string_bytes(&a[0])?,
        ))))
    })
    .reading_bytes(),
    Func::go("sha512sum", &[P::Str], None, |a| {
        Ok(Value::String(hex::encode(sha2::Sha512::digest(
            string_bytes(&a[0])?,
        ))))
    })
    .reading_bytes(),
    Func::go("adler32sum", &[P::Str], None, |a| {
        Ok(Value::String(
            adler2::adler32_slice(&string_bytes(&a[0])?).to_string(),
        ))
    })
    .reading_bytes(),
    Func::go("genPrivateKey", &[P::Str], None, |a| {
        gen_private_key(&string(&a[0])?)
    }),
    Func::go("genCA", &[P::Str, P::Int], None, |a| ca(a, None)),
    Func::go("genCAWithKey", &[P::Str, P::Int, P::Str], None, |a| {
        ca(a, Some(&a[2]))
    }),
    Func::go(
        "genSelfSignedCert",
        &[P::Str, P::List, P::List, P::Int],
        None,
        |a| self_signed(a, None),
    ),
    Func::go(
        "genSelfSignedCertWithKey",
        &[P::Str, P::List, P::List, P::Int, P::Str],
        None,
        |a| self_signed(a, Some(&a[4])),
    ),
    Func::go(
        "genSignedCert",
        &[P::Str, P::List, P::List, P::Int, P::Host],
        None,
        |a| signed(a, None),
    ),
    Func::go(
        "genSignedCertWithKey",
        &[P::Str, P::List, P::List, P::Int, P::Host, P::Str],
        None,
        |a| signed(a, Some(&a[5])),
    ),
    Func::go(
        "buildCustomCert",
        &[P::Str, P::Str],
        None,
        build_custom_cert,
    ),
    Func::go("bcrypt", &[P::Str], None, |a| {
        Ok(Value::String(bcrypt_hash(&string(&a[0])?)))
    }),
    Func::go("htpasswd", &[P::Str, P::Str], None, htpasswd),
    Func::go("encryptAES", &[P::Str, P::Str], None, |a| {
        encrypt_aes(&string(&a[0])?, &string(&a[1])?)
    }),
    Func::go("decryptAES", &[P::Str, P::Str], None, |a| {
        decrypt_aes(&string(&a[0])?, &string(&a[1])?)
    }),
    Func::go(
        "derivePassword",
        &[P::Host, P::Str, P::Str, P::Str, P::Str],
        None,
        derive_password_func,
    ),
];

/// sprig's `[]interface{}` IP/DNS lists: nil is empty, items are stringified.
fn string_list(v: &Value) -> Result<Vec<String>, FuncError> {
    match v {
        Value::Nil => Ok(vec![]),
        Value::List(l) => Ok(l.iter().map(strval).collect()),
        other => err(format!(
            "wrong type for value; expected []interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// The `...WithKey` functions' PEM key, or a fresh 2048-bit RSA key (sprig's).
fn key_or_new(key: Option<&Value>) -> Result<String, FuncError> {
    match key {
        Some(pem) => string(pem),
        None => new_rsa_pem(2048),
    }
}

fn build_custom_cert(a: &[Value]) -> FuncResult {
    let decode = |v: &Value, what: &str| -> Result<String, FuncError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(string(v)?)
            .map_err(|_| FuncError::new(format!("unable to decode base64 {what}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let cert = decode(&a[0], "certificate")?;
    let key = decode(&a[1], "private key")?;
    if !cert.contains("-----BEGIN CERTIFICATE-----") {
        return err("unable to decode certificate");
    }
    if !key.contains("PRIVATE KEY-----") {
        return err("unable to decode private key");
    }
    Ok(certificate(cert, key))
}

fn htpasswd(a: &[Value]) -> FuncResult {
    let user = string(&a[0])?;
    if user.contains(':') {
        return Ok(Value::String(format!("invalid username: {user}")));
    }
    Ok(Value::String(format!(
        "{user}:{}",
        bcrypt_hash(&string(&a[1])?)
    )))
}

fn derive_password_func(a: &[Value]) -> FuncResult {
    let counter = match &a[0] {
        Value::Int(i) | Value::Int64(i) if *i >= 0 && *i <= u32::MAX as i64 => *i as u32,
        Value::Int(i) | Value::Int64(i) => return err(format!("{i} overflows uint32")),
        other => {
            return err(format!(
                "wrong type for value; expected uint32; got {}",
                other.type_name()
            ));
        }
    };
    Ok(Value::String(derive_password(
        counter,
        &string(&a[1])?,
        &string(&a[2])?,
        &string(&a[3])?,
        &string(&a[4])?,
    )?))
}

fn key_err(e: impl std::fmt::Display) -> FuncError {
    FuncError::new(format!("error generating key: {e}"))
}

/// A fresh RSA key of `bits` bits in PKCS#1 PEM, as Go's `rsa.GenerateKey`
/// and `x509.MarshalPKCS1PrivateKey` make it.
fn new_rsa_pem(bits: usize) -> Result<String, FuncError> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = rsa::PrivateKey::new(&mut rng, bits).map_err(key_err)?;
    Ok(key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(key_err)?
        .to_string())
}

/// OpenSSL's "DSA PRIVATE KEY" structure, which sprig writes.
#[derive(der::Sequence)]
struct OpenSslDsaKey<'a> {
    version: u8,
    p: der::asn1::UintRef<'a>,
    q: der::asn1::UintRef<'a>,
    g: der::asn1::UintRef<'a>,
    y: der::asn1::UintRef<'a>,
    x: der::asn1::UintRef<'a>,
}

impl der::pem::PemLabel for OpenSslDsaKey<'_> {
    const PEM_LABEL: &'static str = "DSA PRIVATE KEY";
}

fn new_dsa_pem() -> Result<String, FuncError> {
    use der::EncodePem as _;
    let components = dsa::Components::generate(
        &mut OsRng,
        // sprig's size; deprecated by the crate as too small for new uses.
        #[allow(deprecated)]
        dsa::KeySize::DSA_1024_160,
    );
    let key = dsa::SigningKey::generate(&mut OsRng, components);
    let public = key.verifying_key();
    let c = public.components();
    let (p, q, g) = (
        c.p().to_bytes_be(),
        c.q().to_bytes_be(),
        c.g().to_bytes_be(),
    );
    let (y, x) = (public.y().to_bytes_be(), key.x().to_bytes_be());
    let uint = |bytes| der::asn1::UintRef::new(bytes).map_err(key_err);
    OpenSslDsaKey {
        version: 0,
        p: uint(&p)?,
        q: uint(&q)?,
        g: uint(&g)?,
        y: uint(&y)?,
        x: uint(&x)?,
    }
    .to_pem(LineEnding::LF)
    .map_err(key_err)
}

/// An Ed25519 key in the PKCS#8 v1 form Go writes (the seed alone, no
/// public key).
fn new_ed25519_pem() -> Result<String, FuncError> {
    let mut secret_key = [0u8; 32];
    OsRng.fill_bytes(&mut secret_key);
    use ed25519::pkcs8::EncodePrivateKey as _;
    let keypair = ed25519::pkcs8::KeypairBytes {
        secret_key,
        public_key: None,
    };
    Ok(keypair
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(key_err)?
        .to_string())
}

/// `genPrivateKey "rsa"|"dsa"|"ecdsa"|"ed25519"`: PEM as sprig writes it.
fn gen_private_key(kind: &str) -> FuncResult {
    let pem = match kind {
        "" | "rsa" => new_rsa_pem(4096)?,
        "ecdsa" => p256::SecretKey::random(&mut OsRng)
            .to_sec1_pem(LineEnding::LF)
            .map_err(key_err)?
            .to_string(),
        "ed25519" => new_ed25519_pem()?,
        "dsa" => new_dsa_pem()?,
        other => format!("Unknown type {other}"),
    };
    Ok(Value::String(pem))
}

/// A PEM private key (RSA PKCS#1, EC SEC1, or PKCS#8) as an rcgen signing key.
fn signing_key(key_pem: &str) -> Result<KeyPair, FuncError> {
    let bad = |e: String| FuncError::new(format!("error parsing private key: {e}"));
    let block = key_pem.trim();
    // rcgen reads PKCS#8: the older RSA and EC forms are converted first.
    let pkcs8 = |der: &[u8], algorithm: &'static rcgen::SignatureAlgorithm| {
        KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), algorithm)
            .map_err(|e| bad(e.to_string()))
    };
    if block.contains("RSA PRIVATE KEY") {
        let key = rsa::PrivateKey::from_pkcs1_pem(block).map_err(|e| bad(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
        return pkcs8(der.as_bytes(), &rcgen::PKCS_RSA_SHA256);
    }
    if block.contains("EC PRIVATE KEY") {
        use p256::pkcs8::EncodePrivateKey as _;
        let key = p256::SecretKey::from_sec1_pem(block).map_err(|e| bad(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
        return pkcs8(der.as_bytes(), &rcgen::PKCS_ECDSA_P256_SHA256);
    }
    if block.contains("BEGIN PRIVATE KEY") {
        if rsa::PrivateKey::from_pkcs8_pem(block).is_ok() {
            return KeyPair::from_pem_and_sign_algo(block, &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| bad(e.to_string()));
        }
        return KeyPair::from_pem(block).map_err(|e| bad(e.to_string()));
    }
    Err(bad("no RSA, EC or PKCS#8 private key found".into()))
}

fn params(
    cn: &str,
    days: i64,
    ips: &[String],
    dns: &[String],
) -> Result<CertificateParams, FuncError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    // Go encodes printable names as PrintableString, others as UTF8String.
    match rcgen::string::PrintableString::try_from(cn) {
        Ok(ps) => p
            .distinguished_name
            .push(DnType::CommonName, rcgen::DnValue::PrintableString(ps)),
        Err(_) => p.distinguished_name.push(DnType::CommonName, cn),
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now;
    p.not_after = now + time::Duration::days(days.clamp(-3_000_000, 3_000_000));
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    // Go's x509 writes DNS names before IP addresses.
    for d in dns {
        let name = d
            .clone()
            .try_into()
            .map_err(|e| FuncError::new(format!("invalid DNS name {d:?}: {e}")))?;
        p.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in ips {
        let addr: std::net::IpAddr = ip
            .parse()
            .map_err(|_| FuncError::new(format!("error parsing ip: {ip}")))?;
        p.subject_alt_names.push(SanType::IpAddress(addr));
    }
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn certificate(cert: String, key: String) -> Value {
    let display = format!("{{{cert} {key}}}");
    Struct::new(
        "sprig.certificate",
        vec![("Cert", Value::str(cert)), ("Key", Value::str(key))],
        display,
    )
    .into_value()
}

fn cert_err(e: impl std::fmt::Display) -> FuncError {
    FuncError::new(format!("error creating certificate: {e}"))
}

/// Parameters of a leaf (non-CA) certificate. sprig marks these "CA:FALSE"
/// (critical basicConstraints with an empty sequence) and, unlike rcgen's
/// `ExplicitNoCa`, gives them no subject key identifier.
fn leaf_params(
    cn: &str,
    days: i64,
    ips: &Value,
    dns: &Value,
) -> Result<CertificateParams, FuncError> {
    let mut p = params(cn, days, &string_list(ips)?, &string_list(dns)?)?;
    let mut no_ca = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
    no_ca.set_criticality(true);
    p.custom_extensions.push(no_ca);
    Ok(p)
}

/// `genCA cn days [key]`.
fn ca(a: &[Value], key: Option<&Value>) -> FuncResult {
    let (cn, days, key_pem) = (string(&a[0])?, int(&a[1])?, key_or_new(key)?);
    let key = signing_key(&key_pem)?;
    let mut p = params(&cn, days, &[], &[])?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let cert = p.self_signed(&key).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem))
}

/// `genSelfSignedCert cn ips dns days [key]`.
fn self_signed(a: &[Value], key: Option<&Value>) -> FuncResult {
    let (cn, days, key_pem) = (string(&a[0])?, int(&a[3])?, key_or_new(key)?);
    let key = signing_key(&key_pem)?;
    let p = leaf_params(&cn, days, &a[1], &a[2])?;
    let cert = p.self_signed(&key).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem))
}

fn ca_parts(ca: &Value) -> Result<(String, String), FuncError> {
    let field = |n: &str| {
        let value = match ca {
            Value::Object(o) => o.member(n, &[]).and_then(Result::ok),
            Value::Map(m) => m.borrow().get(n).cloned(),
            _ => None,
        };
        match value {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    };
    match (field("Cert"), field("Key")) {
        (Some(c), Some(k)) => Ok((c, k)),
        _ => err(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            ca.type_name()
        )),
    }
}

/// `genSignedCert cn ips dns days ca [key]`.
fn signed(a: &[Value], key: Option<&Value>) -> FuncResult {
    let (cn, days, key_pem) = (string(&a[0])?, int(&a[3])?, key_or_new(key)?);
    let (ca_cert, ca_key) = ca_parts(&a[4])?;
    let ca_signer = signing_key(&ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_signer)
        .map_err(|e| FuncError::new(format!("error parsing ca certificate: {e}")))?;
    let key = signing_key(&key_pem)?;
    let mut p = leaf_params(&cn, days, &a[1], &a[2])?;
    // Go names the issuing CA's key in the signed certificate.
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, &issuer).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem))
}

/// bcrypt at Go's default cost, with Go's `$2a$` prefix.
fn bcrypt_hash(password: &str) -> String {
    // bcrypt only reads the first 72 bytes; Go's implementation refuses longer
    // passwords, sprig then returns an error string.
    if password.len() > 72 {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
            .into();
    }
    match bcrypt::hash_with_result(password, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

/// The key is the password's bytes, zero-padded or cut to 32 (AES-256).
fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let b = password.as_bytes();
    let n = b.len().min(32);
    key[..n].copy_from_slice(&b[..n]);
    key
}

/// AES-256-CBC, PKCS#7 padding, random IV prepended, base64 (sprig's encryptAES).
fn encrypt_aes(password: &str, plain: &str) -> FuncResult {
    use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut iv);
    let enc = cbc::Encryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into());
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes());
    let mut out = iv.to_vec();
    out.extend(ct);
    Ok(Value::str(
        base64::engine::general_purpose::STANDARD.encode(out),
    ))
}

fn decrypt_aes(password: &str, b64: &str) -> FuncResult {
    use aes::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::NoPadding};
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| FuncError::new(format!("illegal base64 data: {e}")))?;
    if data.len() < 16 || data.len() % 16 != 0 {
        return err("ciphertext is not a multiple of the block size");
    }
    let (iv, ct) = data.split_at(16);
    let mut iv_arr = [0u8; 16];
    iv_arr.copy_from_slice(iv);
    let dec = cbc::Decryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv_arr.into());
    let plain = dec
        .decrypt_padded_vec_mut::<NoPadding>(ct)
        .map_err(|e| FuncError::new(e.to_string()))?;
    // Strip the PKCS#7 padding by its last byte, as sprig does.
    let pad = plain.last().copied().unwrap_or(0) as usize;
    if pad == 0 || pad > plain.len() {
        return err("invalid padding");
    }
    Ok(Value::str(
        String::from_utf8_lossy(&plain[..plain.len() - pad]).into_owned(),
    ))
}

/// The Master Password algorithm (v3) as sprig's derivePassword uses it.
fn derive_password(
    counter: u32,
    kind: &str,
    password: &str,
    user: &str,
    site: &str,
) -> Result<String, FuncError> {
    use hmac::Mac as _;
    let templates: &[&str] = match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return Ok(format!("cannot find password template {kind}")),
    };
    const SCOPE: &str = "com.lyndir.masterpassword";
    let mut salt = SCOPE.as_bytes().to_vec();
    salt.extend((user.len() as u32).to_be_bytes());
    salt.extend(user.as_bytes());
    let params = scrypt::Params::new(15, 8, 2, 64).map_err(|e| FuncError::new(e.to_string()))?;
    let mut key = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key)
        .map_err(|e| FuncError::new(e.to_string()))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|e| FuncError::new(e.to_string()))?;
    mac.update(SCOPE.as_bytes());
    mac.update(&(site.len() as u32).to_be_bytes());
    mac.update(site.as_bytes());
    mac.update(&counter.to_be_bytes());
    let seed = mac.finalize().into_bytes();
    let template = templates[seed[0] as usize % templates.len()];
    let mut out = String::new();
    for (i, c) in template.chars().enumerate() {
        let chars: &str = match c {
            'V' => "AEIOU",
            'C' => "BCDFGHJKLMNPQRSTVWXYZ",
            'v' => "aeiou",
            'c' => "bcdfghjklmnpqrstvwxyz",
            'A' => "AEIOUBCDFGHJKLMNPQRSTVWXYZ",
            'a' => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
            'n' => "0123456789",
            'o' => "@&%?,=[]_:-+*$#!'^~;()/.",
            'x' => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
            _ => " ",
        };
        let b = chars.as_bytes();
        out.push(b[seed[i + 1] as usize % b.len()] as char);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rsa::traits::PublicKeyParts as _;

    use super::*;

    #[test]
    fn generated_keys_parse_back_as_the_kind_asked_for() {
        let rsa_pem = new_rsa_pem(2048).unwrap();
        let key = rsa::PrivateKey::from_pkcs1_pem(&rsa_pem).unwrap();
        assert_eq!(key.size() * 8, 2048);
        key.validate().unwrap();

        let ed = new_ed25519_pem().unwrap();
        assert!(ed.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{ed}");
        let parsed =
            <ed25519::pkcs8::KeypairBytes as ed25519::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&ed)
                .unwrap();
        assert!(parsed.public_key.is_none(), "Go writes the v1 form");

        let dsa_pem = new_dsa_pem().unwrap();
        assert!(
            dsa_pem.starts_with("-----BEGIN DSA PRIVATE KEY-----\n"),
            "{dsa_pem}"
        );

        let ec = gen_private_key("ecdsa").unwrap();
        let Value::String(ec) = ec else {
            panic!("a string")
        };
        p256::SecretKey::from_sec1_pem(&ec).unwrap();
    }

    #[test]
    fn a_generated_ca_signs_a_certificate_for_the_names_given() {
        let ca = ca(&[Value::str("berth-ca"), Value::Int(30)], None).unwrap();
        let ips = Value::list(vec![Value::str("10.0.0.1")]);
        let dns = Value::list(vec![Value::str("svc.example")]);
        let key = Value::String(new_rsa_pem(2048).unwrap());
        let args = [Value::str("svc"), ips, dns, Value::Int(30), ca];
        let leaf = signed(&args, Some(&key)).unwrap();
        let (cert, _) = ca_parts(&leaf).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let (_, der) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
        let parsed = der.parse_x509().unwrap();
        assert_eq!(parsed.issuer().to_string(), "CN=berth-ca");
        use x509_parser::extensions::GeneralName;
        let names = &parsed
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(
            names.contains(&GeneralName::DNSName("svc.example")),
            "{names:?}"
        );
        assert!(
            names.contains(&GeneralName::IPAddress(&[10, 0, 0, 1])),
            "{names:?}"
        );
    }
}
