//! When a campaign sends: days of the week, a daily time in an IANA time zone, and how many
//! messages per run.
//!
//! Each scheduled send is a *slot*, named by its instant in Unix seconds. A run claims its
//! slot once (see [`crate::CampaignStore::claim`]), so several engines never run it twice.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    fn of(date: Date) -> Weekday {
        match date.weekday() {
            jiff::civil::Weekday::Monday => Weekday::Mon,
            jiff::civil::Weekday::Tuesday => Weekday::Tue,
            jiff::civil::Weekday::Wednesday => Weekday::Wed,
            jiff::civil::Weekday::Thursday => Weekday::Thu,
            jiff::civil::Weekday::Friday => Weekday::Fri,
            jiff::civil::Weekday::Saturday => Weekday::Sat,
            jiff::civil::Weekday::Sunday => Weekday::Sun,
        }
    }
}

/// A campaign's sending schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Schedule {
    /// The days it sends on.
    pub days: Vec<Weekday>,
    /// The local time of each run, `HH:MM` (24-hour).
    pub send_time: String,
    /// An IANA time zone, such as `America/Chicago`.
    pub timezone: String,
    /// Messages per run, 1 to 1,000.
    pub per_run: u32,
}

/// The largest `per_run`: a run is a trickle, not a blast.
pub const MAX_PER_RUN: u32 = 1_000;

/// A checked schedule, ready to compute slots.
#[derive(Debug, Clone)]
pub struct Plan {
    days: Vec<Weekday>,
    time: Time,
    zone: TimeZone,
    per_run: u32,
}

impl Schedule {
    /// Checks every field and returns the computable form; errors name the field.
    pub fn plan(&self) -> Result<Plan, Error> {
        if self.days.is_empty() {
            return Err(Error::Invalid(
                "schedule.days must name at least one day".into(),
            ));
        }
        let time = parse_time(&self.send_time)?;
        let zone = TimeZone::get(self.timezone.trim()).map_err(|_| {
            Error::Invalid(format!(
                "schedule.timezone {:?} is not an IANA time zone",
                self.timezone
            ))
        })?;
        if !(1..=MAX_PER_RUN).contains(&self.per_run) {
            return Err(Error::Invalid(format!(
                "schedule.per_run must be between 1 and {MAX_PER_RUN}"
            )));
        }
        Ok(Plan {
            days: self.days.clone(),
            time,
            zone,
            per_run: self.per_run,
        })
    }
}

fn parse_time(text: &str) -> Result<Time, Error> {
    let invalid = || Error::Invalid(format!("schedule.send_time {text:?} is not HH:MM"));
    let (hour, minute) = text.trim().split_once(':').ok_or_else(invalid)?;
    let hour: i8 = hour.parse().map_err(|_| invalid())?;
    let minute: i8 = minute.parse().map_err(|_| invalid())?;
    Time::new(hour, minute, 0, 0).map_err(|_| invalid())
}

impl Plan {
    /// Messages per run.
    pub fn per_run(&self) -> u32 {
        self.per_run
    }

    /// The slot on `date`, if the schedule sends that day. A time skipped by a daylight
    /// saving change runs at the first instant after the gap.
    fn slot_on(&self, date: Date) -> Option<i64> {
        if !self.days.contains(&Weekday::of(date)) {
            return None;
        }
        let zoned = date
            .to_datetime(self.time)
            .to_zoned(self.zone.clone())
            .ok()?;
        Some(zoned.timestamp().as_second())
    }

    fn local_date(&self, at: i64) -> Option<Date> {
        let timestamp = jiff::Timestamp::from_second(at).ok()?;
        Some(timestamp.to_zoned(self.zone.clone()).date())
    }

