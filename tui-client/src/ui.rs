//! Drawing: a pure function from [`App`] to a frame. Every screen fits 80×24 and uses ASCII
//! glyphs only, so it reads the same in any terminal and in text snapshots; colour adds to the
//! glyphs but never replaces them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, List, ListItem, ListState, Paragraph, Row, Table, TableState, Wrap,
};
use taquilla_proto::display::{
    approx_duration, clock, money, money_minor, seat_place, thousands, utc_time,
};
use taquilla_proto::v1 as pb;

use crate::app::{App, CardField, Link, Screen, ShuffleCheck};
use crate::seatmap::{SeatLook, SeatMap};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let notice_height = match (&app.loading, &app.notice) {
        (None, Some(notice)) if notice.text.len() + 1 > frame.area().width as usize => 2,
        _ => 1,
    };
    let [title, body, notice, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(notice_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_title(frame, app, title);
    match app.screen {
        Screen::Events => draw_events(frame, app, body),
        Screen::Queue => draw_queue(frame, app, body),
        Screen::SeatMap => draw_seat_map(frame, app, body),
        Screen::Hold => draw_hold(frame, app, body),
        Screen::Pay => draw_pay(frame, app, body),
        Screen::Tickets => draw_tickets(frame, app, body),
    }
    draw_notice(frame, app, notice);
    frame.render_widget(
        Paragraph::new(key_hints(app)).style(Style::new().fg(Color::Black).bg(Color::Gray)),
        keys,
    );
    if app.show_help {
        draw_help(frame, app, body);
    }
}

fn draw_title(frame: &mut Frame, app: &App, area: Rect) {
    let mut left = vec![Span::from(" Taquilla").bold()];
    if let Some(event) = &app.event {
        let venue = event.venue.clone().unwrap_or_default();
        left.push(Span::from(format!(
            " | {} | {}, {}",
            event.name, venue.name, venue.city
        )));
    }
    let right = countdown(app).unwrap_or_default();
    let [l, r] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(right.len() as u16 + 1),
    ])
    .areas(area);
    let style = Style::new().fg(Color::White).bg(Color::Blue);
    frame.render_widget(Paragraph::new(Line::from(left)).style(style), l);
    frame.render_widget(Paragraph::new(right).style(style.bold()), r);
}

/// The deadline that matters on this screen, always in view.
fn countdown(app: &App) -> Option<String> {
    match app.screen {
        Screen::SeatMap => app.pass.as_ref().map(|p| {
            format!(
                "Choose within {}",
                clock(app.seconds_until(p.hold_deadline_unix_ms))
            )
        }),
        Screen::Hold => app.hold.as_ref().map(|h| {
            format!(
                "Held for {}",
                clock(app.seconds_until(h.expires_at_unix_ms))
            )
        }),
        Screen::Pay => app.order.as_ref().map(|o| {
            format!(
                "Pay within {}",
                clock(app.seconds_until(o.expires_at_unix_ms))
            )
        }),
        _ => None,
    }
}

fn draw_notice(frame: &mut Frame, app: &App, area: Rect) {
    let line = if let Some(loading) = app.loading {
        Line::from(format!(" {}", loading.label())).fg(Color::Cyan)
    } else if let Some(notice) = &app.notice {
        let line = Line::from(format!(" {}", notice.text));
        if notice.error {
            line.fg(Color::LightRed).bold()
        } else {
            line.fg(Color::Green)
        }
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), area);
}

fn key_hints(app: &App) -> String {
    let keys = match app.screen {
        Screen::Events => "Up/Down choose  Enter join queue  r reload",
        Screen::Queue if app.queue_token.is_none() => "r join again",
        Screen::Queue => "wait here: the screen updates by itself",
        Screen::SeatMap => "arrows/Tab move  Space pick  Enter hold  b best N  1-9 N",
        Screen::Hold => "Enter place order  x release seats",
        Screen::Pay => "type card  Tab next field  Enter pay",
        Screen::Tickets => "Up/Down scroll",
    };
    format!(" {keys}  ? help  q quit")
}

