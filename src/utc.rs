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
