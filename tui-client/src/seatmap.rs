//! The seat map a fan navigates: sections, rows and seats with their live status, the cursor, and
//! the seats picked so far. Pure data; the availability stream's changes are applied here.

use std::collections::{BTreeSet, HashMap};

use taquilla_proto::v1 as pb;

/// What a seat shows to this fan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatLook {
    Available,
    /// Soft- or hard-locked by someone else's hold or order.
    Held,
    Sold,
    /// In this fan's hold or order.
    Yours,
    /// Picked by this fan, not yet held.
    Picked,
}

/// One row of a seated section.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub first_seat_id: u32,
    pub first_number: u32,
    pub statuses: Vec<pb::SeatStatus>,
}

/// One section: its summary and, when seated, its rows.
#[derive(Debug, Clone)]
pub struct Section {
    pub summary: pb::SectionSummary,
    pub rows: Vec<Row>,
}

impl Section {
    pub fn is_general_admission(&self) -> bool {
        self.summary.kind() == pb::SectionKind::GeneralAdmission
    }

    pub fn widest_row(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.statuses.len())
            .max()
            .unwrap_or(0)
    }
}

/// Where a seat id lives: section, row and index within the row.
type Place = (usize, usize, usize);

/// The seat map with the fan's cursor and picks.
#[derive(Debug, Clone, Default)]
pub struct SeatMap {
    pub event_id: String,
    pub version: u64,
    pub sections: Vec<Section>,
    pub section: usize,
    pub row: usize,
    pub seat: usize,
    pub picked: BTreeSet<u32>,
    pub yours: BTreeSet<u32>,
    places: HashMap<u32, Place>,
}

impl SeatMap {
    pub fn from_proto(map: pb::SeatMap) -> SeatMap {
        let mut sections = Vec::with_capacity(map.sections.len());
        let mut places = HashMap::new();
        for (s, section) in map.sections.into_iter().enumerate() {
            let rows: Vec<Row> = section
                .rows
                .into_iter()
                .enumerate()
                .map(|(r, row)| {
                    let statuses: Vec<pb::SeatStatus> = row
                        .statuses
                        .iter()
                        .map(|&code| {
                            pb::SeatStatus::try_from(code).unwrap_or(pb::SeatStatus::Unspecified)
                        })
                        .collect();
                    for i in 0..statuses.len() {
                        places.insert(row.first_seat_id + i as u32, (s, r, i));
                    }
                    Row {
                        label: row.label,
                        first_seat_id: row.first_seat_id,
                        first_number: row.first_seat_number,
                        statuses,
                    }
                })
                .collect();
            sections.push(Section {
                summary: section.summary.unwrap_or_default(),
                rows,
            });
        }
        SeatMap {
            event_id: map.event_id,
            version: map.version,
            sections,
            places,
            ..SeatMap::default()
        }
    }

    /// Keeps the cursor, picks and the fan's own seats of `self` on a freshly loaded map.
    pub fn carry_over(&self, mut fresh: SeatMap) -> SeatMap {
        fresh.section = self.section.min(fresh.sections.len().saturating_sub(1));
        fresh.row = self.row;
        fresh.seat = self.seat;
        fresh.yours = self.yours.clone();
        fresh.picked = self
            .picked
            .iter()
            .copied()
            .filter(|id| fresh.status(*id) == Some(pb::SeatStatus::Available))
            .collect();
        fresh.clamp_cursor();
        fresh
    }

    pub fn current(&self) -> Option<&Section> {
        self.sections.get(self.section)
    }

    pub fn status(&self, seat_id: u32) -> Option<pb::SeatStatus> {
        let &(s, r, i) = self.places.get(&seat_id)?;
        Some(self.sections[s].rows[r].statuses[i])
    }

    pub fn look(&self, seat_id: u32, status: pb::SeatStatus) -> SeatLook {
        if self.yours.contains(&seat_id) {
            return SeatLook::Yours;
        }
        match status {
            pb::SeatStatus::Available if self.picked.contains(&seat_id) => SeatLook::Picked,
            pb::SeatStatus::Available => SeatLook::Available,
            pb::SeatStatus::Sold => SeatLook::Sold,
            _ => SeatLook::Held,
        }
    }

    /// Applies one message of the availability stream. Returns the picked seats that someone
    /// else just took (they are un-picked).
    pub fn apply(&mut self, update: &pb::AvailabilityUpdate) -> Vec<u32> {
        let mut lost = Vec::new();
        for change in &update.changes {
            let Some(&(s, r, i)) = self.places.get(&change.seat_id) else {
                continue;
            };
            let status =
                pb::SeatStatus::try_from(change.status).unwrap_or(pb::SeatStatus::Unspecified);
            self.sections[s].rows[r].statuses[i] = status;
            if status != pb::SeatStatus::Available && self.picked.remove(&change.seat_id) {
                lost.push(change.seat_id);
            }
        }
        for availability in &update.sections {
            if let Some(section) = self
                .sections
                .iter_mut()
                .find(|s| s.summary.id == availability.section_id)
            {
                section.summary.available = availability.available;
            }
        }
        self.version = self.version.max(update.version);
        lost
    }

