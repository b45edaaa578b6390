//! Timestamps as people read them, in UTC: `2026-11-27 03:52:32 UTC` for the operator's
//! commands, `2026-11-27 03:52 UTC` on the web pages.

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn format_utc_minutes(ms: i64) -> String {
    let full = format_utc(ms);
    // `YYYY-MM-DD HH:MM:SS UTC` less `:SS`.
    format!("{} UTC", &full[..full.len() - " UTC".len() - 3])
}

/// `ms` since the epoch as a `datetime-local` input's value, `YYYY-MM-DDTHH:MM`.
pub fn format_datetime_local(ms: i64) -> String {
    let full = format_utc(ms);
    format!("{}T{}", &full[..10], &full[11..16])
}

/// A time the web pages' `date` and `datetime-local` inputs give, read as UTC:
/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a space for the `T` too).
/// Returns its start in ms since the epoch, and how long it lasts (a day, a minute, a
/// second), so that "until" a day includes the whole day. `None`: not such a time.
pub fn parse_utc(text: &str) -> Option<(i64, i64)> {
    use time::macros::format_description;
    use time::{Date, PrimitiveDateTime, Time};
    let text = text.trim();
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let date = Date::parse(date, format_description!("[year]-[month]-[day]")).ok()?;
    let (time, length_ms) = match time {
        None => (Time::MIDNIGHT, 86_400_000),
        Some(time) if time.len() == "HH:MM".len() => (
            Time::parse(time, format_description!("[hour]:[minute]")).ok()?,
            60_000,
        ),
        Some(time) => (
            Time::parse(time, format_description!("[hour]:[minute]:[second]")).ok()?,
            1000,
        ),
    };
    let seconds = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    Some((seconds * 1000, length_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_times_are_read_as_utc() {
        assert_eq!(parse_utc("1970-01-01"), Some((0, 86_400_000)));
        assert_eq!(parse_utc("1970-01-02T00:01"), Some((86_460_000, 60_000)));
        let (ms, _) = parse_utc("2026-11-27T03:52:32").unwrap();
        assert_eq!(format_utc(ms), "2026-11-27 03:52:32 UTC");
        assert_eq!(format_datetime_local(ms), "2026-11-27T03:52");
        assert_eq!(
            parse_utc("2024-02-29")
                .map(|(ms, _)| format_utc(ms))
                .as_deref(),
            Some("2024-02-29 00:00:00 UTC")
        );
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "2026-01-01T24:00",
            "2026-01-01T10",
            "yesterday",
            "2026-01-01T10:00:00:00",
            "+026-01-01",
            "2026-01-01\0",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
    }
}
