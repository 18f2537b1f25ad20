//! Venue layouts: the sections of a venue and their seats, as operators write them (TOML or
//! JSON, see the README's "Venue layout files"), validated into a [`Layout`] from which an
//! event's seats are created.
//!
//! Seat ids are dense: the first seat of the first section is 1 and ids follow the layout's
//! order (sections, then rows front to back, then seats left to right). The seat map relies on
//! this to send a row as a first id and a run of statuses.

use serde::{Deserialize, Serialize};
use taquilla_proto::money::Currency;

use super::SectionKind;
use super::ids::{check_short_id, check_text};

/// Most seats (and places) one event may have.
pub const MAX_EVENT_CAPACITY: u32 = 200_000;
/// Most sections one venue may have.
pub const MAX_SECTIONS: usize = 500;
/// Most rows one section may have.
pub const MAX_ROWS: usize = 500;
/// Most seats one row may have.
pub const MAX_SEATS_PER_ROW: u32 = 500;
/// Most places one general-admission section may have.
pub const MAX_GA_CAPACITY: u32 = 100_000;
/// Highest ticket price in minor units (100,000.00).
pub const MAX_PRICE_MINOR: i64 = 10_000_000;

/// A layout as written by an operator, before validation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSpec {
    pub venue: VenueSpec,
    #[serde(default)]
    pub sections: Vec<SectionSpec>,
}

/// The venue of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub city: String,
}

/// How rows are labelled when a section gives `row_count` instead of a list of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowLabels {
    /// A, B, …, Z, AA, AB, …
    #[default]
    Letters,
    /// 1, 2, 3, …
    Numbers,
}

/// One section as written by an operator.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    pub id: String,
    pub name: String,
    pub kind: SectionKind,
    /// Price in the event currency's minor units (cents for EUR, yen for JPY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<i64>,
    /// Price in the event currency's major units, with at most its decimals (85.50 in EUR,
    /// 5000 in JPY); an alternative to `price_minor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Explicit rows, front to back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<RowSpec>,
    /// Or: this many rows of `seats_per_row` seats each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_per_row: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_labels: Option<RowLabels>,
    /// Places of a general-admission section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

/// One row as written by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub label: String,
    pub seats: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_number: Option<u32>,
}

/// A validated layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub venue: VenueSpec,
    pub sections: Vec<Section>,
}

/// A validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub id: String,
    pub name: String,
    pub kind: SectionKind,
    pub price_minor: i64,
    /// Rows of a seated section; empty for general admission.
    pub rows: Vec<Row>,
    /// Seats or places in the section.
    pub capacity: u32,
}

/// A validated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub seats: u32,
    pub first_number: u32,
}

/// One seat to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSeat {
    pub seat_id: u32,
    /// Index of the seat's section in [`Layout::sections`].
    pub section: usize,
    /// Row label; empty for a general-admission place.
    pub row_label: String,
    /// Seat number; for a general-admission place, its 1-based index in the section.
    pub number: u32,
    pub price_minor: i64,
}

impl Layout {
    /// Seats and places of the whole layout.
    pub fn capacity(&self) -> u32 {
        self.sections.iter().map(|s| s.capacity).sum()
    }

    /// Every seat of the layout, in seat-id order starting at 1.
    pub fn seats(&self) -> Vec<NewSeat> {
        let mut seats = Vec::with_capacity(self.capacity() as usize);
        let mut next_id = 1u32;
        for (index, section) in self.sections.iter().enumerate() {
            match section.kind {
                SectionKind::Seated => {
                    for row in &section.rows {
                        for offset in 0..row.seats {
                            seats.push(NewSeat {
                                seat_id: next_id,
                                section: index,
                                row_label: row.label.clone(),
                                number: row.first_number + offset,
                                price_minor: section.price_minor,
                            });
                            next_id += 1;
                        }
                    }
                }
                SectionKind::GeneralAdmission => {
                    for place in 1..=section.capacity {
                        seats.push(NewSeat {
                            seat_id: next_id,
                            section: index,
                            row_label: String::new(),
                            number: place,
                            price_minor: section.price_minor,
                        });
                        next_id += 1;
                    }
                }
            }
        }
        seats
    }

