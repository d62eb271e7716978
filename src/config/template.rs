//! Tag templates: `{variant}-{hash}`, `latest-{variant}`, `v{version}-{name}`.
//!
//! A template is parsed once into literal and placeholder parts so that a typo (`{hsah}`) is an error
//! at load time, not a strange tag at push time. Rendering never fails for a known variable set; the
//! result is checked against the OCI tag grammar by [`valid_tag`].

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    /// Parse `text`; `{name}` is a placeholder, `{{` and `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                                name.push(c)
                            }
                            Some(c) => {
                                return Err(format!(
                                    "unexpected `{c}` inside a placeholder in `{text}`; placeholders look like {{hash}}"
                                ))
                            }
                            None => {
                                return Err(format!(
                                    "unclosed `{{` in `{text}`; close the placeholder with `}}`"
                                ))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("empty placeholder `{{}}` in `{text}`"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` in `{text}`; write `}}}}` for a literal brace"
                    ))
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Placeholder names used, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Whether `{name}` appears.
    pub fn uses(&self, name: &str) -> bool {
        self.vars().any(|v| v == name)
    }

    /// Render with `vars`; a missing variable is an error naming it.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => match vars.get(v) {
                    Some(val) => out.push_str(val),
                    None => {
                        let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                        return Err(format!(
                            "unknown placeholder `{{{v}}}` in `{}`; known here: {}",
                            self.source,
                            known
                                .iter()
                                .map(|k| format!("{{{k}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                },
            }
        }
        Ok(out)
    }
}

/// The OCI tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_placeholders_and_literals() {
        let t = Template::parse("{variant}-{hash}").unwrap();
        assert_eq!(
            t.render(&vars(&[("variant", "omos"), ("hash", "abc")]))
                .unwrap(),
            "omos-abc"
        );
        assert!(t.uses("hash") && !t.uses("name"));
    }

    #[test]
    fn escaped_braces_are_literal() {
        let t = Template::parse("a{{b}}").unwrap();
        assert_eq!(t.render(&BTreeMap::new()).unwrap(), "a{b}");
    }

    #[test]
    fn rejects_malformed_templates() {
        assert!(Template::parse("{hash").unwrap_err().contains("unclosed"));
        assert!(Template::parse("x}").unwrap_err().contains("unmatched"));
        assert!(Template::parse("{}").unwrap_err().contains("empty"));
        assert!(Template::parse("{ha sh}")
            .unwrap_err()
            .contains("unexpected"));
    }

    #[test]
    fn unknown_placeholder_names_the_known_ones() {
        let t = Template::parse("{hsah}").unwrap();
        let err = t.render(&vars(&[("hash", "x")])).unwrap_err();
        assert!(err.contains("{hsah}") && err.contains("{hash}"), "{err}");
    }

    #[test]
    fn tag_grammar() {
        assert!(valid_tag("base-3f2a9c1b7e4d"));
        assert!(valid_tag("_x"));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag(""));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag("a:b"));
        assert!(!valid_tag("a\nb"));
    }
}
