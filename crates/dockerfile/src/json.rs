//! The JSON ("exec") form of instruction arguments: `COPY ["a b", "/dst/"]`.
//!
//! BuildKit decides between exec form and shell form by *trying* to decode a
//! JSON array: a valid array of strings is exec form, a valid array holding
//! anything else is an error, and anything that is not valid JSON silently
//! falls back to the whitespace-split shell form. We reproduce those three
//! outcomes, which is why this is a validating parser rather than a simple
//! bracket splitter. Like Go's `json.Decoder`, only the first JSON value is
//! read; trailing text after the closing `]` is ignored. The parser is
//! iterative so deeply nested input cannot overflow the stack.

/// How an argument string reads as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonArgs {
    /// Not a JSON array: use the shell form.
    NotJson,
    /// A JSON array of strings: exec form. The flag is set when non-blank
    /// text follows the array: BuildKit's decoder ignores it, but parsers
    /// using a strict unmarshal read the line as shell form instead.
    Strings(Vec<String>, bool),
    /// A valid JSON array with a non-string element: BuildKit rejects it.
    NonString,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    let s = std::str::from_utf8(s).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Parses a JSON string starting at `b[i] == '"'`; returns the decoded text
/// and the index after the closing quote.
fn string(s: &str, i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut j = i + 1;
    loop {
        let c = *b.get(j)?;
        match c {
            b'"' => return Some((out, j + 1)),
            b'\\' => {
                let e = *b.get(j + 1)?;
                j += 2;
                match e {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let hi = hex4(b, j)?;
                        j += 4;
                        if (0xD800..0xDC00).contains(&hi) {
                            // A surrogate pair, if the low half follows.
                            if b.get(j) == Some(&b'\\') && b.get(j + 1) == Some(&b'u') {
                                if let Some(lo) = hex4(b, j + 2) {
                                    if (0xDC00..0xE000).contains(&lo) {
                                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                                        j += 6;
                                        continue;
                                    }
                                }
                            }
                            out.push('\u{FFFD}');
                        } else {
                            out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                        }
                    }
                    _ => return None,
                }
            }
            c if c < 0x20 => return None,
            _ => {
                // Copy one UTF-8 character.
                let ch = s.get(j..)?.chars().next()?;
                out.push(ch);
                j += ch.len_utf8();
            }
        }
    }
}

fn skip_string(s: &str, i: usize) -> Option<usize> {
    string(s, i).map(|(_, j)| j)
}

fn skip_number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    Some(i)
}

/// Skips one JSON value of any kind starting at `i` (after whitespace);
/// returns the index after it.
fn skip_value(s: &str, mut i: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    loop {
        i = ws(b, i);
        match *b.get(i)? {
            b'"' => i = skip_string(s, i)?,
            b'[' => {
                i = ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(b'[');
                    continue;
                }
            }
            b'{' => {
                i = ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    i = object_key(s, i)?;
                    stack.push(b'{');
                    continue;
                }
            }
            b't' if b[i..].starts_with(b"true") => i += 4,
            b'f' if b[i..].starts_with(b"false") => i += 5,
            b'n' if b[i..].starts_with(b"null") => i += 4,
            b'-' | b'0'..=b'9' => i = skip_number(b, i)?,
            _ => return None,
        }
        // A value ended: close finished containers or move to the next item.
        loop {
            let Some(&top) = stack.last() else {
                return Some(i);
            };
            i = ws(b, i);
            match (top, *b.get(i)?) {
                (_, b',') => {
                    i += 1;
                    if top == b'{' {
                        i = object_key(s, ws(b, i))?;
                    }
                    break;
                }
                (b'[', b']') | (b'{', b'}') => {
                    i += 1;
                    stack.pop();
                }
                _ => return None,
            }
        }
    }
}

/// Parses `"key" :` at `i`; returns the index after the colon.
fn object_key(s: &str, i: usize) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = ws(b, skip_string(s, i)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

fn trailing(b: &[u8], i: usize) -> bool {
    ws(b, i) < b.len()
}

/// Reads `rest` the way BuildKit's `parseJSON` does.
pub(crate) fn parse_array(rest: &str) -> JsonArgs {
    let s = rest.trim_start();
    if !s.starts_with('[') {
        return JsonArgs::NotJson;
    }
    let b = s.as_bytes();
    let mut i = ws(b, 1);
    let mut out = Vec::new();
    let mut all_strings = true;
    if b.get(i) == Some(&b']') {
        return JsonArgs::Strings(out, trailing(b, i + 1));
    }
    loop {
        i = ws(b, i);
        if b.get(i) == Some(&b'"') {
            let Some((text, j)) = string(s, i) else {
                return JsonArgs::NotJson;
            };
            out.push(text);
            i = j;
        } else {
            all_strings = false;
            let Some(j) = skip_value(s, i) else {
                return JsonArgs::NotJson;
            };
            i = j;
        }
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => break,
            _ => return JsonArgs::NotJson,
        }
    }
    if all_strings {
        JsonArgs::Strings(out, trailing(b, i + 1))
    } else {
        JsonArgs::NonString
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArgs {
        JsonArgs::Strings(v.iter().map(|s| s.to_string()).collect(), false)
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(
            parse_array(r#"["a b", "c", "/dst/"]"#),
            strings(&["a b", "c", "/dst/"])
        );
        assert_eq!(parse_array("  []"), strings(&[]));
        assert_eq!(
            parse_array(r#"["\u00e9\n\"", "\ud83d\ude00"]"#),
            strings(&["é\n\"", "😀"])
        );
        assert_eq!(
            parse_array(r#"["a"] trailing"#),
            JsonArgs::Strings(vec!["a".into()], true)
        );
        assert_eq!(parse_array("[\"a\"]  \t"), strings(&["a"]));
    }

    #[test]
    fn fallbacks_and_errors() {
        assert_eq!(parse_array("[a, b] /x"), JsonArgs::NotJson);
        assert_eq!(parse_array(r#"["a",]"#), JsonArgs::NotJson);
        assert_eq!(parse_array(r#"["a""#), JsonArgs::NotJson);
        assert_eq!(parse_array("a b"), JsonArgs::NotJson);
        assert_eq!(parse_array(r#"["a", 1]"#), JsonArgs::NonString);
        assert_eq!(
            parse_array(r#"[{"k": [1, {"x": null}]}, "a"]"#),
            JsonArgs::NonString
        );
        assert_eq!(parse_array(r#"[01]"#), JsonArgs::NotJson);
        let deep = "[".repeat(100_000);
        assert_eq!(parse_array(&deep), JsonArgs::NotJson);
    }
}
