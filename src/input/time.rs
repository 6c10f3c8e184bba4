//! Timestamps in and out: every input's notion of time becomes [`Time`] (milliseconds), and
//! every output prints it back as seconds.
//!
//! Decimal seconds are parsed digit by digit rather than through `f64`, so that `3.001` is
//! exactly 3001 ms and large epoch values keep their millisecond.

use augur_dataflows::types::Time;

/// Parses seconds, integer or decimal (`1372636853`, `-12.5`, `3.001`, `1e3`), into milliseconds
/// rounded to the nearest millisecond (halves away from zero).
///
/// Times after the end of the year 9999 (and as far before 1970) are refused: no trace reaches
/// them, and one such time, most often milliseconds written as seconds, would move a stream's
/// clock so far ahead that every later record is refused as late.
pub fn parse_seconds(text: &str) -> Result<Time, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty time".to_string());
    }
    match parse_plain_decimal(trimmed) {
        Some(parsed) => parsed,
        None => parse_float_seconds(trimmed),
    }
}

/// `millis`, if within the calendar [`parse_seconds`] takes; off the path of ordinary times.
#[inline(never)]
fn within_calendar(text: &str, millis: Time) -> Result<Time, String> {
    // `unsigned_abs`: `abs` of i64::MIN would overflow.
    if millis.unsigned_abs() <= LATEST_MS.unsigned_abs() {
        return Ok(millis);
    }
    let side = if millis > 0 {
        "after"
    } else {
        "as far before 1970 as"
    };
    Err(format!(
        "time {text:?} s is {side} the year 9999 (milliseconds written as seconds?)"
    ))
}

/// 9999-12-31T23:59:59.999Z in milliseconds: the latest time [`parse_seconds`] takes (and, as
/// far before 1970, the earliest).
pub const LATEST_MS: Time = 253_402_300_799_999;

/// Parses `[+-]digits[.digits]`; `None` when the text has another shape (exponent, words).
fn parse_plain_decimal(text: &str) -> Option<Result<Time, String>> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // Up to 11 whole digits (every Unix time in seconds until the year 5138) can neither
    // overflow an i64 in milliseconds nor leave the calendar: the same arithmetic without the
    // wide checked steps of the general path, and without its calendar check, which cost the
    // parse of a whole metric log 8% when it sat on this path.
    if whole.len() <= 11 {
        let mut millis: i64 = 0;
        for byte in whole.bytes() {
            millis = millis * 10 + i64::from(byte - b'0');
        }
        let mut digits = fraction.bytes().map(|byte| i64::from(byte - b'0'));
        for _ in 0..3 {
            millis = millis * 10 + digits.next().unwrap_or(0);
        }
        if digits.next().is_some_and(|digit| digit >= 5) {
            millis += 1;
        }
        return Some(Ok(if negative { -millis } else { millis }));
    }
    let overflow = || format!("time {text:?} is out of range");
    let mut millis: i128 = 0;
    for byte in whole.bytes() {
        millis = match millis
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(byte - b'0')))
        {
            Some(m) if m <= i128::from(i64::MAX) => m,
            _ => return Some(Err(overflow())),
        };
    }
    let mut digits = fraction.bytes().map(|byte| i128::from(byte - b'0'));
    for _ in 0..3 {
        millis = millis * 10 + digits.next().unwrap_or(0);
    }
    if digits.next().is_some_and(|digit| digit >= 5) {
        millis += 1;
    }
    let signed = if negative { -millis } else { millis };
    Some(
        Time::try_from(signed)
            .map_err(|_| overflow())
            .and_then(|millis| within_calendar(text, millis)),
    )
}

