//! Time as an operator types and reads it: durations like `30m`, `24h`, `7d`, and UTC
//! timestamps like `2026-11-27 03:52:32 UTC` (`crate::utc`).

/// A duration in milliseconds, from a whole number and a unit: `s`, `m`, `h`, `d` or `w`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a duration: use a number and a unit, e.g. 30m, 24h, 7d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if number == 0 {
        return Err(format!("'{text}': a duration must be longer than zero"));
    }
    number.checked_mul(unit_ms).ok_or_else(bad)
}

pub use crate::utc::format_utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration_ms("30m"), Ok(30 * 60_000));
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("2w"), Ok(14 * 86_400_000));
        for bad in [
            "",
            "30",
            "m",
            "30 m",
            "30min",
            "-5m",
            "1.5h",
            "0h",
            "99999999999999999d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_751_552_000), "2026-11-27 03:52:32 UTC");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59 UTC");
    }
}
