//! sprig's cryptographic functions: certificates, private keys, bcrypt,
//! htpasswd, AES and the Master Password algorithm behind `derivePassword`.
//!
//! Keys, serial numbers and IVs are random (as in helm); the shape of what is
//! returned — PEM block types, key sizes, hash formats — matches sprig.

use std::rc::Rc;

use base64::Engine as _;
use rand::RngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use crate::render::template::FuncError;
use crate::render::value::{Object, Value};

use super::args::{R, err, int, string, want};

/// sprig's `[]interface{}` IP/DNS lists: nil is empty, items are stringified.
fn string_list(v: &Value) -> Result<Vec<String>, FuncError> {
    match v {
        Value::Nil => Ok(vec![]),
        Value::List(l) => Ok(l.iter().map(crate::render::funcs::strval).collect()),
        other => err(format!(
            "wrong type for value; expected []interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// Dispatches the functions of this module; `None` for other names.
pub fn call(name: &str, a: &[Value]) -> Option<R> {
    Some(match name {
        "genPrivateKey" => (|| {
            want(name, a, 1)?;
            gen_private_key(&string(&a[0])?)
        })(),
        "genCA" => (|| {
            want(name, a, 2)?;
            let key = new_rsa_pem(2048)?;
            gen_ca(&string(&a[0])?, int(&a[1])?, &key)
        })(),
        "genCAWithKey" => (|| {
            want(name, a, 3)?;
            gen_ca(&string(&a[0])?, int(&a[1])?, &string(&a[2])?)
        })(),
        "genSelfSignedCert" => (|| {
            want(name, a, 4)?;
            let key = new_rsa_pem(2048)?;
            gen_self_signed(&string(&a[0])?, &a[1], &a[2], int(&a[3])?, &key)
        })(),
        "genSelfSignedCertWithKey" => (|| {
            want(name, a, 5)?;
            gen_self_signed(&string(&a[0])?, &a[1], &a[2], int(&a[3])?, &string(&a[4])?)
        })(),
        "genSignedCert" => (|| {
            want(name, a, 5)?;
            let key = new_rsa_pem(2048)?;
            gen_signed(&string(&a[0])?, &a[1], &a[2], int(&a[3])?, &a[4], &key)
        })(),
        "genSignedCertWithKey" => (|| {
            want(name, a, 6)?;
            gen_signed(
                &string(&a[0])?,
                &a[1],
                &a[2],
                int(&a[3])?,
                &a[4],
                &string(&a[5])?,
            )
        })(),
        "buildCustomCert" => (|| {
            want(name, a, 2)?;
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
        })(),
        "bcrypt" => (|| {
            want(name, a, 1)?;
            Ok(Value::str(bcrypt_hash(&string(&a[0])?)))
        })(),
        "htpasswd" => (|| {
            want(name, a, 2)?;
            let user = string(&a[0])?;
            if user.contains(':') {
                return Ok(Value::str(format!("invalid username: {user}")));
            }
            Ok(Value::str(format!(
                "{user}:{}",
                bcrypt_hash(&string(&a[1])?)
            )))
        })(),
        "encryptAES" => (|| {
            want(name, a, 2)?;
            encrypt_aes(&string(&a[0])?, &string(&a[1])?)
        })(),
        "decryptAES" => (|| {
            want(name, a, 2)?;
            decrypt_aes(&string(&a[0])?, &string(&a[1])?)
        })(),
        "derivePassword" => (|| {
            want(name, a, 5)?;
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
            Ok(Value::str(derive_password(
                counter,
                &string(&a[1])?,
                &string(&a[2])?,
                &string(&a[3])?,
                &string(&a[4])?,
            )?))
        })(),
        _ => return None,
    })
}

fn pem(tag: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

fn crypto_err(e: impl std::fmt::Display) -> FuncError {
    FuncError::new(format!("error generating key: {e}"))
}

/// A fresh RSA key with public exponent 65537, as Go's `rsa.GenerateKey` makes.
///
/// Each prime is searched by two threads at once with crypto-primes
/// (small-factor sieve, then Miller-Rabin base 2 and a strong Lucas test),
/// and the first prime either finds is taken: `genCA` charts are dominated by
/// this (docs/benchmarks.md).
fn new_rsa(bits: usize) -> Result<rsa::RsaPrivateKey, FuncError> {
    let exponent = rsa::BigUint::from(65_537u32);
    // A prime p with gcd(e, p-1) != 1 cannot be used; draw again (rare).
    for _ in 0..16 {
        let (p, q) = match bits {
            2048 => (
                raced_prime::<crypto_bigint::U1024>(1024)?,
                raced_prime::<crypto_bigint::U1024>(1024)?,
            ),
            4096 => (
                raced_prime::<crypto_bigint::U2048>(2048)?,
                raced_prime::<crypto_bigint::U2048>(2048)?,
            ),
            _ => return rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).map_err(crypto_err),
        };
        if p == q {
            continue;
        }
        if let Ok(key) = rsa::RsaPrivateKey::from_p_q(p, q, exponent.clone()) {
            return Ok(key);
        }
    }
    Err(crypto_err("no usable primes found"))
}

/// A random prime of exactly `bits` bits with its two top bits set (so that
/// the product of two has exactly twice as many bits), searched from two
/// random starting points by this thread and a helper on another CPU; the
/// first prime found wins and stops the other search. The time to a prime
/// varies a lot from one start to another: racing two searches takes the
/// shorter, where searching p and q side by side waits for the longer
/// (docs/benchmarks.md).
fn raced_prime<T>(bits: u32) -> Result<rsa::BigUint, FuncError>
where
    T: crypto_bigint::UnsignedWithMontyForm + crypto_bigint::RandomBits + crypto_bigint::RandomMod,
    T: crypto_bigint::Encoding,
{
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let found = Arc::new(AtomicBool::new(false));
    let spawner = crate::render::helper_cpu::SpawnerCpu::current();
    let other = std::thread::Builder::new()
        .name("berth-keygen".into())
        .spawn({
            let found = Arc::clone(&found);
            let spawner = spawner.clone();
            move || {
                if let Some(spawner) = &spawner {
                    spawner.settle_helper();
                }
                search_prime::<T>(bits, &found)
            }
        })
        .map_err(crypto_err)?;
    if let Some(spawner) = &spawner {
        spawner.move_off(&other);
    }
    let here = search_prime::<T>(bits, &found);
    let there = other
        .join()
        .map_err(|_| crypto_err("prime search failed"))?;
    match (here?, there?) {
        (Some(prime), _) | (None, Some(prime)) => Ok(prime),
        (None, None) => Err(crypto_err("no prime found")),
    }
}

/// One side of [`raced_prime`]: `Some` only for the side that found a prime
/// first, `None` when the other side did.
fn search_prime<T>(
    bits: u32,
    found: &std::sync::atomic::AtomicBool,
) -> Result<Option<rsa::BigUint>, FuncError>
where
    T: crypto_bigint::UnsignedWithMontyForm + crypto_bigint::RandomBits + crypto_bigint::RandomMod,
    T: crypto_bigint::Encoding,
{
    use crypto_primes::hazmat::{SetBits, SmallFactorsSieveFactory};
    use std::sync::atomic::Ordering;
    let flavor = crypto_primes::Flavor::Any;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let sieve =
        SmallFactorsSieveFactory::<T>::new(flavor, bits, SetBits::TwoMsb).map_err(crypto_err)?;
    let won = std::cell::Cell::new(false);
    // The search ends at the first candidate the closure accepts: a prime
    // of ours, or any candidate once the other side has won (then dropped).
    let candidate = crypto_primes::sieve_and_find(&mut rng, sieve, |_, candidate| {
        if found.load(Ordering::Acquire) {
            return true;
        }
        let prime = crypto_primes::is_prime(flavor, candidate);
        won.set(prime && !found.swap(true, Ordering::AcqRel));
        prime
    })
    .map_err(crypto_err)?;
    Ok(candidate
        .filter(|_| won.get())
        .map(|prime| rsa::BigUint::from_bytes_be(prime.to_be_bytes().as_ref())))
}

fn new_rsa_pem(bits: usize) -> Result<String, FuncError> {
    let key = new_rsa(bits)?;
    let der = key.to_pkcs1_der().map_err(crypto_err)?;
    Ok(pem("RSA PRIVATE KEY", der.as_bytes()))
}

/// `genPrivateKey "rsa"|"dsa"|"ecdsa"|"ed25519"`: PEM as sprig writes it.
fn gen_private_key(kind: &str) -> R {
    let out = match kind {
        "" | "rsa" => new_rsa_pem(4096)?,
        "ecdsa" => {
            let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
            let der = key.to_sec1_der().map_err(crypto_err)?;
            pem("EC PRIVATE KEY", &der)
        }
        "ed25519" => {
            let rng = ring::rand::SystemRandom::new();
            let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(crypto_err)?;
            // ring emits a v2 PKCS#8 with the public key; Go writes the plain v1 form.
            let bytes = doc.as_ref();
            let seed = bytes
                .windows(4)
                .position(|w| w == [0x04, 0x22, 0x04, 0x20])
                .and_then(|p| bytes.get(p + 4..p + 36))
                .ok_or_else(|| FuncError::new("error generating key: ed25519"))?;
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend_from_slice(seed);
            pem("PRIVATE KEY", &der)
        }
        "dsa" => {
            use dsa::pkcs8::EncodePrivateKey as _;
            let components = dsa::Components::generate(
                &mut rand::rngs::OsRng,
                #[allow(deprecated)]
                dsa::KeySize::DSA_1024_160,
            );
            let key = dsa::SigningKey::generate(&mut rand::rngs::OsRng, components);
            // sprig writes DSA keys in OpenSSL's "DSA PRIVATE KEY" form:
            // SEQUENCE { version 0, p, q, g, y, x }.
            let _ = key.to_pkcs8_der();
            let v = key.verifying_key();
            let c = v.components();
            let ints = [
                vec![0u8],
                c.p().to_bytes_be(),
                c.q().to_bytes_be(),
                c.g().to_bytes_be(),
                v.y().to_bytes_be(),
                key.x().to_bytes_be(),
            ];
            let mut body = Vec::new();
            for i in ints {
                der_int(&mut body, &i);
            }
            let mut der = vec![0x30];
            der_len(&mut der, body.len());
            der.extend(body);
            pem("DSA PRIVATE KEY", &der)
        }
        other => format!("Unknown type {other}"),
    };
    Ok(Value::str(out))
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der_int(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = if trimmed.is_empty() { vec![0] } else { trimmed };
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    out.push(0x02);
    der_len(out, v.len());
    out.extend(v);
}

/// A PEM private key (RSA PKCS#1, EC SEC1, or PKCS#8) as an rcgen signing key.
fn signing_key(key_pem: &str) -> Result<KeyPair, FuncError> {
    let bad = |e: String| FuncError::new(format!("error parsing private key: {e}"));
    let block = key_pem.trim();
    if block.contains("RSA PRIVATE KEY") {
        let k = rsa::RsaPrivateKey::from_pkcs1_pem(block).map_err(|e| bad(e.to_string()))?;
        let der = k.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
        return KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| bad(e.to_string()));
    }
    if block.contains("EC PRIVATE KEY") {
        use p256::pkcs8::EncodePrivateKey as _;
        let k = p256::SecretKey::from_sec1_pem(block).map_err(|e| bad(e.to_string()))?;
        let der = k.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
        return KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_bytes().into(),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
        .map_err(|e| bad(e.to_string()));
    }
    if block.contains("BEGIN PRIVATE KEY") {
        if rsa::RsaPrivateKey::from_pkcs8_pem(block).is_ok() {
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
    rand::rngs::OsRng.fill_bytes(&mut serial);
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
    Value::Object(Rc::new(Object::Struct {
        type_name: "sprig.certificate".into(),
        fields: vec![
            ("Cert".into(), Value::str(cert)),
            ("Key".into(), Value::str(key)),
        ],
        display,
    }))
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

fn gen_ca(cn: &str, days: i64, key_pem: &str) -> R {
    let key = signing_key(key_pem)?;
    let mut p = params(cn, days, &[], &[])?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let cert = p.self_signed(&key).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem.to_string()))
}

fn gen_self_signed(cn: &str, ips: &Value, dns: &Value, days: i64, key_pem: &str) -> R {
    let key = signing_key(key_pem)?;
    let p = leaf_params(cn, days, ips, dns)?;
    let cert = p.self_signed(&key).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem.to_string()))
}

fn ca_parts(ca: &Value) -> Result<(String, String), FuncError> {
    let field = |n: &str| match ca {
        Value::Object(o) => match &**o {
            Object::Struct { fields, .. } => {
                fields
                    .iter()
                    .find(|(k, _)| k == n)
                    .and_then(|(_, v)| match v {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
            }
            _ => None,
        },
        Value::Map(m) => m.borrow().get(n).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }),
        _ => None,
    };
    match (field("Cert"), field("Key")) {
        (Some(c), Some(k)) => Ok((c, k)),
        _ => err(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            ca.type_name()
        )),
    }
}

fn gen_signed(cn: &str, ips: &Value, dns: &Value, days: i64, ca: &Value, key_pem: &str) -> R {
    let (ca_cert, ca_key) = ca_parts(ca)?;
    let ca_signer = signing_key(&ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_signer)
        .map_err(|e| FuncError::new(format!("error parsing ca certificate: {e}")))?;
    let key = signing_key(key_pem)?;
    let mut p = leaf_params(cn, days, ips, dns)?;
    // Go names the issuing CA's key in the signed certificate.
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, &issuer).map_err(cert_err)?;
    Ok(certificate(cert.pem(), key_pem.to_string()))
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
fn encrypt_aes(password: &str, plain: &str) -> R {
    use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let enc = cbc::Encryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into());
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes());
    let mut out = iv.to_vec();
    out.extend(ct);
    Ok(Value::str(
        base64::engine::general_purpose::STANDARD.encode(out),
    ))
}