/// The fallback for exponent notation (`1.5e3`, as some JSON writers print); also where
/// `NaN` and `inf`, which `f64` accepts, are turned away.
fn parse_float_seconds(text: &str) -> Result<Time, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("time {text:?} is not a number of seconds"))?;
    if !seconds.is_finite() {
        return Err(format!("time {text:?} is not finite"));
    }
    let millis = (seconds * 1000.0).round();
    // i64::MAX is not representable in f64; 2^63 is the first value past it.
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_TO_63..TWO_TO_63).contains(&millis) {
        return Err(format!("time {text:?} is out of range"));
    }
    within_calendar(text, millis as Time)
}

/// Parses a UTC date and time, `YYYY-MM-DD HH:MM:SS` with optional fractional seconds, a `T`
/// instead of the space, and an optional trailing `Z`, into Unix epoch milliseconds.
pub fn parse_datetime_utc(text: &str) -> Result<Time, String> {
    let trimmed = text.trim();
    let bad = |what: &str| format!("datetime {trimmed:?}: {what} (expected YYYY-MM-DD HH:MM:SS)");
    let body = trimmed.strip_suffix('Z').unwrap_or(trimmed);
    let (date, clock) = body
        .split_once([' ', 'T'])
        .ok_or_else(|| bad("no time of day"))?;
    let [year, month, day] = split_fields::<3>(date, '-').ok_or_else(|| bad("malformed date"))?;
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let [hour, minute, second] =
        split_fields::<3>(clock, ':').ok_or_else(|| bad("malformed time of day"))?;
    let year = fixed_digits(year, 4).ok_or_else(|| bad("year must have 4 digits"))?;
    let month = fixed_digits(month, 2).ok_or_else(|| bad("month must have 2 digits"))?;
    let day = fixed_digits(day, 2).ok_or_else(|| bad("day must have 2 digits"))?;
    let hour = fixed_digits(hour, 2).ok_or_else(|| bad("hour must have 2 digits"))?;
    let minute = fixed_digits(minute, 2).ok_or_else(|| bad("minute must have 2 digits"))?;
    let second = fixed_digits(second, 2).ok_or_else(|| bad("second must have 2 digits"))?;
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time of day out of range"));
    }
    let fraction_millis = fraction_to_millis(fraction).ok_or_else(|| bad("malformed fraction"))?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Ok(seconds * 1000 + fraction_millis)
}

/// Parses either a number of seconds or a UTC datetime; a datetime is recognised by its leading
/// `YYYY-`, so that a malformed number gets a number's error message.
pub fn parse_time_field(text: &str) -> Result<Time, String> {
    let trimmed = text.trim();
    let bytes = trimmed.as_bytes();
    let looks_like_date = bytes.len() > 4
        && bytes.iter().take(4).all(u8::is_ascii_digit)
        && bytes.get(4) == Some(&b'-');
    if looks_like_date {
        parse_datetime_utc(trimmed)
    } else {
        // Where a date would do as well, the message says so (the error path only).
        parse_seconds(trimmed).map_err(|error| {
            if trimmed.parse::<f64>().is_err() {
                format!(
                    "time {trimmed:?} is neither a date (YYYY-MM-DD HH:MM:SS) nor a number of \
                     seconds"
                )
            } else {
                error
            }
        })
    }
}

/// Formats milliseconds as seconds: an integer when whole (`1392326400`), otherwise the shortest
/// decimal (`12.5`, `-0.001`).
pub fn format_seconds(t: Time) -> String {
    let sign = if t < 0 { "-" } else { "" };
    let magnitude = t.unsigned_abs();
    let (whole, millis) = (magnitude / 1000, magnitude % 1000);
    if millis == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = format!("{millis:03}");
    format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
}

/// [`format_seconds`] as a JSON number: an integer when whole, else the nearest `f64`.
pub fn json_seconds(t: Time) -> serde_json::Value {
    if t % 1000 == 0 {
        serde_json::Value::from(t / 1000)
    } else {
        serde_json::Value::from(t as f64 / 1000.0)
    }
}