    /// Cheapest and dearest ticket price.
    pub fn price_range(&self) -> (i64, i64) {
        let min = self
            .sections
            .iter()
            .map(|s| s.price_minor)
            .min()
            .unwrap_or(0);
        let max = self
            .sections
            .iter()
            .map(|s| s.price_minor)
            .max()
            .unwrap_or(0);
        (min, max)
    }
}

/// Parses a TOML layout document.
pub fn parse_toml(doc: &str) -> Result<LayoutSpec, String> {
    toml::from_str(doc).map_err(|e| format!("the layout is not valid TOML: {}", e.message()))
}

/// Parses a JSON layout document.
pub fn parse_json(doc: &str) -> Result<LayoutSpec, String> {
    serde_json::from_str(doc).map_err(|e| format!("the layout is not valid JSON: {e}"))
}

/// The label of row `index` (0-based) in the given style.
pub fn row_label(style: RowLabels, index: u32) -> String {
    match style {
        RowLabels::Numbers => (index + 1).to_string(),
        RowLabels::Letters => {
            // Bijective base 26: A..Z, AA..AZ, BA..
            let mut n = index + 1;
            let mut label = Vec::new();
            while n > 0 {
                let rem = (n - 1) % 26;
                label.push(b'A' + rem as u8);
                n = (n - 1) / 26;
            }
            label.reverse();
            String::from_utf8_lossy(&label).into_owned()
        }
    }
}

