//! The fan's app as state and one `update` function, the Elm way: every key, tick and network
//! answer is a [`Msg`]; `update` changes the [`App`] and queues [`Command`]s (network work) that
//! the runtime hands to background tasks. Nothing here waits or does IO, so every screen and
//! every transition is tested without a terminal or a server.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use taquilla_proto::v1 as pb;

use crate::seatmap::SeatMap;

/// Which screen the fan is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Choosing an event.
    Events,
    /// In the waiting room.
    Queue,
    /// Admitted: choosing seats.
    SeatMap,
    /// Seats held: the summary before checkout.
    Hold,
    /// Order placed: paying.
    Pay,
    /// Paid: the tickets.
    Tickets,
}

/// The state of the queue's live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    /// Dropped; the next attempt is at `retry_at_ms` (local clock).
    Lost {
        attempt: u32,
        retry_at_ms: i64,
        reason: String,
    },
}

/// What the app is waiting for from the server, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    Events,
    Joining,
    SolvingPuzzle,
    SeatMap,
    Holding,
    Releasing,
    CheckingOut,
    Paying,
}

impl Loading {
    pub fn label(self) -> &'static str {
        match self {
            Loading::Events => "Loading events...",
            Loading::Joining => "Joining the queue...",
            Loading::SolvingPuzzle => "Solving the entry puzzle...",
            Loading::SeatMap => "Loading the seat map...",
            Loading::Holding => "Holding seats...",
            Loading::Releasing => "Releasing your hold...",
            Loading::CheckingOut => "Placing your order...",
            Loading::Paying => "Paying...",
        }
    }
}

/// A line for the fan at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// A failed call, as the server explained it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: tonic::Code,
    pub message: String,
    /// How long the server asked us to wait before retrying, when it said.
    pub retry_after: Option<std::time::Duration>,
}

impl Failure {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The server's sentence with its first letter raised, ending in a full stop.
    pub fn sentence(&self) -> String {
        let mut text = self.message.trim().to_string();
        let first_word = text.split_whitespace().next().unwrap_or_default();
        let is_identifier = first_word.contains(['_', '"', '.']);
        if let Some(first) = text.get(..1).filter(|_| !is_identifier) {
            text.replace_range(..1, &first.to_uppercase());
        }
        if !text.ends_with(['.', '!', '?']) {
            text.push('.');
        }
        text
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        let message = match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown if status.message().is_empty() => {
                "the server cannot be reached".to_string()
            }
            _ => status.message().to_string(),
        };
        let retry_after = taquilla_proto::retry_after(&status);
        Failure {
            retry_after,
            ..Failure::new(status.code(), message)
        }
    }
}

/// Answers from background network tasks.
#[derive(Debug, Clone)]
pub enum Net {
    Events(Result<Vec<pb::Event>, Failure>),
    /// The join needs a proof of work of this many bits; the task is solving it.
    Solving(u32),
    Joined(Result<pb::JoinResponse, Failure>),
    Queue(Box<pb::QueueUpdate>),
    Link(Link),
    /// The queue stream ended for good (the token is no longer valid).
    QueueEnded(Failure),
    SeatMap(Result<pb::SeatMap, Failure>),
    Availability(pb::AvailabilityUpdate),
    Held(Result<pb::Hold, Failure>),
    Released(Result<u32, Failure>),
    CheckedOut(Result<pb::Order, Failure>),
    Paid(Result<pb::PayResponse, Failure>),
}

/// Everything that can happen to the app.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// The local clock, in Unix milliseconds.
    Tick(i64),
    Resize,
    Net(Box<Net>),
}

/// What to hold: the picked seats or the best N in a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Seats(Vec<u32>),
    Best { section_id: String, quantity: u32 },
}

