//! The shape of an event's seat map (sections and runs of consecutive seats in a row), derived
//! once from the seat table and kept in memory: seats never move, only their status changes, so
//! a seat-map read is one query of statuses in seat-id order.

use super::{InventoryCounts, SeatStatus, SectionKind};

/// A section as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionInfo {
    pub id: String,
    pub name: String,
    pub kind: SectionKind,
    pub price_minor: i64,
    pub capacity: u32,
}

/// Where one stored seat sits; the input from which the shape is derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPlace {
    pub seat_id: u32,
    pub section_id: String,
    pub row_label: String,
    pub number: u32,
}

/// A run of seats with consecutive ids and numbers in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRun {
    pub label: String,
    pub first_seat_id: u32,
    pub first_number: u32,
    pub len: u32,
}

/// A section with its seats.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionShape {
    pub info: SectionInfo,
    /// First seat id of the section (its seats are consecutive).
    pub first_seat_id: u32,
    /// Row runs of a seated section; empty for general admission.
    pub rows: Vec<RowRun>,
}

/// Where one seat is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeatSpot<'a> {
    pub section: &'a SectionInfo,
    /// The row's label; `None` for a general-admission place.
    pub row: Option<&'a str>,
    /// Seat number in the row, or place number in a general-admission section.
    pub number: u32,
}

/// An event's seat-map shape.
#[derive(Debug, Clone, PartialEq)]
pub struct EventShape {
    pub sections: Vec<SectionShape>,
    /// Section index of each seat, by `seat_id - 1`.
    seat_section: Vec<u16>,
}

impl EventShape {
    /// Derives the shape from the sections (in display order) and the seats in seat-id order.
    /// Fails when the seats are not dense from 1 or a section's seats are not consecutive.
    pub fn derive(sections: Vec<SectionInfo>, seats: &[SeatPlace]) -> Result<EventShape, String> {
        let index_of: std::collections::HashMap<&str, usize> = sections
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut shapes: Vec<SectionShape> = sections
            .iter()
            .map(|info| SectionShape {
                info: info.clone(),
                first_seat_id: 0,
                rows: Vec::new(),
            })
            .collect();
        let mut seat_section = Vec::with_capacity(seats.len());
        let mut previous_section: Option<usize> = None;
        for (i, seat) in seats.iter().enumerate() {
            if seat.seat_id as usize != i + 1 {
                return Err(format!(
                    "seat ids are not dense: expected {}, found {}",
                    i + 1,
                    seat.seat_id
                ));
            }
            let section = *index_of.get(seat.section_id.as_str()).ok_or_else(|| {
                format!(
                    "seat {} is in unknown section {:?}",
                    seat.seat_id, seat.section_id
                )
            })?;
            let shape = &mut shapes[section];
            if previous_section != Some(section) {
                if shape.first_seat_id != 0 {
                    return Err(format!(
                        "section {:?} has seats that are not consecutive",
                        seat.section_id
                    ));
                }
                shape.first_seat_id = seat.seat_id;
            }
            previous_section = Some(section);
            if shape.info.kind == SectionKind::Seated {
                match shape.rows.last_mut() {
                    Some(run)
                        if run.label == seat.row_label
                            && run.first_number + run.len == seat.number =>
                    {
                        run.len += 1;
                    }
                    _ => shape.rows.push(RowRun {
                        label: seat.row_label.clone(),
                        first_seat_id: seat.seat_id,
                        first_number: seat.number,
                        len: 1,
                    }),
                }
            }
            seat_section.push(u16::try_from(section).map_err(|_| "too many sections".to_string())?);
        }
        Ok(EventShape {
            sections: shapes,
            seat_section,
        })
    }

    /// Seats in the event.
    pub fn capacity(&self) -> u32 {
        self.seat_section.len() as u32
    }