fn draw_help(frame: &mut Frame, app: &App, body: Rect) {
    let lines: &[&str] = match app.screen {
        Screen::Events => &[
            "Up/Down, j/k   choose an event",
            "Enter          join its waiting room",
            "r              reload the list",
        ],
        Screen::Queue => &[
            "Nothing to press: your place, the number waiting",
            "and the estimate update live. If the connection",
            "drops the app reconnects and keeps your place.",
            "r              join again after losing your place",
        ],
        Screen::SeatMap => &[
            "arrows         move between seats",
            "PgUp/PgDn      ten rows at a time",
            "Tab, Shift-Tab next or previous section",
            "Space          pick or unpick the seat",
            "Enter          hold the picked seats",
            "1-9, +/-       how many for best available",
            "b              hold the best seats in this section",
            "o free  x held by others  # sold  @ yours  + picked",
        ],
        Screen::Hold => &[
            "Enter, c       place the order (then pay)",
            "x              release the seats",
            "The hold ends when the timer at the top runs out.",
        ],
        Screen::Pay => &[
            "Tab            next field (number, expiry, code)",
            "Backspace      erase",
            "Enter          pay; after a decline, fix and retry",
            "Test cards: 4242 4242 4242 4242 pays,",
            "4000 0000 0000 0002 is declined.",
        ],
        Screen::Tickets => &[
            "Up/Down, j/k   scroll through the tickets",
            "Show the codes at the door. q quits.",
        ],
    };
    let mut text: Vec<Line> = lines.iter().map(|l| Line::from(*l)).collect();
    text.push(Line::default());
    text.push(Line::from("? or Esc closes this help; q quits anywhere.").italic());
    let width = 58.min(body.width);
    let height = (text.len() as u16 + 2).min(body.height);
    let area = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" Keys ").bold()),
        area,
    );
}

fn price_range(event: &pb::Event) -> String {
    let min = event
        .min_price
        .as_ref()
        .map(|m| m.amount_minor)
        .unwrap_or(0);
    let max = event
        .max_price
        .as_ref()
        .map(|m| m.amount_minor)
        .unwrap_or(0);
    let currency = event
        .min_price
        .as_ref()
        .map(|m| m.currency.as_str())
        .unwrap_or("");
    if min == max {
        money_minor(min, currency)
    } else {
        format!("{}-{} {currency}", min / 100, (max + 99) / 100)
    }
}

fn sale_state(event: &pb::Event) -> &'static str {
    match event.sale_state() {
        pb::SaleState::NotOpen => "soon",
        pb::SaleState::Open if event.sale_phase() == pb::SalePhase::Presale => "presale",
        pb::SaleState::Open => "on sale",
        pb::SaleState::Paused => "paused",
        pb::SaleState::SoldOut => "sold out",
        pb::SaleState::Closed => "closed",
        pb::SaleState::Unspecified => "-",
    }
}

