//! Time as registries and policies write it: RFC 3339 timestamps (npm's
//! packument `time`, PEP 700 `upload-time`) and short durations (`7d`), plus
//! the release-age judgement both resolvers apply with them.
//!
//! Plain integer arithmetic on the proleptic Gregorian calendar (the
//! days-from-civil conversion), so no date crate is needed for the one thing
//! safex does with dates: compare a publish time with "now minus a cooldown".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::policy::{Cooldown, UnknownAge};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// Duration units, largest first; a duration lists its parts in this order.
const UNITS: [(u8, u64); 5] = [
    (b'w', WEEK),
    (b'd', DAY),
    (b'h', HOUR),
    (b'm', MINUTE),
    (b's', 1),
];

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are counted
/// from March so that the leap day is the last day of its year; a 400-year
/// era then has a fixed length (146,097 days).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=12, 1..=31).
    (year, month as u32, day as u32)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A byte cursor over ASCII input; every reader returns `None` on a mismatch.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` decimal digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let b = self.next()?;
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        Some(value)
    }
}

/// `seconds` (possibly before 1970) plus `nanos` after the Unix epoch.
fn from_unix(seconds: i64, nanos: u32) -> Option<SystemTime> {
    let base = if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// Parse an RFC 3339 timestamp: `2025-09-08T13:00:00Z`,
/// `2025-09-08T13:00:00.000Z` (npm), `2025-01-02T03:04:05.000000Z` (PyPI),
/// `2025-09-08T15:00:00+02:00`. Fractions of any length are read to the
/// nanosecond; `t`/`z` and a space for `T` are accepted as RFC 3339 allows.
/// A leap second (`:60`) counts as the first second of the next minute.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        at: 0,
    };
    let year = c.digits(4)?;
    c.expect(b'-')?;
    let month = c.digits(2)?;
    c.expect(b'-')?;
    let day = c.digits(2)?;
    if !matches!(c.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = c.digits(2)?;
    c.expect(b':')?;
    let minute = c.digits(2)?;
    c.expect(b':')?;
    let second = c.digits(2)?;
    let mut nanos = 0u32;
    if c.peek() == Some(b'.') {
        c.at += 1;
        let mut len = 0u32;
        while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
            if len < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
            len += 1;
            c.at += 1;
        }
        if len == 0 {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub(len));
    }
    let offset: i64 = match c.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let h = c.digits(2)?;
            c.expect(b':')?;
            let m = c.digits(2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = i64::from(h * 60 + m) * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    if c.at != s.len() {
        return None;
    }
    let seconds = civil_seconds(i64::from(year), month, day, hour, minute, second)? - offset;
    from_unix(seconds, nanos)
}

/// Seconds since the Unix epoch of a UTC date and time, if each field is in
/// range (a leap second, `:60`, is accepted).
fn civil_seconds(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * DAY as i64
            + i64::from(hour * 3600 + minute * 60 + second),
    )
}

/// Parse an HTTP-date (RFC 9110 §5.6.7), as a `Retry-After` may carry it:
/// the preferred `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete forms a
/// recipient must accept, `Sunday, 06-Nov-94 08:49:37 GMT` and
/// `Sun Nov  6 08:49:37 1994`. The day name is not checked against the date.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_of = |m: &str| MONTHS.iter().position(|x| *x == m).map(|i| i as u32 + 1);
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let (year, month, day, clock) = match parts.as_slice() {
        // IMF-fixdate
        [_, day, month, year, clock, "GMT"] if year.len() == 4 => (
            year.parse::<i64>().ok()?,
            month_of(month)?,
            day.parse().ok()?,
            *clock,
        ),
        // RFC 850: a two-digit year within 50 years of now; take 19xx/20xx
        // as the RFC's "more than 50 years in the future" rule does for
        // the years a server clock can plausibly send.
        [_, date, clock, "GMT"] => {
            let mut d = date.split('-');
            let (day, month, yy) = (d.next()?, d.next()?, d.next()?);
            if d.next().is_some() || yy.len() != 2 {
                return None;
            }
            let yy: i64 = yy.parse().ok()?;
            let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
            (year, month_of(month)?, day.parse().ok()?, *clock)
        }
        // asctime
        [_, month, day, clock, year] if year.len() == 4 => (
            year.parse::<i64>().ok()?,
            month_of(month)?,
            day.parse().ok()?,
            *clock,
        ),
        _ => return None,
    };
    let mut hms = clock
        .split(':')
        .map(|p| (p.len() == 2).then(|| p.parse::<u32>().ok()).flatten());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    from_unix(civil_seconds(year, month, day, hour, minute, second)?, 0)
}