fn decrypt_aes(password: &str, b64: &str) -> R {
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
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};

    use super::*;

    #[test]
    fn generated_rsa_keys_are_valid_and_of_the_asked_size() {
        let message = b"berth";
        for _ in 0..3 {
            let key = new_rsa(2048).unwrap();
            assert_eq!(key.n().bits(), 2048);
            assert_eq!(key.e(), &rsa::BigUint::from(65_537u32));
            assert_eq!(key.primes().len(), 2);
            assert_ne!(key.primes()[0], key.primes()[1]);
            key.validate().unwrap();
            // The key works: a PKCS#1 v1.5 signature verifies with its public half.
            let scheme = rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
            let digest = <sha2::Sha256 as sha2::Digest>::digest(message);
            let signature = key.sign(scheme.clone(), &digest).unwrap();
            key.to_public_key()
                .verify(scheme, &digest, &signature)
                .unwrap();
        }
        // `genPrivateKey "rsa"` makes 4096-bit keys, as sprig does.
        let key = new_rsa(4096).unwrap();
        assert_eq!(key.n().bits(), 4096);
        key.validate().unwrap();
    }

    #[test]
    fn a_raced_prime_is_prime_with_its_two_top_bits_set_and_the_loser_stops() {
        for _ in 0..4 {
            let prime = raced_prime::<crypto_bigint::U1024>(1024).unwrap();
            assert_eq!(prime.bits(), 1024);
            let bytes = prime.to_bytes_be();
            assert_eq!(bytes[0] & 0xc0, 0xc0, "two top bits set");
            let as_uint = crypto_bigint::U1024::from_be_slice(&bytes);
            assert!(crypto_primes::is_prime(
                crypto_primes::Flavor::Any,
                &as_uint
            ));
        }
        // A side that starts after the other found its prime gives nothing.
        let found = std::sync::atomic::AtomicBool::new(true);
        assert!(
            search_prime::<crypto_bigint::U1024>(1024, &found)
                .unwrap()
                .is_none()
        );
    }
}
