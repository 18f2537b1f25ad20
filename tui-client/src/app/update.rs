//! `update`: how each message changes the app (keys by screen, ticks, network answers, queue
//! updates).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use taquilla_proto::v1 as pb;

use super::*;

/// Applies one message; returns a follow-up message when one is due at once.
pub fn update(app: &mut App, msg: Msg) -> Option<Msg> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Tick(now_ms) => {
            app.now_ms = now_ms;
            on_tick(app);
            None
        }
        Msg::Resize => None,
        Msg::Net(net) => on_net(app, *net),
    }
}

fn on_tick(app: &mut App) {
    let server_now = app.server_now_ms();
    match app.screen {
        Screen::Hold => {
            if let Some(hold) = &app.hold
                && hold.expires_at_unix_ms <= server_now
            {
                app.back_to_seat_map(
                    "Your hold expired and the seats went back on sale. Pick again.".into(),
                );
            }
        }
        Screen::Pay => {
            if let Some(order) = &app.order
                && order.expires_at_unix_ms <= server_now
                && app.loading != Some(Loading::Paying)
            {
                app.back_to_seat_map(
                    "Your order expired before it was paid; the seats went back on sale.".into(),
                );
            }
        }
        _ => {}
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Option<Msg> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => {
            app.quit = true;
            return None;
        }
        KeyCode::Char('q') => {
            app.quit = true;
            return None;
        }
        KeyCode::Char('?') => {
            app.show_help = !app.show_help;
            return None;
        }
        KeyCode::Esc if app.show_help => {
            app.show_help = false;
            return None;
        }
        _ => {}
    }
    match app.screen {
        Screen::Events => events_key(app, key.code),
        Screen::Queue => {
            if key.code == KeyCode::Char('r') && app.queue_token.is_none() && app.loading.is_none()
            {
                app.join();
            }
        }
        Screen::SeatMap => seat_map_key(app, key.code),
        Screen::Hold => hold_key(app, key.code),
        Screen::Pay => pay_key(app, key.code),
        Screen::Tickets => match key.code {
            KeyCode::Up | KeyCode::Char('k') => app.scroll = app.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                app.scroll = app.scroll.saturating_add(1).min(400)
            }
            _ => {}
        },
    }
    None
}

fn events_key(app: &mut App, code: KeyCode) {
    match code {
        KeyCode::Up | KeyCode::Char('k') => app.event_cursor = app.event_cursor.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            app.event_cursor = (app.event_cursor + 1).min(app.events.len().saturating_sub(1));
        }
        KeyCode::Char('r') => {
            app.loading = Some(Loading::Events);
            app.outbox.push(Command::LoadEvents);
        }
        KeyCode::Enter => {
            if let Some(event) = app.events.get(app.event_cursor).cloned() {
                app.event = Some(event);
                app.join();
            }
        }
        _ => {}
    }
}

fn seat_map_key(app: &mut App, code: KeyCode) {
    if app.loading.is_some() {
        return;
    }
    let cap = app.cap();
    let Some(map) = &mut app.map else {
        if code == KeyCode::Char('r') {
            app.load_seat_map();
        }
        return;
    };
    match code {
        KeyCode::Tab => map.next_section(1),
        KeyCode::BackTab => map.next_section(-1),
        KeyCode::Up => map.move_cursor(-1, 0),
        KeyCode::Down => map.move_cursor(1, 0),
        KeyCode::Left => map.move_cursor(0, -1),
        KeyCode::Right => map.move_cursor(0, 1),
        KeyCode::PageUp => map.move_cursor(-10, 0),
        KeyCode::PageDown => map.move_cursor(10, 0),
        KeyCode::Home => map.move_cursor(0, -10_000),
        KeyCode::End => map.move_cursor(0, 10_000),
        KeyCode::Char(' ') => {
            if let Err(why) = map.toggle_pick(cap as usize) {
                app.warn(why);
            } else {
                app.notice = None;
            }
        }
        KeyCode::Char('+') | KeyCode::Char('=') => app.quantity = (app.quantity + 1).min(cap),
        KeyCode::Char('-') => app.quantity = app.quantity.saturating_sub(1).max(1),
        KeyCode::Char(c @ '1'..='9') => {
            let wanted = c.to_digit(10).unwrap_or(1);
            app.quantity = wanted.min(cap);
            if wanted > cap {
                app.warn(format!("You can buy at most {cap} tickets for this event."));
            }
        }
        KeyCode::Char('b') => {
            let Some(section) = map.current() else {
                return;
            };
            let selection = Selection::Best {
                section_id: section.summary.id.clone(),
                quantity: app.quantity,
            };
            hold(app, selection);
        }
        KeyCode::Enter => {
            if map.picked.is_empty() {
                app.warn("Pick seats with Space first, or press b for the best available.");
                return;
            }
            let seats = map.picked.iter().copied().collect();
            hold(app, Selection::Seats(seats));
        }
        _ => {}
    }
}