/// Splits `text` at `separator` into exactly `N` parts.
fn split_fields<const N: usize>(text: &str, separator: char) -> Option<[&str; N]> {
    let mut parts = text.split(separator);
    let mut fields = [""; N];
    for field in fields.iter_mut() {
        *field = parts.next()?;
    }
    parts.next().is_none().then_some(fields)
}

/// Parses exactly `width` ASCII digits.
fn fixed_digits(text: &str, width: usize) -> Option<i64> {
    if text.len() != width || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Rounds a string of fractional-second digits to milliseconds (`""` is 0, `"5"` is 500,
/// `"0005"` is 1). May return 1000, which the caller simply adds.
fn fraction_to_millis(fraction: &str) -> Option<i64> {
    if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let mut digits = fraction.bytes().map(|byte| i64::from(byte - b'0'));
    let mut millis = 0;
    for _ in 0..3 {
        millis = millis * 10 + digits.next().unwrap_or(0);
    }
    if digits.next().is_some_and(|digit| digit >= 5) {
        millis += 1;
    }
    Some(millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm:
/// shift the year to start in March so the leap day is the last day of the year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `t` (Unix epoch milliseconds) as `YYYY-MM-DD HH:MM:SS` UTC, the form
/// [`parse_datetime_utc`] reads, with `.mmm` when there are milliseconds. For axis captions;
/// times outside 0000-03-01 to 9999-12-31 are written as seconds instead.
pub fn format_utc(t: Time) -> String {
    // 0000-03-01 .. 9999-12-31, so the year has four digits.
    const LOW: Time = -62_162_035_200_000;
    const HIGH: Time = 253_402_300_799_999;
    if !(LOW..=HIGH).contains(&t) {
        return format!("{} s", format_seconds(t));
    }
    let (days, millis) = (t.div_euclid(86_400_000), t.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let seconds = millis / 1000;
    let clock = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    match millis % 1000 {
        0 => clock,
        rest => format!("{clock}.{rest:03}"),
    }
}

/// The inverse of [`days_from_civil`] (the same algorithm, run backwards).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
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
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_utc_is_the_inverse_of_parse_datetime_utc() {
        for text in [
            "1970-01-01 00:00:00",
            "2000-02-29 23:59:59",
            "2024-01-01 00:00:00.250",
            "1969-12-31 23:59:59",
            "0001-03-01 12:00:00",
            "9999-12-31 23:59:59.999",
            "2100-03-01 00:00:01",
        ] {
            let t = parse_datetime_utc(text).expect(text);
            assert_eq!(format_utc(t), text);
        }
        assert_eq!(
            format_utc(i64::MAX),
            format!("{} s", format_seconds(i64::MAX))
        );
        assert_eq!(
            format_utc(i64::MIN),
            format!("{} s", format_seconds(i64::MIN))
        );
    }

    #[test]
    fn seconds_integer_and_decimal() {
        assert_eq!(parse_seconds("1372636853"), Ok(1_372_636_853_000));
        assert_eq!(parse_seconds("-12.5"), Ok(-12_500));
        assert_eq!(parse_seconds("3.001"), Ok(3_001));
        assert_eq!(parse_seconds(" 0.0005 "), Ok(1));
        assert_eq!(parse_seconds("0.00049"), Ok(0));
        assert_eq!(parse_seconds("-0.0005"), Ok(-1));
        assert_eq!(parse_seconds(".5"), Ok(500));
        assert_eq!(parse_seconds("+7"), Ok(7_000));
        assert_eq!(parse_seconds("1.5e3"), Ok(1_500_000));
    }

    #[test]
    fn seconds_rejects_junk() {
        for text in [
            "",
            " ",
            "NaN",
            "nan",
            "inf",
            "-infinity",
            "abc",
            "1.2.3",
            "-",
            ".",
            "1e400",
        ] {
            assert!(parse_seconds(text).is_err(), "{text:?} should be rejected");
        }
        assert!(parse_seconds("9223372036854775808").is_err());
        assert!(parse_seconds("99999999999999999999999999999999999999999999").is_err());
        assert!(parse_seconds("9223372036854775.808").is_err());
        assert!(parse_seconds("9223372036854775.807").is_err());
        // The end of the year 9999 and no further (milliseconds written as seconds, here
        // 2025-11-29 in ms, are refused rather than taken as the year 57,881).
        assert_eq!(parse_seconds("253402300799.999"), Ok(LATEST_MS));
        assert_eq!(parse_seconds("-253402300799.999"), Ok(-LATEST_MS));
        assert!(parse_seconds("253402300800")
            .is_err_and(|message| message.contains("after the year 9999")));
        assert!(parse_seconds("1764400000000").is_err());
        assert!(parse_seconds("1.7644e12").is_err());
        assert!(parse_datetime_utc("9999-12-31 23:59:59").is_ok());
        assert!(parse_seconds("nan").is_err_and(|message| message.contains("finite")));
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime_utc("1970-01-01 00:00:00"), Ok(0));
        assert_eq!(
            parse_datetime_utc("2014-02-14 00:00:00"),
            Ok(1_392_336_000_000)
        );
        assert_eq!(
            parse_datetime_utc("2014-02-14T14:30:00Z"),
            Ok(1_392_388_200_000)
        );
        assert_eq!(
            parse_datetime_utc("2014-02-19 10:50:00.123456"),
            Ok(1_392_807_000_123)
        );
        assert_eq!(
            parse_datetime_utc("2000-02-29 00:00:00"),
            Ok(951_782_400_000)
        );
        assert_eq!(parse_datetime_utc("1969-12-31 23:59:59.9995"), Ok(0));
        assert_eq!(
            parse_datetime_utc("1900-03-01 00:00:00"),
            Ok(-2_203_891_200_000)
        );
    }

    #[test]
    fn datetimes_validate_ranges() {
        for text in [
            "2014-13-01 00:00:00",
            "2014-00-01 00:00:00",
            "2014-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2014-04-31 00:00:00",
            "2014-01-01 24:00:00",
            "2014-01-01 00:60:00",
            "2014-01-01 00:00:60",
            "2014-01-01",
            "14-01-01 00:00:00",
            "2014-1-01 00:00:00",
            "2014-01-01 00:00:00.x",
            "2014-01-01 00:00:00:00",
            "2014-01-01 00:00",
            "",
        ] {
            assert!(
                parse_datetime_utc(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn time_field_picks_the_right_parser() {
        assert_eq!(parse_time_field("386640"), Ok(386_640_000));
        assert_eq!(
            parse_time_field("2014-02-14 00:00:00"),
            Ok(1_392_336_000_000)
        );
        assert!(parse_time_field("2014-02-30 00:00:00").is_err_and(|m| m.contains("day")));
        assert!(parse_time_field("12:00").is_err());
        // Where a date would do too, the message names both forms.
        assert!(parse_time_field("bogus").is_err_and(|m| m.contains("neither a date")));
    }

    #[test]
    fn formats_seconds() {
        assert_eq!(format_seconds(1_392_326_400_000), "1392326400");
        assert_eq!(format_seconds(12_500), "12.5");
        assert_eq!(format_seconds(-1), "-0.001");
        assert_eq!(format_seconds(0), "0");
        assert_eq!(format_seconds(3_010), "3.01");
        assert_eq!(format_seconds(-12_000), "-12");
        assert_eq!(format_seconds(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn format_and_parse_round_trip() {
        for t in [
            0, 1, -1, 999, 1_000, -1_001, 12_345_678, LATEST_MS, -LATEST_MS,
        ] {
            assert_eq!(parse_seconds(&format_seconds(t)), Ok(t), "{t}");
        }
    }

    #[test]
    fn json_seconds_is_integer_when_whole() {
        assert_eq!(json_seconds(5_000).to_string(), "5");
        assert_eq!(json_seconds(12_500).to_string(), "12.5");
        assert_eq!(json_seconds(-1).to_string(), "-0.001");
    }
}