fn draw_events(frame: &mut Frame, app: &App, area: Rect) {
    let [list, detail] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let rows = app.events.iter().map(|e| {
        let venue = e.venue.clone().unwrap_or_default();
        let inventory = e.inventory.unwrap_or_default();
        Row::new(vec![
            Cell::from(e.name.clone()),
            Cell::from(venue.city),
            Cell::from(
                utc_time(e.starts_at_unix_ms)
                    .trim_end_matches(" UTC")
                    .to_string(),
            ),
            Cell::from(price_range(e)),
            Cell::from(Line::from(thousands(u64::from(inventory.available))).right_aligned()),
            Cell::from(sale_state(e)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(14),
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(["Event", "City", "Date (UTC)", "Price", "Left", "Sale"]).bold())
    .row_highlight_style(Style::new().reversed())
    .highlight_symbol("> ")
    .block(Block::bordered().title(" Events on sale "));
    let mut state = TableState::default();
    if !app.events.is_empty() {
        state.select(Some(app.event_cursor));
    }
    frame.render_stateful_widget(table, list, &mut state);
    let text = match app.events.get(app.event_cursor) {
        Some(e) => {
            let venue = e.venue.clone().unwrap_or_default();
            let inventory = e.inventory.unwrap_or_default();
            vec![
                Line::from(format!("{} at {}, {}", e.artist, venue.name, venue.city)),
                Line::from(format!(
                    "{} of {} tickets left | fee {} per ticket | at most {} per fan",
                    thousands(u64::from(inventory.available)),
                    thousands(u64::from(inventory.capacity)),
                    money(e.fee_per_ticket.as_ref()),
                    e.max_tickets_per_fan
                )),
                Line::from(match e.sale_state() {
                    pb::SaleState::NotOpen if e.sale_opens_at_unix_ms > 0 => {
                        format!(
                            "Sale opens {}; join now to be in the early queue.",
                            utc_time(e.sale_opens_at_unix_ms)
                        )
                    }
                    pb::SaleState::NotOpen => {
                        "Sale not open yet; join now to be in the early queue.".into()
                    }
                    _ => String::new(),
                }),
            ]
        }
        None if app.loading.is_none() => vec![Line::from("No events yet. Press r to reload.")],
        None => Vec::new(),
    };
    frame.render_widget(
        Paragraph::new(text).block(Block::new().padding(ratatui::widgets::Padding::horizontal(1))),
        detail,
    );
}

fn tier_name(tier: pb::QueueTier) -> &'static str {
    match tier {
        pb::QueueTier::Vip => "VIP",
        pb::QueueTier::Presale => "presale",
        _ => "general",
    }
}

fn draw_queue(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Waiting room ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [state_area, place_area, gauge_area, info_area, alert_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Min(3),
    ])
    .areas(inner);
    let Some(status) = &app.queue else {
        frame.render_widget(Paragraph::new(" Joining..."), state_area);
        return;
    };
    let state = status.state();
    let headline = match state {
        pb::QueueState::Prequeue => {
            let opens = if status.sale_opens_at_unix_ms > 0 {
                format!(
                    " in {}",
                    clock(app.seconds_until(status.sale_opens_at_unix_ms))
                )
            } else {
                " soon".into()
            };
            format!("Early queue: the sale opens{opens}. Everyone here gets a random place then.")
        }
        pb::QueueState::Waiting if status.sale_paused => {
            "In line. The sale is paused for a moment; you keep your place.".into()
        }
        pb::QueueState::Waiting => {
            "In line. Keep this open; you will be let in automatically.".into()
        }
        pb::QueueState::Admitted => "It's your turn!".into(),
        pb::QueueState::Removed => "You are no longer in this queue.".into(),
        pb::QueueState::Expired => "Your place expired.".into(),
        pb::QueueState::SoldOut => "Sold out.".into(),
        pb::QueueState::Closed => "The sale is closed.".into(),
        pb::QueueState::Unspecified => "Connecting...".into(),
    };
    frame.render_widget(
        Paragraph::new(Line::from(format!(" {headline}")).bold()).wrap(Wrap { trim: false }),
        state_area,
    );
    let waiting = state == pb::QueueState::Waiting;
    let place = if waiting {
        Line::from(vec![
            Span::from(" Your place: "),
            Span::from(thousands(status.position))
                .bold()
                .fg(Color::Yellow),
            Span::from(format!(" of {} waiting", thousands(status.waiting_total))),
        ])
    } else {
        Line::from(format!(" {} fans waiting", thousands(status.waiting_total)))
    };
    frame.render_widget(Paragraph::new(place), place_area);
    let start = status.initial_position.max(status.position).max(1);
    let ratio = match state {
        pb::QueueState::Admitted => 1.0,
        pb::QueueState::Waiting => (start - status.position) as f64 / start as f64,
        _ => 0.0,
    };
    frame.render_widget(progress_bar(ratio, gauge_area.width), gauge_area);
    let mut info = Vec::new();
    if waiting {
        // Zero: the room has not measured the line's pace yet.
        let wait = if status.eta_seconds == 0 {
            "estimating...".to_string()
        } else {
            approx_duration(status.eta_seconds)
        };
        info.push(Line::from(format!(" Estimated wait: {wait}")));
    }
    info.push(Line::from(format!(" Queue: {}", tier_name(status.tier()))));
    if state == pb::QueueState::Prequeue && !status.shuffle_commitment.is_empty() {
        info.push(Line::from(format!(
            " Commitment {}",
            status.shuffle_commitment
        )));
    }
    match &app.shuffle {
        Some(ShuffleCheck::Checking) => {
            info.push(Line::from(" Checking the shuffle against its proof..."));
        }
        Some(ShuffleCheck::Verified { position }) => info.push(
            Line::from(format!(
                " Place verified: {} at opening, as the committed shuffle gives.",
                thousands(*position)
            ))
            .fg(Color::Green),
        ),
        Some(ShuffleCheck::Failed(why)) => {
            info.push(Line::from(format!(" Place NOT verified: {why}")).fg(Color::LightRed));
        }
        None => {}
    }
    if let Some(moved) = &app.moved {
        info.push(Line::from(format!(" {moved}")));
    }
    let link = match &app.link {
        Link::Live => Line::from(" Connection: live").fg(Color::Green),
        Link::Connecting => Line::from(" Connection: connecting...").fg(Color::Yellow),
        Link::Lost {
            attempt,
            retry_at_ms,
            reason,
        } => {
            let seconds = ((retry_at_ms - app.now_ms).max(0) + 999) / 1_000;
            info.push(Line::from(format!(" Connection lost: {reason}.")).fg(Color::LightRed));
            Line::from(format!(
                " Reconnecting in {seconds} s (attempt {attempt}); your place is kept."
            ))
            .fg(Color::LightRed)
        }
    };
    info.push(link);
    frame.render_widget(Paragraph::new(info).wrap(Wrap { trim: false }), info_area);
    if let Some(alert) = &app.alert {
        let (label, color) = match alert.severity() {
            pb::AlertSeverity::Critical => ("IMPORTANT", Color::LightRed),
            pb::AlertSeverity::Warning => ("NOTICE", Color::Yellow),
            _ => ("INFO", Color::Cyan),
        };
        frame.render_widget(
            Paragraph::new(alert.message.clone())
                .wrap(Wrap { trim: true })
                .block(
                    Block::bordered()
                        .title(format!(
                            " {label} from the organiser, {} ",
                            utc_time(alert.sent_at_unix_ms)
                        ))
                        .fg(color),
                ),
            alert_area,
        );
    }
}

/// `[#######-------]  48% of the way to the front`, in ASCII.
fn progress_bar(ratio: f64, width: u16) -> Paragraph<'static> {
    let ratio = ratio.clamp(0.0, 1.0);
    let label = format!(" {:>3.0}% of the way to the front", ratio * 100.0);
    let bar = (width as usize).saturating_sub(label.len() + 4).max(1);
    let done = ((bar as f64) * ratio).round() as usize;
    Paragraph::new(Line::from(vec![
        Span::from(" ["),
        Span::from("#".repeat(done)).fg(Color::Green),
        Span::from("-".repeat(bar - done)).fg(Color::DarkGray),
        Span::from("]"),
        Span::from(label),
    ]))
}

fn glyph(look: SeatLook) -> (char, Style) {
    match look {
        SeatLook::Available => ('o', Style::new().fg(Color::Green)),
        SeatLook::Held => ('x', Style::new().fg(Color::Yellow)),
        SeatLook::Sold => ('#', Style::new().fg(Color::DarkGray)),
        SeatLook::Yours => ('@', Style::new().fg(Color::Cyan).bold()),
        SeatLook::Picked => ('+', Style::new().fg(Color::Magenta).bold()),
    }
}

fn draw_seat_map(frame: &mut Frame, app: &App, area: Rect) {
    let Some(map) = &app.map else {
        frame.render_widget(
            Paragraph::new(" The seat map is on its way...").block(Block::bordered()),
            area,
        );
        return;
    };
    let [sections_area, grid_area] =
        Layout::horizontal([Constraint::Length(27), Constraint::Min(20)]).areas(area);
    let items: Vec<ListItem> = map
        .sections
        .iter()
        .map(|s| {
            let price = s
                .summary
                .price
                .as_ref()
                .map(|p| p.amount_minor)
                .unwrap_or(0);
            let name: String = s.summary.name.chars().take(12).collect();
            ListItem::new(format!(
                "{name:<12}{:>4} {:>6}",
                price / 100,
                thousands(u64::from(s.summary.available))
            ))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(map.section));
    frame.render_stateful_widget(
        List::new(items)
            .block(Block::bordered().title(" Section     EUR   left "))
            .highlight_style(Style::new().reversed()),
        sections_area,
        &mut state,
    );
    let Some(section) = map.current() else {
        return;
    };
    let title = format!(
        " {} | {} ",
        section.summary.name,
        money(section.summary.price.as_ref())
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(grid_area);
    frame.render_widget(block, grid_area);
    let [grid, info] = Layout::vertical([Constraint::Min(1), Constraint::Length(3)]).areas(inner);
    if section.is_general_admission() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(" Standing, no numbered seats."),
                Line::from(format!(
                    " {} of {} places left.",
                    thousands(u64::from(section.summary.available)),
                    thousands(u64::from(section.summary.capacity))
                )),
            ]),
            grid,
        );
    } else {
        draw_grid(frame, map, grid);
    }
    let mut lines = Vec::new();
    if !section.is_general_admission()
        && let Some((id, row, number, status)) = map.cursor_seat()
    {
        let what = match map.look(id, status) {
            SeatLook::Available => "free",
            SeatLook::Held => "held by someone",
            SeatLook::Sold => "sold",
            SeatLook::Yours => "yours",
            SeatLook::Picked => "picked",
        };
        lines.push(Line::from(format!(" Row {row} seat {number}: {what}")));
    } else {
        lines.push(Line::default());
    }
    lines.push(Line::from(format!(
        " Picked {} of max {} | best available: {} (b)",
        map.picked.len(),
        app.cap(),
        app.quantity
    )));
    lines.push(Line::from(" o free  x held  # sold  @ yours  + picked").dim());
    frame.render_widget(Paragraph::new(lines), info);
}

