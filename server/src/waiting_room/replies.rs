//! The Redis scripts' answers, read by name.

use crate::domain::SaleState;
use crate::error::{ApiError, ApiResult};

/// What the join script (`lua/join.lua`) answered for one join, read by name: its seven
/// values are a kind, then what that kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JoinReply {
    /// Redis does not know the event (it restarted without persistence).
    Missing,
    /// The sale has ended: `CLOSED` or `SOLD_OUT`.
    Ended(SaleState),
    /// The fan must solve a proof-of-work challenge first.
    Challenge,
    /// The fan's place, new or already theirs.
    Placed(Placed),
}

/// A fan's place in line, as the join script answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    pub id: u64,
    /// The entry's state letter in the log: `P`, `W`, `A`, `S`, `R` or `X`.
    pub state: String,
    pub tier: usize,
    /// When the entry was made (ms), for its queue token.
    pub iat: i64,
    /// Place in line counted from the front, 0 when not waiting in a tier.
    pub position: u64,
    pub waiting_total: u64,
}

impl JoinReply {
    /// Reads one join's values; anything the script never answers is an error, not a zero.
    pub(super) fn parse(values: &[String]) -> ApiResult<JoinReply> {
        let word = |i: usize| values.get(i).map(String::as_str).unwrap_or_default();
        let malformed = || {
            ApiError::Internal(format!(
                "the join script answered {values:?}, which is malformed"
            ))
        };
        let number = |i: usize| word(i).parse::<u64>().map_err(|_| malformed());
        Ok(match word(0) {
            "missing" => JoinReply::Missing,
            "ended" => JoinReply::Ended(SaleState::from_db(word(1)).ok_or_else(malformed)?),
            "pow" => JoinReply::Challenge,
            "new" | "existing" => JoinReply::Placed(Placed {
                id: number(1)?,
                state: word(2).to_string(),
                tier: usize::try_from(number(3)?).map_err(|_| malformed())?,
                iat: word(4).parse().map_err(|_| malformed())?,
                position: number(5)?,
                waiting_total: number(6)?,
            }),
            _ => return Err(malformed()),
        })
    }
}

/// What the sale script (`lua/sale.lua`) answered when asked to change an event's sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SaleReply {
    /// The change is made.
    Changed,
    /// The sale is being opened from NOT_OPEN: the open script must shuffle the pre-queue.
    NeedsOpen,
    /// Redis does not know the event (it restarted without persistence).
    Missing,
}

impl SaleReply {
    pub(super) fn parse(answer: &str) -> ApiResult<SaleReply> {
        match answer {
            "ok" => Ok(SaleReply::Changed),
            "needs_open" => Ok(SaleReply::NeedsOpen),
            "missing" => Ok(SaleReply::Missing),
            other => Err(ApiError::Internal(format!(
                "the sale script answered {other:?}, which is malformed"
            ))),
        }
    }
}

/// What the open script (`lua/open.lua`) answered when asked to open a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OpenReply {
    /// The pre-queue is shuffled into the line, starting at this sequence number.
    Opened { base: u64 },
    /// A join landed after the pre-queue was read: read it again.
    Stale,
    /// The sale is no longer NOT_OPEN (another node opened it, or it was closed), or Redis
    /// does not know the event (`missing`): there is nothing to open.
    NotPending(String),
}

impl OpenReply {
    pub(super) fn parse(values: &[String]) -> ApiResult<OpenReply> {
        let malformed = || {
            ApiError::Internal(format!(
                "the open script answered {values:?}, which is malformed"
            ))
        };
        match values {
            [kind, base] if kind == "ok" => Ok(OpenReply::Opened {
                base: base.parse().map_err(|_| malformed())?,
            }),
            [kind] if kind == "stale" => Ok(OpenReply::Stale),
            [kind, state] if kind == "state" => Ok(OpenReply::NotPending(state.clone())),
            _ => Err(malformed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_replies_are_read_by_name_and_malformed_ones_refused() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            JoinReply::parse(&words(&["existing", "42", "W", "1", "1700", "9", "300"])).ok(),
            Some(JoinReply::Placed(Placed {
                id: 42,
                state: "W".into(),
                tier: 1,
                iat: 1700,
                position: 9,
                waiting_total: 300,
            }))
        );
        assert_eq!(
            JoinReply::parse(&words(&["missing"])).ok(),
            Some(JoinReply::Missing)
        );
        assert_eq!(
            JoinReply::parse(&words(&["ended", "SOLD_OUT", "", "", "", "", ""])).ok(),
            Some(JoinReply::Ended(SaleState::SoldOut))
        );
        assert_eq!(
            JoinReply::parse(&words(&["pow", "", "", "", "", "", ""])).ok(),
            Some(JoinReply::Challenge)
        );
        for bad in [
            &["new", "x", "W", "1", "1700", "9", "300"][..],
            &["new", "42", "W", "1", "1700", "9"],
            &["ended", "LATER"],
            &["maybe"],
            &[],
        ] {
            assert!(JoinReply::parse(&words(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sale_and_open_replies_are_read_by_name_and_malformed_ones_refused() {
        assert_eq!(SaleReply::parse("ok").ok(), Some(SaleReply::Changed));
        assert_eq!(
            SaleReply::parse("needs_open").ok(),
            Some(SaleReply::NeedsOpen)
        );
        assert_eq!(SaleReply::parse("missing").ok(), Some(SaleReply::Missing));
        assert!(SaleReply::parse("").is_err());
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            OpenReply::parse(&words(&["ok", "12"])).ok(),
            Some(OpenReply::Opened { base: 12 })
        );
        assert_eq!(
            OpenReply::parse(&words(&["stale"])).ok(),
            Some(OpenReply::Stale)
        );
        assert_eq!(
            OpenReply::parse(&words(&["state", "OPEN"])).ok(),
            Some(OpenReply::NotPending("OPEN".into()))
        );
        for bad in [&["ok"][..], &["ok", "x"], &["stale", "1"], &["state"], &[]] {
            assert!(OpenReply::parse(&words(bad)).is_err(), "{bad:?}");
        }
    }
}
