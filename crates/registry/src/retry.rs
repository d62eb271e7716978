//! Retry policy: which failures are worth another try, how long to wait, and parsing of
//! `Retry-After`.
//!
//! Every wait is bounded. A registry that says "come back in an hour" gets at most
//! [`RetryPolicy::max_wait`], and the number of attempts is fixed, so a probe always ends —
//! in `Unknown` if need be, which makes the caller build rather than skip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (total attempts = `retries + 1`).
    pub retries: u32,
    /// First backoff; doubles each retry, with jitter.
    pub base_delay: Duration,
    /// Cap on any single wait, whether from backoff or from `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base_delay: Duration::from_millis(250),
            max_wait: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Jittered exponential backoff before retry number `retry` (0-based): a uniform pick
    /// in `[d/2, d]` with `d = base * 2^retry`, capped. Jitter keeps many parallel probes
    /// that failed together from retrying together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let d = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
            .min(self.max_wait);
        let half = d / 2;
        let jitter = half.mul_f64(jitter_unit());
        (half + jitter).min(self.max_wait)
    }

    /// The wait before the next try: `Retry-After` if the server gave a usable one, else
    /// backoff; never more than `max_wait`.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_wait),
            None => self.backoff(retry),
        }
    }
}

/// Whether an HTTP status is worth retrying: request timeout, rate limiting, and server
/// errors. Everything else (404 above all) is an answer, not a failure.
pub fn retryable_status(code: u16) -> bool {
    code == 408 || code == 429 || (500..=599).contains(&code)
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date.
///
/// GHCR sends a bare number in milliseconds; Docker Hub and the RFC use seconds. A bare
/// number above 1000 is read as milliseconds: no registry means "wait 17 minutes" in a way
/// we would honour, and since every wait is capped anyway, misreading a genuine large
/// seconds value only shortens a wait that would have been cut.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = v.parse().ok()?;
        return Some(if n > 1000 {
            Duration::from_millis(n)
        } else {
            Duration::from_secs(n)
        });
    }
    // Fractional seconds are not in the RFC but cost nothing to accept.
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() && f >= 0.0 {
            return Some(Duration::from_secs_f64(f.min(86_400.0)));
        }
        return None;
    }
    let when = parse_http_date(v)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only date format HTTP/1.1
/// senders may generate; also tolerates RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
/// asctime (`Sun Nov  6 08:49:37 1994`).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        match parts.as_slice() {
            [d, m, y, t, "GMT"] => (d.parse().ok()?, month_num(m)?, y.parse::<i64>().ok()?, *t),
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let d = it.next()?.parse().ok()?;
                let m = month_num(it.next()?)?;
                let y: i64 = it.next()?.parse().ok()?;
                // RFC 850 two-digit years: RFC 9110 says interpret >50 years ahead as past.
                let y = if y < 100 {
                    if y < 70 {
                        2000 + y
                    } else {
                        1900 + y
                    }
                } else {
                    y
                };
                (d, m, y, *t)
            }
            _ => return None,
        }
    } else {
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] => (d.parse().ok()?, month_num(m)?, y.parse().ok()?, *t),
            _ => return None,
        }
    };
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let se: i64 = hms.next()?.parse().ok()?;
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    if secs < 0 {
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

fn month_num(m: &str) -> Option<i64> {
    const M: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = m.to_ascii_lowercase();
    M.iter().position(|x| *x == m).map(|i| i as i64 + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A uniform value in [0, 1) without a RNG dependency: SplitMix64 over a counter seeded
/// from the clock. Jitter needs spread, not cryptographic quality.
fn jitter_unit() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.load(Ordering::Relaxed);
    if seed == 0 {
        seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
    }
    let next = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.store(next, Ordering::Relaxed);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_seconds_and_millis() {
        let now = at(0);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("1000", now),
            Some(Duration::from_secs(1000))
        );
        // GHCR: milliseconds without a unit.
        assert_eq!(
            parse_retry_after("1500", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("60000", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    #[test]
    fn retry_after_http_dates() {
        // 1994-11-06T08:49:37Z = 784111777
        let t = 784_111_777;
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(t))
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(at(t))
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(at(t)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", at(t)),
            Some(Duration::from_secs(10))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(t + 60)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(at(0))
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(at(1_835_438_400))
        );
    }

    #[test]
    fn waits_are_capped() {
        let p = RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
        };
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
        for retry in 0..40 {
            let b = p.backoff(retry);
            assert!(b <= Duration::from_secs(2), "{b:?}");
        }
        let b0 = p.backoff(0);
        assert!(
            b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100),
            "{b0:?}"
        );
        let b3 = p.backoff(3);
        assert!(
            b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(800),
            "{b3:?}"
        );
    }

    #[test]
    fn retryable_statuses() {
        for c in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(c), "{c}");
        }
        for c in [200, 201, 400, 401, 403, 404, 405] {
            assert!(!retryable_status(c), "{c}");
        }
    }
}