    /// The latest slot at or before `now`.
    pub fn latest_slot(&self, now: OffsetDateTime) -> Option<i64> {
        let now = now.unix_timestamp();
        let mut date = self.local_date(now)?;
        for _ in 0..=8 {
            if let Some(slot) = self.slot_on(date).filter(|slot| *slot <= now) {
                return Some(slot);
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// The first slot strictly after `after` (Unix seconds).
    pub fn next_slot(&self, after: i64) -> Option<i64> {
        let mut date = self.local_date(after)?;
        for _ in 0..=8 {
            if let Some(slot) = self.slot_on(date).filter(|slot| *slot > after) {
                return Some(slot);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The slot to run at `now`: the latest one, if it is later than `last` (the last slot
    /// run) and no older than `grace` (a server that was down all day does not text people
    /// at midnight; the run waits for the next slot).
    pub fn due_slot(
        &self,
        now: OffsetDateTime,
        last: Option<i64>,
        grace: time::Duration,
    ) -> Option<i64> {
        let slot = self.latest_slot(now)?;
        let fresh = now.unix_timestamp() - slot <= grace.whole_seconds();
        (fresh && last.is_none_or(|last| slot > last)).then_some(slot)
    }

    /// The local dates of the first and last of `runs` runs after `after` (Unix seconds).
    pub fn send_days(&self, after: i64, runs: u64) -> Option<(String, String)> {
        if runs == 0 {
            return None;
        }
        let first = self.next_slot(after)?;
        let mut last = first;
        for _ in 1..runs {
            last = self.next_slot(last)?;
        }
        Some((
            self.local_date(first)?.to_string(),
            self.local_date(last)?.to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn weekdays_at_ten() -> Plan {
        Schedule {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            send_time: "10:00".into(),
            timezone: "America/Chicago".into(),
            per_run: 25,
        }
        .plan()
        .expect("valid")
    }

    #[test]
    fn slots_fall_on_the_chosen_days_and_local_time() {
        let plan = weekdays_at_ten();
        // Friday 2026-11-27 16:00 UTC is 10:00 in Chicago (CST, UTC-6).
        let friday = datetime!(2026-11-27 16:00 UTC).unix_timestamp();
        assert_eq!(
            plan.latest_slot(datetime!(2026-11-27 16:30 UTC)),
            Some(friday)
        );
        // Saturday: the latest slot is still Friday's; the next is Monday's.
        assert_eq!(
            plan.latest_slot(datetime!(2026-11-28 20:00 UTC)),
            Some(friday)
        );
        assert_eq!(
            plan.next_slot(friday),
            Some(datetime!(2026-11-30 16:00 UTC).unix_timestamp())
        );
        // Summer time: 10:00 CDT is 15:00 UTC.
        assert_eq!(
            plan.latest_slot(datetime!(2026-07-01 15:00 UTC)),
            Some(datetime!(2026-07-01 15:00 UTC).unix_timestamp())
        );
    }

    #[test]
    fn a_slot_is_due_once_and_only_while_fresh() {
        let plan = weekdays_at_ten();
        let grace = time::Duration::hours(3);
        let friday = datetime!(2026-11-27 16:00 UTC).unix_timestamp();
        // Just before Friday's slot, Thursday's is a day old: past the grace, not due.
        assert_eq!(
            plan.due_slot(datetime!(2026-11-27 15:59 UTC), None, grace),
            None
        );
        assert_eq!(
            plan.due_slot(datetime!(2026-11-27 16:00 UTC), None, grace),
            Some(friday)
        );
        assert_eq!(
            plan.due_slot(datetime!(2026-11-27 16:05 UTC), Some(friday), grace),
            None
        );
        assert_eq!(
            plan.due_slot(datetime!(2026-11-27 19:01 UTC), None, grace),
            None
        );
    }

    #[test]
    fn send_days_cover_the_runs() {
        let plan = weekdays_at_ten();
        let thursday_night = datetime!(2026-11-26 23:00 UTC).unix_timestamp();
        assert_eq!(
            plan.send_days(thursday_night, 3),
            Some(("2026-11-27".to_owned(), "2026-12-01".to_owned()))
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let mut schedule = Schedule {
            days: vec![Weekday::Mon],
            send_time: "25:00".into(),
            timezone: "America/Chicago".into(),
            per_run: 10,
        };
        assert!(
            schedule
                .plan()
                .unwrap_err()
                .to_string()
                .contains("send_time")
        );
        schedule.send_time = "09:30".into();
        schedule.timezone = "Mars/Olympus".into();
        assert!(
            schedule
                .plan()
                .unwrap_err()
                .to_string()
                .contains("timezone")
        );
        schedule.timezone = "Europe/London".into();
        schedule.per_run = 0;
        assert!(schedule.plan().unwrap_err().to_string().contains("per_run"));
        schedule.per_run = 10;
        schedule.days.clear();
        assert!(schedule.plan().unwrap_err().to_string().contains("days"));
    }
}