/// `t` in UTC to the second: `2025-09-08T13:00:00Z` (fractions dropped).
pub fn format_rfc3339(t: SystemTime) -> String {
    let seconds: i64 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before 1970: round down, so 0.5 s before the epoch is 23:59:59.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    let day_secs = DAY as i64;
    let (days, rest) = (seconds.div_euclid(day_secs), seconds.rem_euclid(day_secs));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Parse a policy duration: `0`, or whole numbers with units `w`, `d`, `h`,
/// `m`, `s`, largest first and each at most once (`7d`, `1d12h`, `90m`).
/// A bare number other than `0` is refused: `7` could mean days or seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let (mut at, mut total, mut next_unit) = (0usize, 0u64, 0usize);
    while at < bytes.len() {
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let number: u64 = s.get(start..at)?.parse().ok()?;
        let unit = *bytes.get(at)?;
        at += 1;
        let i = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = i + 1;
        total = total.checked_add(number.checked_mul(UNITS[i].1)?)?;
    }
    (at > 0).then_some(Duration::from_secs(total))
}

/// A duration in the largest unit that divides it exactly, days at most
/// (`7d`, `36h`, `90s`); policies are written in days, so a week shows as
/// `7d`. Fractions of a second are dropped; zero is `0`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0".to_owned();
    }
    let (unit, size) = UNITS[1..]
        .iter()
        .find(|(_, size)| secs.is_multiple_of(*size))
        .copied()
        .unwrap_or((b's', 1));
    format!("{}{}", secs / size, char::from(unit))
}

// ---------------------------------------------------------------------------
// The release-age cooldown, as both resolvers judge it.
//
// Many hijacked releases are found and pulled within hours or days
// (ua-parser-js in 2021, the `ultralytics` wheels on PyPI in 2024, the 2025
// `chalk`/`debug` and Shai-Hulud compromises); a version public for
// `min_age` has had that much scrutiny. Only resolution applies it: locked
// trees are not re-judged (`docs/policy-contract.md`, "Cooldown").

/// How a release's age stands against a cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Old enough, or the cooldown is off.
    Old,
    /// Published less than `min_age` before `now`.
    Young {
        published: SystemTime,
        eligible_on: SystemTime,
    },
    /// The registry does not say when it was published.
    Unknown,
}

impl Age {
    /// Judge a release published at `published` (`None`: not known).
    pub fn of(cooldown: &Cooldown, published: Option<SystemTime>) -> Age {
        if cooldown.is_off() {
            return Age::Old;
        }
        let Some(published) = published else {
            return Age::Unknown;
        };
        match published.checked_add(cooldown.min_age) {
            Some(eligible_on) if eligible_on > cooldown.now => Age::Young {
                published,
                eligible_on,
            },
            Some(_) => Age::Old,
            // Past the end of time: never old enough.
            None => Age::Young {
                published,
                eligible_on: published,
            },
        }
    }

    /// May a resolver pick this release? Unknown ages follow `release.unknown`.
    pub fn admits(self, cooldown: &Cooldown) -> bool {
        match self {
            Age::Old => true,
            Age::Young { .. } => false,
            Age::Unknown => cooldown.unknown == UnknownAge::Allow,
        }
    }
}

/// The refusal of an exactly pinned release that is too young. `older` is a
/// pin to suggest instead (`name@1.2.2`, `name==1.2.2`), if any is eligible.
pub fn too_young_error(
    label: &str,
    published: SystemTime,
    eligible_on: SystemTime,
    cooldown: &Cooldown,
    older: Option<&str>,
) -> Error {
    let hint = match older {
        Some(o) => format!(
            "it becomes eligible on {}; until then pin an older version such as `{o}`",
            format_rfc3339(eligible_on)
        ),
        None => format!(
            "it becomes eligible on {}; no other version is old enough yet",
            format_rfc3339(eligible_on)
        ),
    };
    Error::policy(format!(
        "`{label}` was published {}, younger than the policy's `release.min_age` of {}",
        format_rfc3339(published),
        format_duration(cooldown.min_age)
    ))
    .with_hint(hint)
}

