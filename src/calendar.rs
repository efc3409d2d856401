//! UTC calendar arithmetic (proleptic Gregorian, Howard Hinnant's `days_from_civil` /
//! `civil_from_days` algorithms): the one place that turns days since 1970-01-01 into dates
//! and back — for audit timestamps, key expiry dates and budget periods ([`Period`]).

/// Days since 1970-01-01 → (year, month 1–12, day 1–31).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month 1–12, day 1–31) → days since 1970-01-01 (negative before it).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC day: days since 1970-01-01.
pub type Day = u32;

/// The UTC day of an instant.
pub fn day_of(unix_secs: u64) -> Day {
    (unix_secs / 86_400) as Day
}

/// A budget period: calendar, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Daily,
    /// Weeks start on Monday.
    Weekly,
    /// Months start on `reset_day` (1–28).
    Monthly {
        reset_day: u8,
    },
    /// Since the ledger began.
    Total,
}

impl Period {
    /// The first day of the period that contains `today`.
    pub fn start(self, today: Day) -> Day {
        match self {
            Period::Daily => today,
            // 1970-01-01 was a Thursday: day 4 was the first Monday.
            Period::Weekly => today - (today + 3) % 7,
            Period::Monthly { reset_day } => {
                let reset = u32::from(reset_day.clamp(1, 28));
                let (y, m, d) = civil_from_days(i64::from(today));
                let (y, m) = if d >= reset {
                    (y, m)
                } else if m == 1 {
                    (y - 1, 12)
                } else {
                    (y, m - 1)
                };
                days_from_civil(y, m, reset) as Day
            }
            Period::Total => 0,
        }
    }

    /// The first day of the next period after the one containing `today` (`None` for
    /// `Total`, which never resets).
    pub fn next_start(self, today: Day) -> Option<Day> {
        if self == Period::Total {
            return None;
        }
        let this = self.start(today);
        // A period is at most 31 days long.
        (today + 1..=today + 32).find(|&d| self.start(d) != this)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_periods_start_where_the_calendar_says() {
        let day = |y, m, d| days_from_civil(y, m, d) as Day;
        // Wednesday 2026-12-02.
        let today = day(2026, 12, 2);
        assert_eq!(Period::Daily.next_start(today), Some(day(2026, 12, 3)));
        assert_eq!(Period::Weekly.next_start(today), Some(day(2026, 12, 7)));
        let monthly = |r| Period::Monthly { reset_day: r };
        assert_eq!(monthly(1).next_start(today), Some(day(2027, 1, 1)));
        assert_eq!(monthly(15).next_start(today), Some(day(2026, 12, 15)));
        assert_eq!(monthly(2).next_start(today), Some(day(2027, 1, 2)));
        assert_eq!(Period::Total.next_start(today), None);
    }

    #[test]
    fn round_trips_across_leap_years_and_eras() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn periods_are_calendar_utc() {
        let day = |y, m, d| days_from_civil(y, m, d) as Day;
        assert_eq!(day(1970, 1, 1), 0);
        let sun = day(2026, 11, 22); // a Sunday
        assert_eq!(Period::Daily.start(sun), sun);
        assert_eq!(
            Period::Weekly.start(sun),
            day(2026, 11, 16),
            "back to Monday"
        );
        assert_eq!(Period::Weekly.start(day(2026, 11, 16)), day(2026, 11, 16));
        let monthly = |r| Period::Monthly { reset_day: r };
        assert_eq!(monthly(1).start(sun), day(2026, 11, 1));
        assert_eq!(monthly(25).start(sun), day(2026, 10, 25));
        assert_eq!(monthly(22).start(sun), sun);
        assert_eq!(
            monthly(15).start(day(2026, 1, 3)),
            day(2025, 12, 15),
            "across a year"
        );
        assert_eq!(Period::Total.start(sun), 0);
    }
}

/// Wall-clock seconds since the Unix epoch, as the accounting reads them: budget periods roll
/// over and ledger records are dated by it. The system clock in production; a clock the caller
/// sets (shared, atomic) lets tests run a gateway across a period boundary.
#[derive(Clone, Debug, Default)]
pub struct WallClock(Option<std::sync::Arc<std::sync::atomic::AtomicU64>>);

impl WallClock {
    /// The system clock.
    pub fn system() -> Self {
        WallClock(None)
    }

    /// A clock that reads `secs` until the caller stores another value.
    pub fn manual(secs: u64) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let t = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(secs));
        (WallClock(Some(t.clone())), t)
    }

    pub fn now(&self) -> u64 {
        match &self.0 {
            Some(t) => t.load(std::sync::atomic::Ordering::Relaxed),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}
