//! Pure domain code: no IO, no proto types, no database. Everything here is tested without a
//! server or a database.

pub mod clock;
pub mod demo;
pub mod ids;
pub mod inventory;
pub mod layout;
pub mod push;
pub mod queue;
pub mod seat_map;
pub mod time;
pub mod valve;

/// Whether a section has numbered seats or is standing room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// Numbered seats in labelled rows.
    Seated,
    /// Unnumbered places sold by quantity.
    GeneralAdmission,
}

impl SectionKind {
    /// The name stored in the database.
    pub fn as_db(self) -> &'static str {
        match self {
            SectionKind::Seated => "SEATED",
            SectionKind::GeneralAdmission => "GENERAL_ADMISSION",
        }
    }

    /// Parses the name stored in the database.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "SEATED" => Some(SectionKind::Seated),
            "GENERAL_ADMISSION" => Some(SectionKind::GeneralAdmission),
            _ => None,
        }
    }
}

/// A seat's stored status. Whether a lock is still live depends on the time: see
/// [`SeatStatus::effective`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatStatus {
    Available,
    SoftLocked,
    HardLocked,
    Sold,
}

impl SeatStatus {
    pub fn as_db(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::SoftLocked => "SOFT_LOCKED",
            SeatStatus::HardLocked => "HARD_LOCKED",
            SeatStatus::Sold => "SOLD",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "AVAILABLE" => Some(SeatStatus::Available),
            "SOFT_LOCKED" => Some(SeatStatus::SoftLocked),
            "HARD_LOCKED" => Some(SeatStatus::HardLocked),
            "SOLD" => Some(SeatStatus::Sold),
            _ => None,
        }
    }

    /// The status a reader should see at `now_ms`: a lock whose time has passed is available,
    /// whether or not the sweeper has cleaned it up yet.
    pub fn effective(self, locked_until_ms: Option<i64>, now_ms: i64) -> SeatStatus {
        match self {
            SeatStatus::SoftLocked | SeatStatus::HardLocked
                if locked_until_ms.is_none_or(|until| until <= now_ms) =>
            {
                SeatStatus::Available
            }
            other => other,
        }
    }
}

/// The state of an event's sale as the operator controls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaleState {
    NotOpen,
    Open,
    Paused,
    SoldOut,
    Closed,
}

impl SaleState {
    pub fn as_db(self) -> &'static str {
        match self {
            SaleState::NotOpen => "NOT_OPEN",
            SaleState::Open => "OPEN",
            SaleState::Paused => "PAUSED",
            SaleState::SoldOut => "SOLD_OUT",
            SaleState::Closed => "CLOSED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "NOT_OPEN" => Some(SaleState::NotOpen),
            "OPEN" => Some(SaleState::Open),
            "PAUSED" => Some(SaleState::Paused),
            "SOLD_OUT" => Some(SaleState::SoldOut),
            "CLOSED" => Some(SaleState::Closed),
            _ => None,
        }
    }
}

/// The phase of an event's sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SalePhase {
    Presale,
    General,
}

impl SalePhase {
    pub fn as_db(self) -> &'static str {
        match self {
            SalePhase::Presale => "PRESALE",
            SalePhase::General => "GENERAL",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PRESALE" => Some(SalePhase::Presale),
            "GENERAL" => Some(SalePhase::General),
            _ => None,
        }
    }
}

/// Seat counts by effective status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryCounts {
    pub capacity: u32,
    pub available: u32,
    pub soft_locked: u32,
    pub hard_locked: u32,
    pub sold: u32,
}

impl InventoryCounts {
    /// Adds `n` seats of status `status`.
    pub fn add(&mut self, status: SeatStatus, n: u32) {
        self.capacity += n;
        match status {
            SeatStatus::Available => self.available += n,
            SeatStatus::SoftLocked => self.soft_locked += n,
            SeatStatus::HardLocked => self.hard_locked += n,
            SeatStatus::Sold => self.sold += n,
        }
    }

    /// Sums two sets of counts.
    pub fn merge(&mut self, other: &InventoryCounts) {
        self.capacity += other.capacity;
        self.available += other.available;
        self.soft_locked += other.soft_locked;
        self.hard_locked += other.hard_locked;
        self.sold += other.sold;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_locks_read_as_available() {
        assert_eq!(
            SeatStatus::SoftLocked.effective(Some(1_000), 1_000),
            SeatStatus::Available
        );
        assert_eq!(
            SeatStatus::HardLocked.effective(Some(1_001), 1_000),
            SeatStatus::HardLocked
        );
        assert_eq!(
            SeatStatus::Sold.effective(Some(0), 1_000),
            SeatStatus::Sold,
            "a sale never expires"
        );
        assert_eq!(
            SeatStatus::SoftLocked.effective(None, 0),
            SeatStatus::Available
        );
    }

    #[test]
    fn db_names_round_trip() {
        for s in [
            SeatStatus::Available,
            SeatStatus::SoftLocked,
            SeatStatus::HardLocked,
            SeatStatus::Sold,
        ] {
            assert_eq!(SeatStatus::from_db(s.as_db()), Some(s));
        }
        for s in [
            SaleState::NotOpen,
            SaleState::Open,
            SaleState::Paused,
            SaleState::SoldOut,
            SaleState::Closed,
        ] {
            assert_eq!(SaleState::from_db(s.as_db()), Some(s));
        }
        for k in [SectionKind::Seated, SectionKind::GeneralAdmission] {
            assert_eq!(SectionKind::from_db(k.as_db()), Some(k));
        }
        assert_eq!(SeatStatus::from_db("sold"), None);
    }
}