fn hold(app: &mut App, selection: Selection) {
    app.loading = Some(Loading::Holding);
    app.notice = None;
    app.outbox.push(Command::Hold {
        pass: app.pass_token(),
        event_id: app.event_id().to_string(),
        selection,
    });
}

fn hold_key(app: &mut App, code: KeyCode) {
    if app.loading.is_some() {
        return;
    }
    let Some(hold) = &app.hold else {
        return;
    };
    match code {
        KeyCode::Enter | KeyCode::Char('c') => {
            let hold_id = hold.hold_id.clone();
            app.loading = Some(Loading::CheckingOut);
            app.outbox.push(Command::Checkout {
                pass: app.pass_token(),
                idempotency_key: app.idempotency_key("checkout", &hold_id, 1),
                hold_id,
            });
        }
        KeyCode::Char('x') => {
            let hold_id = hold.hold_id.clone();
            app.loading = Some(Loading::Releasing);
            app.outbox.push(Command::Release {
                pass: app.pass_token(),
                hold_id,
            });
        }
        _ => {}
    }
}

fn pay_key(app: &mut App, code: KeyCode) {
    if app.loading.is_some() {
        return;
    }
    match code {
        KeyCode::Tab => app.card.next_field(),
        KeyCode::Backspace => {
            app.card.input().pop();
        }
        KeyCode::Char(c) => app.card.type_char(c),
        KeyCode::Enter => {
            let Some(order) = &app.order else {
                return;
            };
            match app.card.to_card() {
                Ok(card) => {
                    if app.pay_needs_new_key {
                        app.pay_attempts += 1;
                        app.pay_needs_new_key = false;
                    }
                    app.loading = Some(Loading::Paying);
                    app.notice = None;
                    app.outbox.push(Command::Pay {
                        pass: app.pass_token(),
                        order_id: order.order_id.clone(),
                        idempotency_key: app.idempotency_key(
                            "pay",
                            &order.order_id,
                            app.pay_attempts,
                        ),
                        card,
                    });
                }
                Err(why) => app.warn(why),
            }
        }
        _ => {}
    }
}

fn move_reason(reason: pb::MoveReason, from: u64, to: u64) -> Option<String> {
    use taquilla_proto::display::thousands;
    let why = match reason {
        pb::MoveReason::Admissions => "fans ahead of you were let in",
        pb::MoveReason::Departures => "fans ahead of you left the queue",
        pb::MoveReason::PriorityTier => "fans with priority (presale or VIP) are served first",
        pb::MoveReason::SaleOpened => "the sale opened and the early arrivals were shuffled",
        pb::MoveReason::Requeued => "you were put back in line after your turn lapsed",
        pb::MoveReason::Unspecified => return None,
    };
    Some(if from == 0 || from == to {
        format!("Your place: {}: {why}.", thousands(to))
    } else {
        format!(
            "Moved from {} to {}: {why}.",
            thousands(from),
            thousands(to)
        )
    })
}

