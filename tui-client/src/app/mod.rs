//! The fan's app as state and one `update` function, the Elm way: every key, tick and network
//! answer is a [`Msg`]; `update` changes the [`App`] and queues [`Command`]s (network work) that
//! the runtime hands to background tasks. Nothing here waits or does IO, so every screen and
//! every transition is tested without a terminal or a server.

use ratatui::crossterm::event::KeyEvent;
use taquilla_proto::v1 as pb;

use crate::seatmap::SeatMap;

mod update;

pub use update::update;

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
    ShuffleChecked(ShuffleCheck),
}

/// The check of the pre-queue's shuffle, for a fan who was in it when the sale opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShuffleCheck {
    Checking,
    /// The proof holds and gives the fan the place they were shown at opening.
    Verified {
        position: u64,
    },
    /// Why the fan's place could not be verified.
    Failed(String),
}

/// Checks a downloaded proof (`GetShuffleProof`'s messages) for the fan holding `token`: the
/// commitment is the one shown in the pre-queue, the proof holds, the fan's line is in the
/// manifest, and it puts them at the place the app showed right after opening.
pub fn check_shuffle(
    chunks: Vec<pb::ShuffleProofChunk>,
    token: &str,
    shown_position: u64,
    commitment_seen: &str,
) -> ShuffleCheck {
    use taquilla_proto::fairness;
    let downloaded = match fairness::assemble(chunks) {
        Ok(downloaded) => downloaded,
        Err(why) => return ShuffleCheck::Failed(why),
    };
    if downloaded.header.commitment != commitment_seen {
        return ShuffleCheck::Failed(format!(
            "the server now shows the commitment {}, not {} as before opening",
            downloaded.header.commitment, commitment_seen
        ));
    }
    let Some(proof) = downloaded.proof else {
        return ShuffleCheck::Failed("the server has not revealed the seed yet".into());
    };
    if let Err(why) = fairness::verify(&proof) {
        return ShuffleCheck::Failed(why.to_string());
    }
    match fairness::find_fan(&proof, token) {
        Some((_, position)) if position == shown_position => ShuffleCheck::Verified { position },
        Some((_, position)) => ShuffleCheck::Failed(format!(
            "the shuffle puts you at place {position}, but the room showed {shown_position}"
        )),
        None => ShuffleCheck::Failed("your place is not in the published manifest".into()),
    }
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
    /// Downloads the shuffle's proof and checks the fan's place in it ([`check_shuffle`]).
    CheckShuffle {
        event_id: String,
        token: String,
        shown_position: u64,
        commitment_seen: String,
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
    /// The shuffle's commitment, as shown while in the pre-queue.
    pub commitment_seen: Option<String>,
    /// The check of the fan's place after the pre-queue was shuffled.
    pub shuffle: Option<ShuffleCheck>,
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
    /// Lines scrolled on the tickets screen (each ticket's QR code takes about 40 lines).
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
            commitment_seen: None,
            shuffle: None,
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