/// The refusal of an exactly pinned release whose age `source` (the
/// registry, the index) does not give, under `release.unknown = "refuse"`.
pub fn unknown_age_error(label: &str, source: &str, cooldown: &Cooldown, hint: &str) -> Error {
    Error::policy(format!(
        "{source} does not say when `{label}` was published, and the policy's `release.unknown` is `refuse` (with a `release.min_age` of {})",
        format_duration(cooldown.min_age)
    ))
    .with_hint(hint.to_owned())
}

/// An exactly pinned root judged by the cooldown, for both ecosystems:
/// old enough; of unknown age (allowed, or refused with `unknown_hint`,
/// which says what `source` lacks); or too young, with `older` (a pin to
/// suggest instead) asked only then.
pub fn judge_root_age(
    cooldown: &Cooldown,
    label: &str,
    published: Option<SystemTime>,
    source: &str,
    unknown_hint: &str,
    older: impl FnOnce() -> Option<String>,
) -> Result<(), Error> {
    match Age::of(cooldown, published) {
        Age::Old => Ok(()),
        Age::Unknown if cooldown.unknown == UnknownAge::Allow => Ok(()),
        Age::Unknown => Err(unknown_age_error(label, source, cooldown, unknown_hint)),
        Age::Young {
            published,
            eligible_on,
        } => Err(too_young_error(
            label,
            published,
            eligible_on,
            cooldown,
            older().as_deref(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        from_unix(secs, 0).unwrap()
    }

    #[test]
    fn rfc3339_parses() {
        let base = 1_757_336_400; // 2025-09-08T13:00:00Z
        let cases: &[(&str, i64, u32)] = &[
            ("2025-09-08T13:00:00Z", base, 0),
            ("2025-09-08T13:00:00.000Z", base, 0),
            ("2025-09-08T13:00:00.5Z", base, 500_000_000),
            ("2025-09-08T13:00:00.123456Z", base, 123_456_000),
            ("2025-09-08T13:00:00.123456789123Z", base, 123_456_789),
            ("2025-09-08T15:00:00+02:00", base, 0),
            ("2025-09-08T15:30:00.000+02:30", base, 0),
            ("2025-09-08T08:00:00-05:00", base, 0),
            ("2025-09-08t13:00:00z", base, 0),
            ("2025-09-08 13:00:00Z", base, 0),
            ("1970-01-01T00:00:00Z", 0, 0),
            ("1969-12-31T23:59:59Z", -1, 0),
            ("2000-02-29T00:00:00Z", 951_782_400, 0),
            ("2016-12-31T23:59:60Z", 1_483_228_800, 0),
            ("2011-10-20T17:44:20.917Z", 1_319_132_660, 917_000_000),
        ];
        for (s, secs, nanos) in cases {
            let want = from_unix(*secs, *nanos).unwrap();
            assert_eq!(parse_rfc3339(s), Some(want), "{s}");
        }
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for s in [
            "",
            "garbage",
            "2025-09-08",
            "2025-09-08T13:00:00",
            "2025-09-08T13:00Z",
            "2025-09-08T13:00:00.Z",
            "2025-09-08T13:00:00ZZ",
            "2025-09-08T13:00:00+0200",
            "2025-09-08T13:00:00+24:00",
            "2025-13-08T13:00:00Z",
            "2025-00-08T13:00:00Z",
            "2025-02-29T13:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-09-08T24:00:00Z",
            "2025-09-08T13:60:00Z",
            "2025-09-08T13:00:61Z",
            "25-09-08T13:00:00Z",
            "2025-9-8T13:00:00Z",
            "+2025-09-08T13:00:00Z",
            " 2025-09-08T13:00:00Z",
            "2025-09-08T13:00:00Z ",
            "2025-09-08T13:00:00.1e3Z",
            "２025-09-08T13:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_formats_in_utc_to_the_second() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (1_757_336_400, "2025-09-08T13:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ];
        for (secs, s) in cases {
            assert_eq!(format_rfc3339(at(*secs)), *s);
            assert_eq!(parse_rfc3339(s), Some(at(*secs)));
        }
        let half = at(1_757_336_400) + Duration::from_millis(999);
        assert_eq!(format_rfc3339(half), "2025-09-08T13:00:00Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_rfc3339(before), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn civil_round_trips_every_day_for_centuries() {
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2400, 12, 31);
        let mut expected = (1600, 1, 1);
        for d in start..=end {
            assert_eq!(civil_from_days(d), expected);
            assert_eq!(days_from_civil(expected.0, expected.1, expected.2), d);
            let (y, m, day) = expected;
            expected = if day < days_in_month(y, m) {
                (y, m, day + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn durations_parse() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("0s", 0),
            ("0d", 0),
            ("30s", 30),
            ("15m", 900),
            ("12h", 43_200),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1d12h", 129_600),
            ("1w2d3h4m5s", 788_645),
            ("90m", 5_400),
            ("007d", 604_800),
        ];
        for (s, secs) in cases {
            assert_eq!(parse_duration(s), Some(Duration::from_secs(*secs)), "{s}");
        }
        for s in [
            "",
            "7",
            "d",
            "7x",
            "7D",
            "-7d",
            "+7d",
            "7 d",
            " 7d",
            "7d ",
            "1.5d",
            "12h1d",
            "1d1d",
            "7dd",
            "99999999999999999999s",
            "99999999999999w",
        ] {
            assert_eq!(parse_duration(s), None, "{s:?}");
        }
    }

    #[test]
    fn durations_format_in_the_largest_exact_unit() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (30, "30s"),
            (900, "15m"),
            (43_200, "12h"),
            (604_800, "7d"),
            (1_209_600, "14d"),
            (129_600, "36h"),
            (5_400, "90m"),
            (86_401, "86401s"),
        ];
        for (secs, s) in cases {
            let d = Duration::from_secs(*secs);
            assert_eq!(format_duration(d), *s);
            assert_eq!(parse_duration(s), Some(d));
        }
        assert_eq!(format_duration(Duration::from_millis(7_500)), "7s");
    }

    #[test]
    fn ages_are_judged_against_now() {
        let now = at(1_757_336_400);
        let c = Cooldown {
            min_age: Duration::from_secs(7 * DAY),
            unknown: UnknownAge::Allow,
            now,
        };
        let week = Duration::from_secs(7 * DAY);
        assert_eq!(Age::of(&c, Some(now - week)), Age::Old);
        let young = now - week + Duration::from_secs(1);
        assert_eq!(
            Age::of(&c, Some(young)),
            Age::Young {
                published: young,
                eligible_on: now + Duration::from_secs(1)
            }
        );
        // Published "in the future" (clock skew, a lying registry): young.
        assert!(!Age::of(&c, Some(now + week)).admits(&c));
        assert_eq!(Age::of(&c, None), Age::Unknown);
        assert!(Age::Unknown.admits(&c));
        let refuse = Cooldown {
            unknown: UnknownAge::Refuse,
            ..c.clone()
        };
        assert!(!Age::Unknown.admits(&refuse));
        // Off: everything is old, known or not.
        let off = Cooldown::off();
        assert_eq!(Age::of(&off, None), Age::Old);
        assert_eq!(Age::of(&off, Some(SystemTime::now())), Age::Old);
    }

    #[test]
    fn too_young_message() {
        let c = Cooldown {
            min_age: Duration::from_secs(7 * DAY),
            unknown: UnknownAge::Allow,
            now: at(1_757_336_400),
        };
        let e = too_young_error(
            "x@1.2.3",
            at(1_757_336_400 - DAY as i64),
            at(1_757_336_400 + 6 * DAY as i64),
            &c,
            Some("x@1.2.2"),
        );
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "error: `x@1.2.3` was published 2025-09-07T13:00:00Z, younger than the policy's `release.min_age` of 7d\n\
             hint: it becomes eligible on 2025-09-14T13:00:00Z; until then pin an older version such as `x@1.2.2`"
        );
    }
}
