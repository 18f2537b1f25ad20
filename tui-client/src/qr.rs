//! A ticket code drawn as a QR code in the terminal, for a phone or a door scanner's camera to
//! read: two rows of modules per line (the upper half block, its foreground the upper module and
//! its background the lower), dark modules black on white whatever the terminal's own colours,
//! with the four-module quiet zone the QR standard asks for.

use qrcode::{Color as Module, EcLevel, QrCode};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

/// Light modules around the code, on every side.
const QUIET_ZONE: usize = 4;

/// The modules of `text`'s QR code (low error correction: the smallest code, read from a
/// screen), with the quiet zone: `true` is dark. `None` if the text cannot be encoded.
pub fn modules(text: &str) -> Option<Vec<Vec<bool>>> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    Some(
        (0..size)
            .map(|y| {
                (0..size)
                    .map(|x| {
                        let inside = QUIET_ZONE..QUIET_ZONE + width;
                        inside.contains(&x)
                            && inside.contains(&y)
                            && colors[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Module::Dark
                    })
                    .collect()
            })
            .collect(),
    )
}

fn color(dark: bool) -> Color {
    if dark { Color::Black } else { Color::White }
}

/// The QR code of `text` as terminal lines: as many columns as modules, half as many lines.
pub fn lines(text: &str) -> Option<Vec<Line<'static>>> {
    let modules = modules(text)?;
    let size = modules.len();
    Some(
        (0..size)
            .step_by(2)
            .map(|y| {
                let spans: Vec<Span<'static>> = (0..size)
                    .map(|x| {
                        let top = modules[y][x];
                        let bottom = modules.get(y + 1).is_some_and(|row| row[x]);
                        Span::styled("▀", Style::default().fg(color(top)).bg(color(bottom)))
                    })
                    .collect();
                Line::from(spans)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the terminal shows, read back as a camera would: each cell's two halves as pixels
    /// (4 × 4 per module), decoded by a QR reader, give the code back.
    #[test]
    fn a_camera_reads_the_drawn_code_as_the_ticket_code() {
        // As long as real codes get: the longest event id of the LUX Tour, 32-hex ids.
        let code = taquilla_proto::tickets::TicketSigningKey::derive(b"0123456789abcdef", "k12")
            .sign(&taquilla_proto::tickets::TicketClaims {
                ev: "lux-bcn-2026-04-13".into(),
                seat: 17_999,
                ord: format!("o_{}", "f".repeat(32)),
                tk: format!("t_{}", "e".repeat(32)),
                iat: 1_774_897_200_000,
            });
        let lines = lines(&code).expect("encodable");
        let rows = lines.len() * 2;
        let cols = lines[0].spans.len();
        const SCALE: usize = 4;
        let dark_at = |x: usize, y: usize| -> bool {
            let span = &lines[y / 2].spans[x];
            let color = if y.is_multiple_of(2) {
                span.style.fg
            } else {
                span.style.bg
            };
            color == Some(Color::Black)
        };
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(cols * SCALE, rows * SCALE, |x, y| {
                if dark_at(x / SCALE, y / SCALE) {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one code on screen");
        let (_, read) = grids[0].decode().expect("the code decodes");
        assert_eq!(read, code);
        assert!(
            cols <= 78,
            "{cols} columns: must fit inside the bordered tickets screen of an 80-column terminal"
        );
    }

    #[test]
    fn the_quiet_zone_is_light_all_round() {
        let modules = modules("tq2.k1.x.y").expect("encodable");
        let size = modules.len();
        let light_edges = |row: &Vec<bool>| {
            row[..QUIET_ZONE].iter().all(|dark| !dark)
                && row[size - QUIET_ZONE..].iter().all(|dark| !dark)
        };
        assert!(modules.iter().all(light_edges), "left and right");
        let light_row = |row: &Vec<bool>| row.iter().all(|dark| !dark);
        assert!(modules[..QUIET_ZONE].iter().all(light_row), "top");
        assert!(modules[size - QUIET_ZONE..].iter().all(light_row), "bottom");
    }
}