/// Network work for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    LoadEvents,
    Join {
        event_id: String,
        fingerprint: String,
        presale_code: String,
    },
    /// Streams the queue for `token`, reconnecting with backoff until stopped.
    WatchQueue {
        token: String,
    },
    StopQueueWatch,
    LoadSeatMap {
        event_id: String,
    },
    WatchAvailability {
        event_id: String,
        after_version: u64,
    },
    Hold {
        pass: String,
        event_id: String,
        selection: Selection,
    },
    Release {
        pass: String,
        hold_id: String,
    },
    Checkout {
        pass: String,
        hold_id: String,
        idempotency_key: String,
    },
    Pay {
        pass: String,
        order_id: String,
        idempotency_key: String,
        card: pb::Card,
    },
}

/// The payment form's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardField {
    Number,
    Expiry,
    Cvc,
}

/// The card being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardForm {
    pub number: String,
    pub expiry: String,
    pub cvc: String,
    pub field: CardField,
}

impl CardForm {
    /// The test card that the simulated provider always authorizes, valid for a few years.
    fn test_card(now_ms: i64) -> CardForm {
        let year = 1970 + now_ms.max(0) / 31_556_952_000;
        CardForm {
            number: "4242 4242 4242 4242".into(),
            expiry: format!("12/{:02}", (year + 3) % 100),
            cvc: "123".into(),
            field: CardField::Number,
        }
    }

    fn input(&mut self) -> &mut String {
        match self.field {
            CardField::Number => &mut self.number,
            CardField::Expiry => &mut self.expiry,
            CardField::Cvc => &mut self.cvc,
        }
    }

    fn type_char(&mut self, c: char) {
        let limit = match self.field {
            CardField::Number => 23,
            CardField::Expiry => 5,
            CardField::Cvc => 4,
        };
        let allowed =
            c.is_ascii_digit() || c == ' ' || (c == '/' && self.field == CardField::Expiry);
        if allowed && self.input().len() < limit {
            self.input().push(c);
        }
    }

    fn next_field(&mut self) {
        self.field = match self.field {
            CardField::Number => CardField::Expiry,
            CardField::Expiry => CardField::Cvc,
            CardField::Cvc => CardField::Number,
        };
    }

    /// The card as the API takes it, or what is wrong with the form.
    pub fn to_card(&self) -> Result<pb::Card, String> {
        let number: String = self.number.chars().filter(char::is_ascii_digit).collect();
        if !(12..=19).contains(&number.len()) {
            return Err("The card number needs 12 to 19 digits.".into());
        }
        let (month, year) = self
            .expiry
            .split_once('/')
            .and_then(|(m, y)| Some((m.trim().parse::<u32>().ok()?, y.trim().parse::<u32>().ok()?)))
            .filter(|(m, _)| (1..=12).contains(m))
            .ok_or("Write the expiry date as MM/YY, e.g. 12/29.")?;
        let year = if year < 100 { 2000 + year } else { year };
        if !(3..=4).contains(&self.cvc.trim().len()) {
            return Err("The security code has 3 or 4 digits.".into());
        }
        Ok(pb::Card {
            number,
            exp_month: month,
            exp_year: year,
            cvc: self.cvc.trim().into(),
        })
    }
}

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub event_id: Option<String>,
    pub fingerprint: String,
    pub presale_code: String,
    /// Prefix of this session's idempotency keys; unique per run.
    pub session: String,
}

/// The whole state of the fan's app.
#[derive(Debug, Clone)]
pub struct App {
    pub options: Options,
    pub screen: Screen,
    pub now_ms: i64,
    /// Server clock minus local clock, learnt from the queue stream, for countdowns.
    pub server_offset_ms: i64,
    pub events: Vec<pb::Event>,
    pub event_cursor: usize,
    pub event: Option<pb::Event>,
    pub queue_token: Option<String>,
    pub queue: Option<pb::QueueStatus>,
    /// Why the position last changed, for the fan.
    pub moved: Option<String>,
    pub alert: Option<pb::Alert>,
    pub link: Link,
    pub pass: Option<pb::AdmissionPass>,
    pub map: Option<SeatMap>,
    pub quantity: u32,
    pub hold: Option<pb::Hold>,
    pub order: Option<pb::Order>,
    pub card: CardForm,
    pub pay_attempts: u32,
    /// Whether the next Pay is a new attempt (new idempotency key) rather than a retry of the
    /// last one, whose answer may have been lost: only after a decline.
    pub pay_needs_new_key: bool,
    pub last_payment: Option<pb::Payment>,
    pub loading: Option<Loading>,
    pub notice: Option<Notice>,
    pub show_help: bool,
    /// Lines scrolled on the tickets screen (four tickets do not fit in 24 lines).
    pub scroll: u16,
    pub quit: bool,
    outbox: Vec<Command>,
}