impl LayoutSpec {
    /// Validates the layout for an event priced in `currency` (a `price` in major units is
    /// read in the currency's decimals); the error names the section and field at fault.
    pub fn validate(&self, currency: Currency) -> Result<Layout, String> {
        check_short_id("venue id", &self.venue.id)?;
        check_text("venue name", &self.venue.name, 100)?;
        if !self.venue.city.is_empty() {
            check_text("venue city", &self.venue.city, 100)?;
        }
        if self.sections.is_empty() {
            return Err("the layout has no sections; add at least one [[sections]]".into());
        }
        if self.sections.len() > MAX_SECTIONS {
            return Err(format!(
                "the layout has {} sections; at most {MAX_SECTIONS} are allowed",
                self.sections.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut sections = Vec::with_capacity(self.sections.len());
        let mut total: u64 = 0;
        for spec in &self.sections {
            let section = spec.validate(currency)?;
            if !seen.insert(section.id.clone()) {
                return Err(format!("section id {:?} appears twice", section.id));
            }
            total += u64::from(section.capacity);
            sections.push(section);
        }
        if total > u64::from(MAX_EVENT_CAPACITY) {
            return Err(format!(
                "the layout has {total} seats; at most {MAX_EVENT_CAPACITY} are allowed per event"
            ));
        }
        Ok(Layout {
            venue: self.venue.clone(),
            sections,
        })
    }
}

impl SectionSpec {
    fn validate(&self, currency: Currency) -> Result<Section, String> {
        check_short_id("section id", &self.id)?;
        let id = &self.id;
        check_text(&format!("section {id:?}: name"), &self.name, 100)?;
        let price_minor = match (self.price_minor, self.price) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "section {id:?}: give either price or price_minor, not both"
                ));
            }
            (Some(minor), None) => minor,
            (None, Some(major)) => currency
                .from_major(major)
                .map_err(|e| format!("section {id:?}: price {e}"))?,
            (None, None) => {
                return Err(format!(
                    "section {id:?} has no price; add price = 85.00 or price_minor = 8500"
                ));
            }
        };
        if !(0..=MAX_PRICE_MINOR).contains(&price_minor) {
            return Err(format!(
                "section {id:?}: price {price_minor} (minor units) must be between 0 and {MAX_PRICE_MINOR}"
            ));
        }
        match self.kind {
            SectionKind::GeneralAdmission => {
                if !self.rows.is_empty() || self.row_count.is_some() || self.seats_per_row.is_some()
                {
                    return Err(format!(
                        "section {id:?} is general admission and cannot have rows; give its capacity"
                    ));
                }
                let capacity = self.capacity.unwrap_or(0);
                if capacity == 0 || capacity > MAX_GA_CAPACITY {
                    return Err(format!(
                        "section {id:?}: a general-admission section needs a capacity of 1 to {MAX_GA_CAPACITY}"
                    ));
                }
                Ok(Section {
                    id: id.clone(),
                    name: self.name.clone(),
                    kind: self.kind,
                    price_minor,
                    rows: Vec::new(),
                    capacity,
                })
            }
            SectionKind::Seated => {
                if self.capacity.is_some() {
                    return Err(format!(
                        "section {id:?} is seated: describe its rows instead of a capacity"
                    ));
                }
                let rows = self.seated_rows()?;
                if rows.len() > MAX_ROWS {
                    return Err(format!(
                        "section {id:?} has {} rows; at most {MAX_ROWS} are allowed",
                        rows.len()
                    ));
                }
                let mut labels = std::collections::HashSet::new();
                let mut capacity = 0u32;
                for row in &rows {
                    check_text(&format!("section {id:?}: row label"), &row.label, 8)?;
                    if !labels.insert(row.label.as_str()) {
                        return Err(format!("section {id:?}: row {:?} appears twice", row.label));
                    }
                    if row.seats == 0 || row.seats > MAX_SEATS_PER_ROW {
                        return Err(format!(
                            "section {id:?}: row {:?} has {} seats; a row needs 1 to {MAX_SEATS_PER_ROW}",
                            row.label, row.seats
                        ));
                    }
                    if row.first_number == 0 || row.first_number > 10_000 {
                        return Err(format!(
                            "section {id:?}: row {:?} starts at seat {}; seat numbers run from 1 to 10000",
                            row.label, row.first_number
                        ));
                    }
                    capacity += row.seats;
                }
                Ok(Section {
                    id: id.clone(),
                    name: self.name.clone(),
                    kind: self.kind,
                    price_minor,
                    rows,
                    capacity,
                })
            }
        }
    }

    fn seated_rows(&self) -> Result<Vec<Row>, String> {
        let id = &self.id;
        match (self.rows.is_empty(), self.row_count, self.seats_per_row) {
            (false, None, None) => Ok(self
                .rows
                .iter()
                .map(|r| Row {
                    label: r.label.clone(),
                    seats: r.seats,
                    first_number: r.first_number.unwrap_or(1),
                })
                .collect()),
            (true, Some(count), Some(seats)) => {
                if count == 0 || count as usize > MAX_ROWS {
                    return Err(format!(
                        "section {id:?}: row_count must be between 1 and {MAX_ROWS}"
                    ));
                }
                let style = self.row_labels.unwrap_or_default();
                Ok((0..count)
                    .map(|i| Row {
                        label: row_label(style, i),
                        seats,
                        first_number: 1,
                    })
                    .collect())
            }
            (true, None, None) => Err(format!(
                "section {id:?} is seated but has no rows; give rows = [...] or row_count and seats_per_row"
            )),
            _ => Err(format!(
                "section {id:?}: give either a list of rows or row_count with seats_per_row, not both"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR")
    }

    proptest::proptest! {
        /// An operator's layout file, whatever it holds, is a layout or a sentence: never a
        /// panic (sizes, prices and ids are all checked before anything is built).
        #[test]
        fn any_layout_document_is_parsed_or_refused(doc in "\\PC{0,400}") {
            if let Ok(spec) = parse_toml(&doc) {
                let _ = spec.validate(eur());
            }
            if let Ok(spec) = parse_json(&doc) {
                let _ = spec.validate(eur());
            }
        }

        /// Structured but hostile layouts: huge or zero sizes, negative prices.
        #[test]
        fn hostile_sizes_and_prices_are_refused_not_built(
            rows in proptest::num::i64::ANY,
            seats in proptest::num::i64::ANY,
            price in proptest::num::i64::ANY,
            capacity in proptest::num::i64::ANY,
        ) {
            let doc = format!(
                "[venue]\nid = \"v\"\nname = \"V\"\n\
                 [[sections]]\nid = \"s\"\nname = \"S\"\nkind = \"seated\"\nprice_minor = {price}\nrow_count = {rows}\nseats_per_row = {seats}\n\
                 [[sections]]\nid = \"g\"\nname = \"G\"\nkind = \"general_admission\"\nprice_minor = {price}\ncapacity = {capacity}\n"
            );
            if let Ok(spec) = parse_toml(&doc)
                && let Ok(layout) = spec.validate(eur())
            {
                proptest::prop_assert!(layout.capacity() > 0);
                proptest::prop_assert!(price >= 0);
            }
        }
    }

    const EXAMPLE: &str = r#"
        [venue]
        id = "sala-demo"
        name = "Sala Demo"
        city = "Madrid"

        [[sections]]
        id = "floor"
        name = "Floor (standing)"
        kind = "general_admission"
        price = 85.00
        capacity = 300

        [[sections]]
        id = "101"
        name = "Lower 101"
        kind = "seated"
        price_minor = 11500
        rows = [ { label = "A", seats = 10 }, { label = "B", seats = 12, first_number = 101 } ]

        [[sections]]
        id = "201"
        name = "Upper 201"
        kind = "seated"
        price = 45
        row_count = 3
        seats_per_row = 5
        row_labels = "numbers"
    "#;

    #[test]
    fn parses_and_validates_the_documented_example() {
        let layout = parse_toml(EXAMPLE)
            .and_then(|s| s.validate(eur()))
            .expect("valid");
        assert_eq!(layout.capacity(), 300 + 22 + 15);
        assert_eq!(layout.sections[0].price_minor, 8_500);
        assert_eq!(layout.sections[2].rows[2].label, "3");
        assert_eq!(layout.price_range(), (4_500, 11_500));
        let seats = layout.seats();
        assert_eq!(seats.len(), 337);
        assert_eq!(seats[0].seat_id, 1);
        assert_eq!(seats[300].row_label, "A");
        assert_eq!(seats[310].row_label, "B");
        assert_eq!(seats[310].number, 101);
        assert!(
            seats
                .iter()
                .enumerate()
                .all(|(i, s)| s.seat_id as usize == i + 1)
        );
    }

    #[test]
    fn json_is_accepted_too() {
        let spec = parse_toml(EXAMPLE).expect("toml");
        let json = serde_json::to_string(&spec).expect("json");
        assert_eq!(parse_json(&json).expect("parse"), spec);
    }

    #[test]
    fn row_labels_are_bijective_base_26() {
        assert_eq!(row_label(RowLabels::Letters, 0), "A");
        assert_eq!(row_label(RowLabels::Letters, 25), "Z");
        assert_eq!(row_label(RowLabels::Letters, 26), "AA");
        assert_eq!(row_label(RowLabels::Letters, 27), "AB");
        assert_eq!(row_label(RowLabels::Letters, 701), "ZZ");
        assert_eq!(row_label(RowLabels::Letters, 702), "AAA");
        assert_eq!(row_label(RowLabels::Numbers, 0), "1");
    }

    fn error_of(doc: &str) -> String {
        match parse_toml(doc).and_then(|s| s.validate(eur())) {
            Ok(_) => panic!("expected an error for {doc}"),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let venue = "[venue]\nid = \"v\"\nname = \"V\"\n";
        assert!(error_of(venue).contains("no sections"));
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"seated\"\nprice = 1\nrows = [{{ label = \"A\", seats = 0 }}]\n"
        ));
        assert!(e.contains("row \"A\" has 0 seats"), "{e}");
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"general_admission\"\nprice = 1.005\ncapacity = 5\n"
        ));
        assert!(e.contains("more decimals than EUR has (2)"), "{e}");
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"general_admission\"\ncapacity = 5\n"
        ));
        assert!(e.contains("has no price"), "{e}");
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"general_admission\"\nprice = 1\ncapacity = 5\n[[sections]]\nid = \"a\"\nname = \"B\"\nkind = \"general_admission\"\nprice = 1\ncapacity = 5\n"
        ));
        assert!(e.contains("appears twice"), "{e}");
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"balcony\"\n"
        ));
        assert!(e.contains("not valid TOML"), "{e}");
        let e = error_of(&format!(
            "{venue}[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"general_admission\"\nprice = 1\ncapacity = 100001\n"
        ));
        assert!(e.contains("capacity of 1 to 100000"), "{e}");
    }

    #[test]
    fn capacity_over_the_event_limit_is_refused() {
        let sections = (0..3)
            .map(|i| SectionSpec {
                id: format!("ga{i}"),
                name: format!("GA {i}"),
                kind: SectionKind::GeneralAdmission,
                price_minor: Some(100),
                price: None,
                rows: vec![],
                row_count: None,
                seats_per_row: None,
                row_labels: None,
                capacity: Some(MAX_GA_CAPACITY),
            })
            .collect();
        let spec = LayoutSpec {
            venue: VenueSpec {
                id: "big".into(),
                name: "Big".into(),
                city: String::new(),
            },
            sections,
        };
        let e = spec.validate(eur()).expect_err("must fail");
        assert!(e.contains("at most 200000"), "{e}");
    }
}