fn draw_grid(frame: &mut Frame, map: &SeatMap, area: Rect) {
    let Some(section) = map.current() else {
        return;
    };
    let label_width = section
        .rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(1)
        .min(4);
    let seats_visible = (area.width as usize).saturating_sub(label_width + 2).max(1);
    let rows_visible = (area.height as usize).max(1);
    let row_offset = window(map.row, rows_visible, section.rows.len());
    let seat_offset = window(map.seat, seats_visible, section.widest_row());
    let lines: Vec<Line> = section
        .rows
        .iter()
        .enumerate()
        .skip(row_offset)
        .take(rows_visible)
        .map(|(r, row)| {
            let mut spans = vec![
                Span::from(format!(
                    " {:>label_width$} ",
                    row.label.chars().take(label_width).collect::<String>()
                ))
                .dim(),
            ];
            for (i, status) in row
                .statuses
                .iter()
                .enumerate()
                .skip(seat_offset)
                .take(seats_visible)
            {
                let id = row.first_seat_id + i as u32;
                let (c, mut style) = glyph(map.look(id, *status));
                if r == map.row && i == map.seat {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                spans.push(Span::styled(c.to_string(), style));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// The first index to show so that `cursor` stays in a window of `visible` out of `total`.
fn window(cursor: usize, visible: usize, total: usize) -> usize {
    if total <= visible {
        return 0;
    }
    cursor.saturating_sub(visible / 2).min(total - visible)
}

fn seat_rows<'a>(seats: &'a [pb::SeatRef]) -> impl Iterator<Item = Row<'a>> + 'a {
    seats.iter().map(|s| {
        Row::new(vec![
            Cell::from(s.section_name.clone()),
            Cell::from(s.row.clone()),
            Cell::from(if s.row.is_empty() {
                "-".to_string()
            } else {
                s.number.to_string()
            }),
            Cell::from(Line::from(money(s.price.as_ref())).right_aligned()),
        ])
    })
}

fn summary_lines(subtotal: i64, fees: i64, currency: &str, count: usize) -> Vec<Line<'static>> {
    vec![
        Line::from(format!(
            " Tickets  {count:>3}   Subtotal {:>16}",
            money_minor(subtotal, currency)
        )),
        Line::from(format!(
            "                Booking fees {:>12}",
            money_minor(fees, currency)
        )),
        Line::from(format!(
            "                Total        {:>12}",
            money_minor(subtotal + fees, currency)
        ))
        .bold(),
    ]
}

fn seats_table<'a>(seats: &'a [pb::SeatRef], title: &'a str) -> Table<'a> {
    Table::new(
        seat_rows(seats),
        [
            Constraint::Min(16),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(14),
        ],
    )
    .header(Row::new(["Section", "Row", "Seat", "      Price"]).bold())
    .block(Block::bordered().title(title))
}

fn draw_hold(frame: &mut Frame, app: &App, area: Rect) {
    let Some(hold) = &app.hold else {
        return;
    };
    let [table, summary] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(5)]).areas(area);
    frame.render_widget(
        seats_table(&hold.seats, " Your seats (held for you) "),
        table,
    );
    let subtotal = hold.subtotal.as_ref();
    let currency = subtotal.map(|m| m.currency.as_str()).unwrap_or("EUR");
    let fee = app
        .event
        .as_ref()
        .and_then(|e| e.fee_per_ticket.as_ref())
        .map(|m| m.amount_minor)
        .unwrap_or(0);
    let fees = fee * hold.seats.len() as i64;
    let mut lines = summary_lines(
        subtotal.map(|m| m.amount_minor).unwrap_or(0),
        fees,
        currency,
        hold.seats.len(),
    );
    lines.push(Line::from(
        " Press Enter to place the order, x to let the seats go.",
    ));
    frame.render_widget(Paragraph::new(lines).block(Block::new()), summary);
}

fn draw_pay(frame: &mut Frame, app: &App, area: Rect) {
    let Some(order) = &app.order else {
        return;
    };
    let [table, summary, form] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(7),
    ])
    .areas(area);
    frame.render_widget(seats_table(&order.seats, " Your order "), table);
    let currency = order
        .total
        .as_ref()
        .map(|m| m.currency.as_str())
        .unwrap_or("EUR");
    frame.render_widget(
        Paragraph::new(summary_lines(
            order.subtotal.as_ref().map(|m| m.amount_minor).unwrap_or(0),
            order.fees.as_ref().map(|m| m.amount_minor).unwrap_or(0),
            currency,
            order.seats.len(),
        )),
        summary,
    );
    let field = |label: &str, value: &str, which: CardField| {
        let focused = app.card.field == which;
        let value = if focused {
            format!("{value}_")
        } else {
            value.to_string()
        };
        let style = if focused {
            Style::new().fg(Color::Black).bg(Color::White)
        } else {
            Style::new()
        };
        Line::from(vec![
            Span::from(format!(" {label:<14}")),
            Span::styled(format!("{value:<24}"), style),
        ])
    };
    let mut lines = vec![
        field("Card number", &app.card.number, CardField::Number),
        field("Expiry MM/YY", &app.card.expiry, CardField::Expiry),
        field("Security code", &app.card.cvc, CardField::Cvc),
    ];
    if let Some(payment) = &app.last_payment
        && payment.state() == pb::PaymentState::Failed
    {
        lines.push(
            Line::from(format!(" Last attempt: {}", payment.failure_reason)).fg(Color::LightRed),
        );
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" Pay {} ", money(order.total.as_ref())))),
        form,
    );
}

