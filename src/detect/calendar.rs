//! Civil-time arithmetic on unix seconds (proleptic Gregorian, fixed UTC offset), without a
//! clock and without a time-zone database.

pub(crate) const MINUTE: i64 = 60;
pub(crate) const HOUR: i64 = 3_600;
pub(crate) const DAY: i64 = 86_400;
pub(crate) const WEEK: i64 = 7 * DAY;

const WEEKDAY_NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Day of the week, 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(local_seconds: i64) -> usize {
    // 1970-01-01 was a Thursday (index 3).
    (local_seconds.div_euclid(DAY) + 3).rem_euclid(7) as usize
}

/// Seconds since local midnight.
pub(crate) fn second_of_day(local_seconds: i64) -> i64 {
    local_seconds.rem_euclid(DAY)
}

/// Seconds since local Monday 00:00.
pub(crate) fn second_of_week(local_seconds: i64) -> i64 {
    weekday(local_seconds) as i64 * DAY + second_of_day(local_seconds)
}

/// Local midnight at or before `local_seconds`.
pub(crate) fn start_of_day(local_seconds: i64) -> i64 {
    local_seconds - second_of_day(local_seconds)
}

pub(crate) fn weekday_name(day: usize) -> &'static str {
    WEEKDAY_NAMES[day % 7]
}

/// Append "09:00" for a second of the day.
pub(crate) fn write_clock_time(out: &mut String, second_of_day: i64) {
    let second_of_day = second_of_day.rem_euclid(DAY);
    let (hours, minutes) = (second_of_day / HOUR, (second_of_day % HOUR) / MINUTE);
    for digit in [hours / 10, hours % 10] {
        out.push((b'0' + digit as u8) as char);
    }
    out.push(':');
    for digit in [minutes / 10, minutes % 10] {
        out.push((b'0' + digit as u8) as char);
    }
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// "Mon 2024-03-04 09:00" for a local time.
#[cfg(test)]
pub(crate) fn describe_instant(local_seconds: i64) -> String {
    let mut out = String::new();
    write_instant(&mut out, local_seconds);
    out
}

/// Append "Mon 2024-03-04 09:00" for a local time.
pub(crate) fn write_instant(out: &mut String, local_seconds: i64) {
    use std::fmt::Write as _;
    let (y, m, d) = civil_from_days(local_seconds.div_euclid(DAY));
    out.push_str(&weekday_name(weekday(local_seconds))[..3]);
    out.push(' ');
    if (1_000..10_000).contains(&y) {
        super::format::write_plain(out, y as u64);
    } else {
        let _ = write!(out, "{y:04}");
    }
    out.push('-');
    super::format::write_two_digits(out, u64::from(m));
    out.push('-');
    super::format::write_two_digits(out, u64::from(d));
    out.push(' ');
    write_clock_time(out, second_of_day(local_seconds));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_a_thursday_and_dates_round_trip() {
        assert_eq!(weekday_name(weekday(0)), "Thursday");
        // 2024-03-04 was a Monday.
        let monday = 1_709_510_400;
        assert_eq!(weekday(monday), 0);
        assert_eq!(civil_from_days(monday / DAY), (2024, 3, 4));
        assert_eq!(describe_instant(monday + 9 * HOUR), "Mon 2024-03-04 09:00");
        for local in (-40_000_000_000_i64..300_000_000_000).step_by(999_999_937) {
            let (y, m, d) = civil_from_days(local.div_euclid(DAY));
            let second = second_of_day(local);
            let expected = format!(
                "{} {y:04}-{m:02}-{d:02} {:02}:{:02}",
                &weekday_name(weekday(local))[..3],
                second / HOUR,
                (second % HOUR) / MINUTE
            );
            assert_eq!(describe_instant(local), expected);
        }
        assert_eq!(weekday(-1), 2, "the second before the epoch is a Wednesday");
    }
}