    /// The seat under the cursor: (seat id, row label, seat number, status).
    pub fn cursor_seat(&self) -> Option<(u32, &str, u32, pb::SeatStatus)> {
        let row = self.current()?.rows.get(self.row)?;
        let status = *row.statuses.get(self.seat)?;
        Some((
            row.first_seat_id + self.seat as u32,
            &row.label,
            row.first_number + self.seat as u32,
            status,
        ))
    }

    /// A seat's section name, row label and number, for messages.
    pub fn describe(&self, seat_id: u32) -> Option<String> {
        let &(s, r, i) = self.places.get(&seat_id)?;
        let section = &self.sections[s];
        let row = &section.rows[r];
        Some(format!(
            "{} row {} seat {}",
            section.summary.name,
            row.label,
            row.first_number + i as u32
        ))
    }

    pub fn next_section(&mut self, step: isize) {
        let n = self.sections.len();
        if n == 0 {
            return;
        }
        self.section = (self.section as isize + step).rem_euclid(n as isize) as usize;
        self.row = 0;
        self.seat = 0;
    }

    pub fn move_cursor(&mut self, rows: isize, seats: isize) {
        let Some(section) = self.sections.get(self.section) else {
            return;
        };
        if section.rows.is_empty() {
            return;
        }
        let last_row = section.rows.len() - 1;
        let row = (self.row as isize + rows).clamp(0, last_row as isize) as usize;
        let width = section.rows[row].statuses.len();
        self.row = row;
        self.seat =
            (self.seat as isize + seats).clamp(0, width.saturating_sub(1) as isize) as usize;
    }

    fn clamp_cursor(&mut self) {
        self.move_cursor(0, 0);
    }

    /// Picks or un-picks the seat under the cursor. Returns why not, when it cannot be picked.
    pub fn toggle_pick(&mut self, cap: usize) -> Result<(), String> {
        let Some((id, label, number, status)) = self
            .cursor_seat()
            .map(|(id, label, number, status)| (id, label.to_string(), number, status))
        else {
            return Err("There is no seat here.".into());
        };
        if self.picked.remove(&id) {
            return Ok(());
        }
        if status != pb::SeatStatus::Available || self.yours.contains(&id) {
            return Err(format!("Row {label} seat {number} is not available."));
        }
        if self.picked.len() >= cap {
            return Err(format!("You can pick at most {cap} tickets."));
        }
        self.picked.insert(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn small_map() -> pb::SeatMap {
        let a = pb::SeatStatus::Available as i32;
        let s = pb::SeatStatus::Sold as i32;
        pb::SeatMap {
            event_id: "ev".into(),
            version: 3,
            sections: vec![pb::SectionMap {
                summary: Some(pb::SectionSummary {
                    id: "a".into(),
                    name: "Block A".into(),
                    kind: pb::SectionKind::Seated as i32,
                    price: None,
                    capacity: 6,
                    available: 5,
                }),
                rows: vec![
                    pb::RowMap {
                        label: "A".into(),
                        first_seat_id: 1,
                        first_seat_number: 1,
                        statuses: vec![a, a, s],
                    },
                    pb::RowMap {
                        label: "B".into(),
                        first_seat_id: 4,
                        first_seat_number: 10,
                        statuses: vec![a, a, a],
                    },
                ],
                first_seat_id: 1,
            }],
            read_at_unix_ms: 0,
        }
    }

    #[test]
    fn cursor_picks_and_live_changes() {
        let mut map = SeatMap::from_proto(small_map());
        map.move_cursor(0, 2);
        assert_eq!(
            map.toggle_pick(4),
            Err("Row A seat 3 is not available.".into())
        );
        map.move_cursor(1, 0);
        assert_eq!(map.cursor_seat().map(|c| (c.0, c.2)), Some((6, 12)));
        assert_eq!(map.toggle_pick(1), Ok(()));
        map.move_cursor(0, -1);
        assert_eq!(
            map.toggle_pick(1),
            Err("You can pick at most 1 tickets.".into())
        );
        let lost = map.apply(&pb::AvailabilityUpdate {
            event_id: "ev".into(),
            version: 4,
            changes: vec![pb::SeatChange {
                seat_id: 6,
                status: pb::SeatStatus::SoftLocked as i32,
            }],
            sections: vec![pb::SectionAvailability {
                section_id: "a".into(),
                available: 4,
            }],
            resync: false,
        });
        assert_eq!(lost, vec![6]);
        assert!(map.picked.is_empty());
        assert_eq!(map.look(6, pb::SeatStatus::SoftLocked), SeatLook::Held);
        assert_eq!(map.sections[0].summary.available, 4);
        assert_eq!(map.version, 4);
        assert_eq!(map.describe(5).as_deref(), Some("Block A row B seat 11"));
        // The cursor never leaves the grid.
        map.move_cursor(9, 9);
        assert_eq!((map.row, map.seat), (1, 2));
        map.move_cursor(-9, -9);
        assert_eq!((map.row, map.seat), (0, 0));
    }
}
