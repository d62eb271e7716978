//! Platforms (`linux/arm64/v8`): the one grammar and the one normalisation of the workspace.
//! The config validates what users write with [`validate_platform`]; comparisons (is this
//! platform in that index?) go through [`PlatformKey`], which folds the spellings containerd
//! treats as one platform.

use std::fmt;

use crate::manifest::Platform;

/// `os/arch` or `os/arch/variant` as a config writes it: two or three non-empty parts of
/// lower-case letters, digits, `_` and `-` (what `docker buildx --platform` accepts, in its
/// canonical case). Every such string parses with [`PlatformKey::parse`].
pub fn validate_platform(p: &str) -> Result<(), String> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{p}` is not a platform; write os/arch or os/arch/variant, e.g. linux/amd64, linux/arm64/v8"
        ))
    }
}

/// A platform, normalised the way containerd compares them: `aarch64` is `arm64`, `arm64/v8` is
/// `arm64`, `arm` is `arm/v7`, `amd64/v1` is `amd64`, all lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformKey {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl PlatformKey {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> PlatformKey {
        let os = os.trim().to_ascii_lowercase();
        let arch = match arch.trim().to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "i386" | "i686" => "386".to_string(),
            a => a.to_string(),
        };
        let variant = variant
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        let variant = match (arch.as_str(), variant.as_deref()) {
            ("arm64", Some("v8")) | ("amd64", Some("v1")) => None,
            ("arm", None) => Some("v7".to_string()),
            _ => variant,
        };
        PlatformKey { os, arch, variant }
    }

    /// `os/arch[/variant]`, leniently (any case, `aarch64`, `x86_64`): for values from
    /// elsewhere. What a config may write is [`validate_platform`], a subset.
    pub fn parse(s: &str) -> Result<PlatformKey, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(PlatformKey::new(os, arch, None))
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(PlatformKey::new(os, arch, Some(v)))
            }
            _ => Err(format!(
                "platform `{s}` is not `os/arch` or `os/arch/variant`"
            )),
        }
    }

    /// The platform of an index entry.
    pub fn from_oci(p: &Platform) -> PlatformKey {
        PlatformKey::new(&p.os, &p.architecture, p.variant.as_deref())
    }

    /// `unknown/unknown`: BuildKit's attestation manifests, not a runnable platform.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.arch == "unknown"
    }
}

impl fmt::Display for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_written_platform_parses_to_itself_normalised() {
        for (written, key) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("windows/amd64", "windows/amd64"),
        ] {
            assert!(validate_platform(written).is_ok(), "{written}");
            assert_eq!(PlatformKey::parse(written).unwrap().to_string(), key);
        }
        for bad in [
            "linux",
            "Linux/amd64",
            "linux//amd64",
            "linux/amd64/v1/x",
            "",
        ] {
            assert!(validate_platform(bad).is_err(), "{bad}");
        }
    }
}
