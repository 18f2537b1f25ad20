//! The waiting room's Redis keys, named: an event's (all on one Redis Cluster slot) and the
//! global bans.

/// An event's keys, named. Every one carries the `{ev:<id>}` hash tag, so a script that
/// touches them all stays on one Redis Cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventKeys {
    /// `<namespace>:{ev:<event id>}`
    base: String,
}

impl EventKeys {
    /// The keys as the scripts receive them (`KEYS[1]`…`KEYS[12]`), in this order.
    const SCRIPT_ORDER: [&'static str; 12] = [
        "meta", "fp", "ent", "q0", "q1", "q2", "pre", "active", "watching", "detached", "nodes",
        "log",
    ];

    pub(super) fn new(namespace: &str, event_id: &str) -> EventKeys {
        EventKeys {
            base: format!("{namespace}:{{ev:{event_id}}}"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.base)
    }

    /// Every key, in the order the scripts expect them.
    pub(super) fn in_script_order(&self) -> [String; 12] {
        Self::SCRIPT_ORDER.map(|name| self.key(name))
    }

    /// The event's log, which every node replays into its own copy of the line.
    pub(super) fn log(&self) -> String {
        self.key("log")
    }

    /// The nodes serving the event, by the time their lease ends.
    pub(super) fn nodes(&self) -> String {
        self.key("nodes")
    }

    /// The pre-queue, in join order.
    pub(super) fn prequeue(&self) -> String {
        self.key("pre")
    }

    /// The entries' records (`state|tier|seq|iat|fp` by entry id).
    pub(super) fn entries(&self) -> String {
        self.key("ent")
    }

    /// The pre-queue's manifest, written at opening (hex of its entries, join order).
    pub(super) fn manifest(&self) -> String {
        self.key("manifest")
    }

    /// The hash counting `node`'s Watch streams of the event.
    pub(super) fn node_streams(&self, node: &str) -> String {
        self.key(&format!("w:{node}"))
    }
}

/// Bans are global, not per event (never touched by a script, so no slot to share: on a
/// cluster the two sets are read and written per slot).
pub(super) fn ban_keys(namespace: &str) -> (String, String) {
    (
        format!("{namespace}:bans:fp"),
        format!("{namespace}:bans:ip"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_link::key_slot;

    #[test]
    fn every_key_of_an_event_is_on_one_cluster_slot() {
        for event in ["mad-1", "bcn-4", "sala-e2e", "x"] {
            let event_keys = EventKeys::new("tq", event);
            let mut keys = event_keys.in_script_order().to_vec();
            keys.push(event_keys.node_streams("00ff00ff00ff00ff"));
            let slot = key_slot(&keys[0]);
            assert_eq!(slot, key_slot(&format!("ev:{event}")));
            for key in &keys {
                assert_eq!(key_slot(key), slot, "{key}");
            }
        }
        assert_ne!(
            key_slot(&EventKeys::new("tq", "mad-1").log()),
            key_slot(&EventKeys::new("tq", "mad-2").log()),
            "events spread over slots"
        );
    }
}