fn draw_tickets(frame: &mut Frame, app: &App, area: Rect) {
    let Some(order) = &app.order else {
        return;
    };
    let mut lines = vec![
        Line::from(format!(
            " Order {} | paid {}",
            order.order_id,
            money(order.total.as_ref())
        ))
        .bold(),
        Line::default(),
    ];
    // Every seat first, where a fan sees them at once; then each ticket's code.
    for (n, ticket) in order.tickets.iter().enumerate() {
        let place = seat_place(ticket.seat.as_ref());
        lines.push(Line::from(format!(" Ticket {}: {place}", n + 1)));
    }
    lines.push(Line::default());
    lines.push(Line::from(" Show each ticket's code at the door (↑/↓ to scroll):").dim());
    lines.push(Line::default());
    for (n, ticket) in order.tickets.iter().enumerate() {
        let place = seat_place(ticket.seat.as_ref());
        lines.push(Line::from(format!(" Ticket {}: {place}", n + 1)).fg(Color::Cyan));
        // The code as a QR code to show at the door, and its start in text (a steward can
        // read it out; the whole code is in the QR code and the operator's records).
        match crate::qr::lines(&ticket.code) {
            Some(qr) => lines.extend(qr),
            None => lines.push(Line::from(format!("   {}", ticket.code))),
        }
        let start: String = ticket.code.chars().take(40).collect();
        lines.push(Line::from(format!("   {start}…")).dim());
        lines.push(Line::from(format!("   ticket {}", ticket.ticket_id)).dim());
        lines.push(Line::default());
    }
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((app.scroll, 0))
            .block(Block::bordered().title(" Your tickets ")),
        area,
    );
}