fn on_queue_update(app: &mut App, update: pb::QueueUpdate) -> Option<Msg> {
    if update.server_time_unix_ms > 0 {
        app.server_offset_ms = update.server_time_unix_ms - app.now_ms;
    }
    app.link = Link::Live;
    let reason = update.move_reason();
    if let Some(alert) = update.alert {
        app.alert = Some(alert);
    }
    if let Some(status) = update.status {
        let before = app.queue.as_ref().map(|s| s.position).unwrap_or(0);
        let was_early = app
            .queue
            .as_ref()
            .is_some_and(|s| s.state() == pb::QueueState::Prequeue);
        if !status.shuffle_commitment.is_empty() {
            app.commitment_seen = Some(status.shuffle_commitment.clone());
        }
        if was_early
            && matches!(
                status.state(),
                pb::QueueState::Waiting | pb::QueueState::Admitted
            )
            && app.shuffle.is_none()
            && let (Some(token), Some(commitment)) = (&app.queue_token, &app.commitment_seen)
        {
            app.shuffle = Some(ShuffleCheck::Checking);
            app.outbox.push(Command::CheckShuffle {
                event_id: status.event_id.clone(),
                token: token.clone(),
                shown_position: status.initial_position,
                commitment_seen: commitment.clone(),
            });
        }
        if status.position != before
            && let Some(text) = move_reason(reason, before, status.position)
        {
            app.moved = Some(text);
        }
        let state = status.state();
        app.queue = Some(status);
        match state {
            pb::QueueState::SoldOut => app.warn("Sold out: every ticket for this event is sold."),
            pb::QueueState::Closed => app.warn("The sale is closed."),
            pb::QueueState::Removed => app.warn("You are no longer in this queue."),
            pb::QueueState::Expired => {
                app.warn("Your place expired because you were away too long; join again with r.")
            }
            _ => {}
        }
    }
    if let Some(pass) = update.admission_pass
        && app.pass.is_none()
        && app.screen == Screen::Queue
    {
        app.pass = Some(pass);
        app.outbox.push(Command::StopQueueWatch);
        app.screen = Screen::SeatMap;
        app.tell("It's your turn! Pick your seats.");
        app.load_seat_map();
    }
    None
}

