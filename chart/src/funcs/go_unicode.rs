//! Go's `unicode` package as Go's and sprig's string functions use it:
//! general categories (`IsUpper` is Lu only, where Rust's `is_uppercase`
//! also takes Other_Uppercase) and the simple, one-character case mappings
//! (`ToUpper('ß')` is `ß` and `ToLower('İ')` is `i`, where Rust's full
//! mappings give "SS" and "i̇"). The Unicode data comes from ICU4X.

use icu_casemap::{CaseMapper, CaseMapperBorrowed};
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointMapDataBorrowed};

const CATEGORIES: CodePointMapDataBorrowed<'static, GeneralCategory> =
    CodePointMapData::<GeneralCategory>::new();
const CASES: CaseMapperBorrowed<'static> = CaseMapper::new();

/// `unicode.IsUpper`: an upper-case letter (Lu).
pub fn is_upper(c: char) -> bool {
    CATEGORIES.get(c) == GeneralCategory::UppercaseLetter
}

/// `unicode.IsLower`: a lower-case letter (Ll).
pub fn is_lower(c: char) -> bool {
    CATEGORIES.get(c) == GeneralCategory::LowercaseLetter
}

/// `unicode.IsTitle`: a title-case letter (Lt).
pub fn is_title(c: char) -> bool {
    CATEGORIES.get(c) == GeneralCategory::TitlecaseLetter
}

/// `unicode.IsLetter` (L).
pub fn is_letter(c: char) -> bool {
    GeneralCategoryGroup::Letter.contains(CATEGORIES.get(c))
}

/// `unicode.IsDigit`: a decimal digit (Nd).
pub fn is_digit(c: char) -> bool {
    CATEGORIES.get(c) == GeneralCategory::DecimalNumber
}

/// `unicode.IsNumber` (N).
pub fn is_number(c: char) -> bool {
    GeneralCategoryGroup::Number.contains(CATEGORIES.get(c))
}

/// `unicode.IsPunct` (P).
pub fn is_punct(c: char) -> bool {
    GeneralCategoryGroup::Punctuation.contains(CATEGORIES.get(c))
}

/// `unicode.IsSpace`: Unicode's White_Space, as Rust's `is_whitespace`.
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// `unicode.ToUpper`.
pub fn to_upper(c: char) -> char {
    CASES.simple_uppercase(c)
}

/// `unicode.ToLower`.
pub fn to_lower(c: char) -> char {
    CASES.simple_lowercase(c)
}

/// `unicode.ToTitle`.
pub fn to_title(c: char) -> char {
    CASES.simple_titlecase(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_case_mappings_and_categories_as_go_has_them() {
        assert_eq!(to_upper('ß'), 'ß');
        assert_eq!(to_lower('İ'), 'i');
        assert_eq!(to_title('ǆ'), 'ǅ');
        assert_eq!(to_upper('ǅ'), 'Ǆ');
        // Ⓐ is upper-case to Rust (Other_Uppercase), a symbol (So) to Go.
        assert!(is_upper('A') && !is_upper('Ⓐ') && 'Ⓐ'.is_uppercase());
        assert!(is_title('ǅ') && !is_upper('ǅ'));
        assert!(is_number('½') && !is_digit('½') && is_digit('٣'));
        assert!(is_punct('-') && !is_punct('=') && is_letter('é'));
    }
}