    /// Index of a section by id.
    pub fn section_index(&self, section_id: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.info.id == section_id)
    }

    /// Section index of a seat, if the seat exists.
    pub fn section_of(&self, seat_id: u32) -> Option<usize> {
        let index = usize::try_from(seat_id).ok()?.checked_sub(1)?;
        self.seat_section.get(index).map(|&s| usize::from(s))
    }

    /// Where a seat is: its section, and its row and number (a general-admission place has no
    /// row; its number is its place in the section).
    pub fn spot(&self, seat_id: u32) -> Option<SeatSpot<'_>> {
        let section = &self.sections[self.section_of(seat_id)?];
        if section.info.kind == SectionKind::GeneralAdmission {
            return Some(SeatSpot {
                section: &section.info,
                row: None,
                number: seat_id - section.first_seat_id + 1,
            });
        }
        let run = section
            .rows
            .iter()
            .find(|r| (r.first_seat_id..r.first_seat_id + r.len).contains(&seat_id))?;
        Some(SeatSpot {
            section: &section.info,
            row: Some(&run.label),
            number: run.first_number + (seat_id - run.first_seat_id),
        })
    }

    /// A person's name for a seat: "Lower 101 row 3 seat 7", or "Pista place 12".
    pub fn describe(&self, seat_id: u32) -> Option<String> {
        let spot = self.spot(seat_id)?;
        Some(match spot.row {
            None => format!("{} place {}", spot.section.name, spot.number),
            Some(row) => format!("{} row {row} seat {}", spot.section.name, spot.number),
        })
    }

    /// Counts per section (in section order) from every seat's effective status by seat id.
    pub fn counts(&self, statuses: &[SeatStatus]) -> Vec<InventoryCounts> {
        let mut counts = vec![InventoryCounts::default(); self.sections.len()];
        for (seat, status) in self.seat_section.iter().zip(statuses) {
            counts[usize::from(*seat)].add(*status, 1);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layout::parse_toml;

    fn shape_of(doc: &str) -> EventShape {
        let layout = parse_toml(doc)
            .and_then(|s| {
                s.validate(taquilla_proto::money::Currency::from_code("EUR").expect("EUR"))
            })
            .expect("layout");
        let sections = layout
            .sections
            .iter()
            .map(|s| SectionInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind,
                price_minor: s.price_minor,
                capacity: s.capacity,
            })
            .collect();
        let seats: Vec<SeatPlace> = layout
            .seats()
            .into_iter()
            .map(|s| SeatPlace {
                seat_id: s.seat_id,
                section_id: layout.sections[s.section].id.clone(),
                row_label: s.row_label,
                number: s.number,
            })
            .collect();
        EventShape::derive(sections, &seats).expect("shape")
    }

    #[test]
    fn rows_and_sections_come_out_as_laid_out() {
        let shape = shape_of(
            r#"
            [venue]
            id = "v"
            name = "V"
            [[sections]]
            id = "ga"
            name = "GA"
            kind = "general_admission"
            price = 10
            capacity = 5
            [[sections]]
            id = "s"
            name = "S"
            kind = "seated"
            price = 20
            rows = [ { label = "A", seats = 3 }, { label = "B", seats = 2, first_number = 7 } ]
            "#,
        );
        assert_eq!(shape.capacity(), 10);
        assert_eq!(shape.sections[0].first_seat_id, 1);
        assert!(shape.sections[0].rows.is_empty());
        assert_eq!(shape.sections[1].first_seat_id, 6);
        assert_eq!(
            shape.sections[1].rows,
            vec![
                RowRun {
                    label: "A".into(),
                    first_seat_id: 6,
                    first_number: 1,
                    len: 3
                },
                RowRun {
                    label: "B".into(),
                    first_seat_id: 9,
                    first_number: 7,
                    len: 2
                },
            ]
        );
        assert_eq!(shape.describe(10).as_deref(), Some("S row B seat 8"));
        assert_eq!(shape.describe(2).as_deref(), Some("GA place 2"));
        assert_eq!(shape.describe(11), None);
        assert_eq!(shape.section_of(5), Some(0));
        assert_eq!(shape.section_of(6), Some(1));
        assert_eq!(shape.section_of(0), None);
        assert_eq!(shape.section_of(11), None);
        let mut statuses = vec![SeatStatus::Available; 10];
        statuses[0] = SeatStatus::Sold;
        statuses[9] = SeatStatus::SoftLocked;
        let counts = shape.counts(&statuses);
        assert_eq!(counts[0].sold, 1);
        assert_eq!(counts[0].available, 4);
        assert_eq!(counts[1].soft_locked, 1);
        assert_eq!(counts[1].capacity, 5);
    }

    #[test]
    fn gaps_in_seat_ids_are_refused() {
        let sections = vec![SectionInfo {
            id: "s".into(),
            name: "S".into(),
            kind: SectionKind::Seated,
            price_minor: 1,
            capacity: 2,
        }];
        let seats = vec![
            SeatPlace {
                seat_id: 1,
                section_id: "s".into(),
                row_label: "A".into(),
                number: 1,
            },
            SeatPlace {
                seat_id: 3,
                section_id: "s".into(),
                row_label: "A".into(),
                number: 2,
            },
        ];
        assert!(
            EventShape::derive(sections, &seats)
                .expect_err("must fail")
                .contains("not dense")
        );
    }
}