fn on_net(app: &mut App, net: Net) -> Option<Msg> {
    match net {
        Net::Events(Ok(events)) => {
            if app.loading == Some(Loading::Events) {
                app.loading = None;
            }
            if let Some(id) = app.options.event_id.clone()
                && app.event.is_none()
            {
                match events.iter().find(|e| e.id == id) {
                    Some(event) => {
                        app.event = Some(event.clone());
                        app.join();
                    }
                    None => {
                        app.screen = Screen::Events;
                        app.warn(format!("There is no event {id:?}; pick one from the list."));
                    }
                }
            }
            app.event_cursor = app.event_cursor.min(events.len().saturating_sub(1));
            app.events = events;
        }
        Net::Events(Err(failure)) => {
            app.loading = None;
            app.screen = Screen::Events;
            app.warn(format!(
                "Could not load the events: {} Press r to retry.",
                failure.sentence()
            ));
        }
        Net::Solving(_) => app.loading = Some(Loading::SolvingPuzzle),
        Net::Joined(Ok(joined)) => {
            app.loading = None;
            app.queue = joined.status;
            app.queue_token = Some(joined.queue_token.clone());
            app.link = Link::Connecting;
            app.outbox.push(Command::WatchQueue {
                token: joined.queue_token,
            });
        }
        Net::Joined(Err(failure)) => {
            app.loading = None;
            app.warn(format!(
                "Could not join the queue: {} Press r to try again.",
                failure.sentence()
            ));
        }
        Net::Queue(update) => return on_queue_update(app, *update),
        Net::ShuffleChecked(check) => app.shuffle = Some(check),
        Net::Link(link) => {
            if app.screen == Screen::Queue {
                app.link = link;
            }
        }
        Net::QueueEnded(failure) => {
            app.queue_token = None;
            app.warn(format!(
                "You lost your place: {} Press r to join again.",
                failure.sentence()
            ));
        }
        Net::SeatMap(Ok(map)) => {
            app.loading = None;
            let fresh = SeatMap::from_proto(map);
            let after_version = fresh.version;
            app.map = Some(match &app.map {
                Some(old) => old.carry_over(fresh),
                None => fresh,
            });
            app.outbox.push(Command::WatchAvailability {
                event_id: app.event_id().to_string(),
                after_version,
            });
        }
        Net::SeatMap(Err(failure)) => {
            app.loading = None;
            app.warn(format!(
                "Could not load the seat map: {} Press r to retry.",
                failure.sentence()
            ));
        }
        Net::Availability(update) => {
            if update.resync {
                app.load_seat_map();
            } else if let Some(map) = &mut app.map {
                let lost = map.apply(&update);
                if !lost.is_empty() && app.screen == Screen::SeatMap {
                    let names: Vec<String> =
                        lost.iter().filter_map(|id| map.describe(*id)).collect();
                    app.warn(format!(
                        "Someone else just took {}; pick another seat.",
                        names.join(", ")
                    ));
                }
            }
        }
        Net::Held(Ok(hold)) => {
            app.loading = None;
            if let Some(map) = &mut app.map {
                map.picked.clear();
                map.yours = hold.seats.iter().map(|s| s.seat_id).collect();
            }
            app.hold = Some(hold);
            app.screen = Screen::Hold;
            app.tell("Seats held. Check the summary and press Enter to place the order.");
        }
        Net::Held(Err(failure)) => {
            app.loading = None;
            let text = match failure.code {
                tonic::Code::Aborted => format!("Too late: {}", failure.sentence()),
                tonic::Code::FailedPrecondition => format!("Not held: {}", failure.sentence()),
                _ => format!("Could not hold seats: {}", failure.sentence()),
            };
            if failure.code == tonic::Code::Aborted
                && let Some(map) = &mut app.map
            {
                map.picked.clear();
            }
            app.warn(text);
        }
        Net::Released(result) => {
            app.loading = None;
            match result {
                Ok(_) => app.back_to_seat_map("Hold released; the seats are back on sale.".into()),
                Err(failure) => app.warn(format!("Could not release: {}", failure.sentence())),
            }
            if let Some(notice) = &mut app.notice {
                notice.error = false;
            }
        }
        Net::CheckedOut(Ok(order)) => {
            app.loading = None;
            app.order = Some(order);
            app.screen = Screen::Pay;
            app.tell("Order placed. Enter your card and press Enter to pay.");
        }
        Net::CheckedOut(Err(failure)) => {
            app.loading = None;
            if failure.code == tonic::Code::FailedPrecondition {
                app.back_to_seat_map(format!("Your hold ended: {}", failure.sentence()));
            } else {
                app.warn(format!("Could not place the order: {}", failure.sentence()));
            }
        }
        Net::Paid(Ok(paid)) => {
            app.loading = None;
            let order = paid.order.unwrap_or_default();
            let declined = paid
                .payment
                .as_ref()
                .is_some_and(|p| p.state() == pb::PaymentState::Failed);
            app.last_payment = paid.payment;
            if order.state() == pb::OrderState::Paid {
                app.order = Some(order);
                app.screen = Screen::Tickets;
                app.tell("Paid. Enjoy the show!");
            } else if declined {
                app.pay_needs_new_key = true;
                let reason = app
                    .last_payment
                    .as_ref()
                    .map(|p| p.failure_reason.clone())
                    .unwrap_or_default();
                let left = app.seconds_until(order.expires_at_unix_ms);
                app.order = Some(order);
                app.warn(format!(
                    "Payment failed: {reason}. Seats kept {}: fix the card, Enter to retry.",
                    taquilla_proto::display::clock(left)
                ));
            } else {
                app.order = Some(order);
                app.warn("The payment is still being processed; press Enter to check again.");
            }
        }
        Net::Paid(Err(failure)) => {
            app.loading = None;
            if failure.code == tonic::Code::FailedPrecondition
                && failure.message.contains("expired")
            {
                app.back_to_seat_map(format!("Your order ended: {}", failure.sentence()));
            } else {
                app.warn(format!(
                    "Payment not taken: {} Press Enter to retry.",
                    failure.sentence()
                ));
            }
        }
    }
    None
}