impl App {
    /// The app at start: joining `options.event_id` when given, else loading the event list.
    pub fn new(options: Options, now_ms: i64) -> App {
        let mut app = App {
            options,
            screen: Screen::Events,
            now_ms,
            server_offset_ms: 0,
            events: Vec::new(),
            event_cursor: 0,
            event: None,
            queue_token: None,
            queue: None,
            moved: None,
            alert: None,
            link: Link::Connecting,
            pass: None,
            map: None,
            quantity: 2,
            hold: None,
            order: None,
            card: CardForm::test_card(now_ms),
            pay_attempts: 0,
            pay_needs_new_key: true,
            last_payment: None,
            loading: Some(Loading::Events),
            notice: None,
            show_help: false,
            scroll: 0,
            quit: false,
            outbox: vec![Command::LoadEvents],
        };
        if app.options.event_id.is_some() {
            app.screen = Screen::Queue;
        }
        app
    }

    /// Takes the network work queued by updates so far.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.outbox)
    }

    /// Now on the server's clock.
    pub fn server_now_ms(&self) -> i64 {
        self.now_ms + self.server_offset_ms
    }

    /// Seconds left until a server-clock deadline.
    pub fn seconds_until(&self, deadline_ms: i64) -> i64 {
        (deadline_ms - self.server_now_ms())
            .div_euclid(1_000)
            .max(0)
    }

    pub fn event_id(&self) -> &str {
        self.event
            .as_ref()
            .map(|e| e.id.as_str())
            .unwrap_or_else(|| self.options.event_id.as_deref().unwrap_or_default())
    }

    /// Most tickets this fan may buy for the chosen event.
    pub fn cap(&self) -> u32 {
        self.event
            .as_ref()
            .map(|e| e.max_tickets_per_fan)
            .filter(|&cap| cap > 0)
            .unwrap_or(4)
    }

    fn tell(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// The idempotency key of attempt `attempt` of `what` on `id` in this session: the same
    /// inputs give the same key (a retry after a lost answer), and it always fits the API's
    /// 8–64 characters of `[A-Za-z0-9_-]` whatever the ids look like.
    pub fn idempotency_key(&self, what: &str, id: &str, attempt: u32) -> String {
        let digest =
            taquilla_proto::signed::sha256_hex(&format!("{}\n{what}\n{id}", self.options.session));
        format!("{what}-{}-{attempt}", &digest[..32])
    }

    fn pass_token(&self) -> String {
        self.pass
            .as_ref()
            .map(|p| p.token.clone())
            .unwrap_or_default()
    }

    fn join(&mut self) {
        let event_id = self.event_id().to_string();
        if event_id.is_empty() {
            return;
        }
        self.screen = Screen::Queue;
        self.loading = Some(Loading::Joining);
        self.outbox.push(Command::Join {
            event_id,
            fingerprint: self.options.fingerprint.clone(),
            presale_code: self.options.presale_code.clone(),
        });
    }

    fn load_seat_map(&mut self) {
        self.loading = Some(Loading::SeatMap);
        self.outbox.push(Command::LoadSeatMap {
            event_id: self.event_id().to_string(),
        });
    }

    /// Back to choosing seats after a hold or order ended without a sale.
    fn back_to_seat_map(&mut self, why: String) {
        if let Some(map) = &mut self.map {
            map.yours.clear();
        }
        self.hold = None;
        self.order = None;
        self.last_payment = None;
        self.screen = Screen::SeatMap;
        self.warn(why);
    }
}

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
            KeyCode::Down | KeyCode::Char('j') => app.scroll = app.scroll.saturating_add(1).min(40),
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
