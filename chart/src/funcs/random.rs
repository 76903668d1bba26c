//! sprig's random values: strings, integers, bytes, UUIDs. Charts use them
//! for default passwords and tokens, so they come from the operating
//! system's cryptographic generator, as sprig's do.

use base64::Engine as _;
use gotemplate::func::arg::{int, string};
use gotemplate::{Func, Param as P, Value};
use rand::Rng as _;
use rand::RngCore as _;
use rand::rngs::OsRng;
use rand::seq::SliceRandom as _;

use super::conversions::to_i64;

const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
/// Printable ASCII without the space, as commons-lang's randomAscii.
const ASCII: &[u8] = b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// Most bytes or characters one call makes (a chart asking for more is
/// refused rather than allowed to exhaust memory).
const MAX_LENGTH: i64 = 1 << 20;

pub(super) const FUNCS: &[Func] = &[
    Func::go("randAlphaNum", &[P::Int], None, |a| {
        let alphanumeric = [LETTERS, DIGITS].concat();
        Ok(random_string(&alphanumeric, int(&a[0])?))
    }),
    Func::go("randAlpha", &[P::Int], None, |a| {
        Ok(random_string(LETTERS, int(&a[0])?))
    }),
    Func::go("randNumeric", &[P::Int], None, |a| {
        Ok(random_string(DIGITS, int(&a[0])?))
    }),
    Func::go("randAscii", &[P::Int], None, |a| {
        Ok(random_string(ASCII, int(&a[0])?))
    }),
    Func::go("randInt", &[P::Int, P::Int], None, |a| {
        let (lo, hi) = (to_i64(&a[0]), to_i64(&a[1]));
        // Go's rand.Intn panics on an empty range; sprig's callers never
        // pass one, and the lower bound is the only value there is.
        Ok(Value::Int(if hi > lo {
            OsRng.gen_range(lo..hi)
        } else {
            lo
        }))
    }),
    Func::go("randBytes", &[P::Int], None, |a| {
        let mut bytes = vec![0u8; int(&a[0])?.clamp(0, MAX_LENGTH) as usize];
        OsRng.fill_bytes(&mut bytes);
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    }),
    Func::go("shuffle", &[P::Str], None, |a| {
        let mut chars: Vec<char> = string(&a[0])?.chars().collect();
        chars.shuffle(&mut OsRng);
        Ok(Value::String(chars.into_iter().collect()))
    }),
    Func::go("uuidv4", &[], None, |_| {
        Ok(Value::String(uuid::Uuid::new_v4().to_string()))
    }),
];

fn random_string(charset: &[u8], length: i64) -> Value {
    Value::String(
        (0..length.clamp(0, MAX_LENGTH))
            .map(|_| charset[OsRng.gen_range(0..charset.len())] as char)
            .collect(),
    )
}
