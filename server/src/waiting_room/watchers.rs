//! `Watch` streams: what a waiting fan hears, and what it costs the server to tell them.
//!
//! A stream is a future computed when polled: no task, no channel and no timer per watcher.
//! While nothing concerns it, it sleeps at no cost; it wakes for exactly four things:
//!
//! - its entry's own news (admitted with a pass, removed, expired) through the entry's
//!   [`Signal`], at once: the admission pass never waits for a cadence;
//! - a change of the sale itself (opened, paused, closed, sold out), for every watcher;
//! - an operator's alert;
//! - the room's look at its place ([`Inner::look`], on the admission step), on a cadence that
//!   grows with the distance from the front, only when the place moved visibly
//!   ([`crate::domain::push`]).
//!
//! There is no heartbeat message: the connection's liveness is HTTP/2's business (the server
//! and the clients send PING frames per connection, not per stream). A place is computed from
//! the room's replica when the message is built, so what is sent is true when it is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use taquilla_proto::v1 as pb;
use tokio::sync::{Notify, broadcast, watch};

use super::{EntryState, Inner, QueueStream, Room, View, WaitingRoom, lock};
use crate::domain::push::{SLOT_MS, stretched_look_interval, visible_move};
use crate::error::{ApiError, ApiResult};
use crate::shutdown::Shutdown;
use crate::store::EventRecord;

/// Wakes an entry's streams when something of its own changed. The version makes a wake that
/// lands between a stream's read of the entry and its wait count all the same.
#[derive(Debug, Default)]
pub(super) struct Signal {
    version: AtomicU64,
    notify: Notify,
}

impl Signal {
    pub(super) fn wake(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// One `Watch` stream's state.
struct Watcher {
    sale_changed: watch::Receiver<u64>,
    alerts: broadcast::Receiver<pb::Alert>,
    stopping: Shutdown,
    signal: Arc<Signal>,
    /// The signal's version when the entry was last read.
    seen: u64,
    last: Option<View>,
    first: bool,
    /// Whether the next step is to wait for something to happen.
    waiting: bool,
    finished: bool,
    guard: Detach,
}

/// Starts the entry's grace period when its last stream goes away (the client disconnected,
/// or the stream ended).
struct Detach {
    rooms: Arc<WaitingRoom>,
    room: Arc<Room>,
    id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let now = self.rooms.clock.now_ms();
        if let Ok(mut inner) = self.room.inner.lock() {
            inner.watchers = inner.watchers.saturating_sub(1);
            let mut detached = false;
            if let Some(entry) = inner.entries.get_mut(&self.id) {
                entry.watchers = entry.watchers.saturating_sub(1);
                if entry.watchers == 0 {
                    entry.detached_at_ms = Some(now);
                    detached = true;
                }
            }
            if detached {
                inner.detached.insert((now, self.id));
            }
        }
        // Redis hears of it with the node's next flush.
        if let Some(shared) = &self.rooms.shared {
            shared.note_stream(&self.room.event_id, format!("-{}:{now}", self.id));
        }
    }
}

impl Inner {
    /// The room's look at the places of the watchers that are due: a watcher whose place moved
    /// visibly since its last message is woken to send it, and every watched place is looked
    /// at again after [`stretched_look_interval`] of where it is now. Returns the watchers woken.
    pub(super) fn look(&mut self, now: i64) -> usize {
        let mut due = std::mem::take(&mut self.looks_due);
        self.looks.collect(now, &mut due);
        let mut woken = 0;
        for &(id, at) in &due {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if entry.look_due_ms != at {
                continue; // scheduled again since: this look is stale
            }
            if entry.watchers == 0
                || !matches!(entry.state, EntryState::Waiting | EntryState::Prequeue)
            {
                entry.look_due_ms = 0;
                continue;
            }
            let next = if at / SLOT_MS > now / SLOT_MS {
                at // collected early (after a pause longer than the wheel): not due yet
            } else if entry.state == EntryState::Waiting {
                let position = self.order.position(entry.tier, entry.seq);
                if visible_move(entry.shown_position, position) {
                    entry.signal.wake();
                    woken += 1;
                }
                now + stretched_look_interval(position, self.look_stretch)
            } else {
                // The pre-queue has no places; its opening wakes everyone anyway.
                now + stretched_look_interval(u64::MAX, self.look_stretch)
            };
            entry.look_due_ms = next;
            self.looks.schedule(id, next);
        }
        self.looks_due = due;
        woken
    }

    /// Puts a newly watched entry on the room's look schedule (if it is not on it already).
    fn schedule_look(&mut self, id: u64, now: i64) {
        if self.entries.get(&id).is_some_and(|e| e.look_due_ms == 0) {
            self.reschedule_look(id, now);
        }
    }

    /// Schedules the next look at a watched entry's place from `now` (replacing any other).
    pub(super) fn reschedule_look(&mut self, id: u64, now: i64) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.watchers == 0 {
            return;
        }
        let position = if entry.state == EntryState::Waiting {
            self.order.position(entry.tier, entry.seq)
        } else {
            u64::MAX
        };
        entry.look_due_ms = now + stretched_look_interval(position, self.look_stretch);
        self.looks.schedule(id, entry.look_due_ms);
    }
}

impl WaitingRoom {
    /// Streams an entry's status until it ends (removed, expired, closed) or the client goes.
    pub async fn watch(
        self: &Arc<Self>,
        event: &EventRecord,
        token: &str,
        stopping: Shutdown,
    ) -> ApiResult<QueueStream> {
        let (room, id, signal) = self.attach(event, token).await?;
        let watcher = Watcher {
            sale_changed: room.sale_changed.subscribe(),
            alerts: room.alerts.subscribe(),
            stopping,
            seen: signal.version(),
            signal,
            last: None,
            first: true,
            waiting: false,
            finished: false,
            guard: Detach {
                rooms: self.clone(),
                room,
                id,
            },
        };
        Ok(Box::pin(futures_util::stream::unfold(
            watcher,
            |mut w| async move {
                let rooms = w.guard.rooms.clone();
                let update = rooms.next_update(&mut w).await?;
                rooms.updates_sent.inc();
                Some((Ok(update), w))
            },
        )))
    }

    /// Counts a new watcher of the entry behind `token` (its grace period stops).
    pub(super) async fn attach(
        self: &Arc<Self>,
        event: &EventRecord,
        token: &str,
    ) -> ApiResult<(Arc<Room>, u64, Arc<Signal>)> {
        let (claims, id) = self.claims(token)?;
        let gone = || {
            ApiError::NotFound(
                "your place in this queue is gone (you left, or it was removed after the grace \
                 period); join again"
                    .into(),
            )
        };
        if claims.ev != event.id {
            return Err(ApiError::InvalidArgument(
                "the queue token is for another event".into(),
            ));
        }
        let room = match &self.shared {
            None => self.known_room(&claims.ev).ok_or_else(gone)?,
            Some(_) => {
                let room = self.room(event).await?;
                // The entry may be newer than this node's replica (joined through another
                // node a moment ago): wait for the log to bring it.
                let mut known = room.known.subscribe();
                let caught_up = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    known.wait_for(|k| *k >= id).await.is_ok()
                })
                .await;
                if caught_up != Ok(true) {
                    return Err(ApiError::Unavailable(
                        "this server is still catching up with the queue; retry in a moment".into(),
                    ));
                }
                room
            }
        };
        let now = self.clock.now_ms();
        let signal = {
            let mut inner = lock(&room)?;
            let entry = inner.entries.get_mut(&id).ok_or_else(gone)?;
            if entry.state == EntryState::Removed || entry.fp != claims.fp {
                return Err(gone());
            }
            entry.watchers += 1;
            let since = entry.detached_at_ms.take();
            let signal = entry.signal.clone();
            if let Some(since) = since {
                inner.detached.remove(&(since, id));
            }
            inner.watchers += 1;
            inner.schedule_look(id, now);
            signal
        };
        // Redis hears of the stream with the node's next flush (every pump step).
        if let Some(shared) = &self.shared {
            shared.note_stream(&event.id, format!("+{id}"));
        }
        Ok((room, id, signal))
    }

    /// Computes a watcher's next update, waiting as long as there is nothing to say.
    async fn next_update(&self, w: &mut Watcher) -> Option<pb::QueueUpdate> {
        if w.finished {
            return None;
        }
        loop {
            if w.waiting {
                let signal = w.signal.clone();
                let own = signal.notify.notified();
                tokio::pin!(own);
                // Registered before the version is compared: a wake after this point ends the
                // wait, one before it shows in the version.
                own.as_mut().enable();
                if signal.version() == w.seen {
                    enum Wake {
                        Own,
                        Alert(Option<pb::Alert>),
                        Stop,
                    }
                    let wake = tokio::select! {
                        _ = &mut own => Wake::Own,
                        _ = w.sale_changed.changed() => Wake::Own,
                        alert = w.alerts.recv() => Wake::Alert(alert.ok()),
                        () = w.stopping.started() => Wake::Stop,
                    };
                    let status = w.last.as_ref().map(|l| l.status.clone());
                    match wake {
                        Wake::Own => {}
                        Wake::Alert(None) => continue,
                        Wake::Alert(Some(alert)) => {
                            return Some(pb::QueueUpdate {
                                status,
                                alert: Some(alert),
                                server_time_unix_ms: self.clock.now_ms(),
                                ..Default::default()
                            });
                        }
                        Wake::Stop => {
                            w.finished = true;
                            return Some(pb::QueueUpdate {
                                status,
                                reconnect: true,
                                server_time_unix_ms: self.clock.now_ms(),
                                ..Default::default()
                            });
                        }
                    }
                }
            }
            w.seen = w.signal.version();
            let room = w.guard.room.clone();
            let (view, alert) = {
                let Ok(mut inner) = room.inner.lock() else {
                    w.finished = true;
                    return None;
                };
                let view = inner.view(&room.event_id, w.guard.id, self.clock.now_ms());
                if let (Some(view), Some(entry)) =
                    (view.as_ref(), inner.entries.get_mut(&w.guard.id))
                {
                    // What the room's next look compares with.
                    entry.shown_position = view.status.position;
                }
                (view, if w.first { inner.alert.clone() } else { None })
            };
            let Some(view) = view else {
                w.finished = true;
                return None;
            };
            let update = (w.last.as_ref() != Some(&view) || alert.is_some()).then(|| {
                let before = w.last.as_ref().map(|l| l.status.position);
                let reason = match before {
                    Some(before)
                        if before != view.status.position && view.status.position < before =>
                    {
                        pb::MoveReason::Admissions
                    }
                    Some(before) if before != view.status.position => pb::MoveReason::PriorityTier,
                    _ => pb::MoveReason::Unspecified,
                };
                pb::QueueUpdate {
                    status: Some(view.status.clone()),
                    move_reason: reason.into(),
                    alert,
                    admission_pass: view.pass.clone(),
                    heartbeat: false,
                    reconnect: false,
                    server_time_unix_ms: self.clock.now_ms(),
                    ..Default::default()
                }
            });
            w.first = false;
            let state = view.status.state;
            w.last = Some(view);
            w.waiting = true;
            let terminal = [
                pb::QueueState::Removed,
                pb::QueueState::Expired,
                pb::QueueState::Closed,
                pb::QueueState::SoldOut,
            ]
            .iter()
            .any(|s| *s as i32 == state);
            if terminal {
                w.finished = true;
                return update;
            }
            if update.is_some() {
                return update;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;
    use tokio_stream::StreamExt;

    use super::super::tests::{Backend, Under, event, room};
    use super::*;
    use crate::domain::SaleState;
    use crate::domain::clock::ManualClock;
    use crate::store::AdmissionSettings;

    fn valve(max_active: u32, rate_per_minute: u32) -> AdmissionSettings {
        AdmissionSettings {
            rate_per_minute,
            burst: rate_per_minute.div_ceil(60).max(1),
            max_active,
            pow_difficulty: 0,
            auto: false,
        }
    }

    /// The next message if one is ready now, without waiting.
    fn ready(stream: &mut QueueStream) -> Option<pb::QueueUpdate> {
        stream
            .next()
            .now_or_never()
            .flatten()
            .map(|m| m.expect("a message"))
    }

    /// The next message, waiting up to two seconds (the Redis replica applies the log a moment
    /// after the step).
    async fn next(stream: &mut QueueStream) -> pb::QueueUpdate {
        tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("a message within 2 s")
            .expect("the stream goes on")
            .expect("a message")
    }

    /// The fans join and open a stream each, whose first message says `state`.
    async fn watching(
        room: &Arc<WaitingRoom>,
        ev: &EventRecord,
        fans: &[String],
        stopping: &Shutdown,
        state: pb::QueueState,
    ) -> Vec<QueueStream> {
        let mut streams = Vec::new();
        for fan in fans {
            let token = room.join_as(ev, fan, "").await.expect("join").0;
            room.caught_up(&ev.id).await.expect("caught up");
            let mut stream = room
                .watch(ev, &token, stopping.clone())
                .await
                .expect("watch");
            let first = next(&mut stream).await;
            assert_eq!(first.status.expect("status").state(), state);
            streams.push(stream);
        }
        streams
    }

    async fn a_still_line_sends_nothing_and_an_admission_at_once(backend: Backend) {
        let clock = ManualClock::new(1_000_000);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::Open);
        ev.admission = valve(0, 60);
        let (_stop, stopping) = crate::shutdown::channel();
        let fans = ["first", "second", "third"].map(String::from);
        let mut streams = watching(&room, &ev, &fans, &stopping, pb::QueueState::Waiting).await;
        // Ten simulated minutes of a closed valve: nobody moves, so nobody hears anything.
        for _ in 0..600 {
            clock.advance_ms(1_000);
            room.pump().await;
        }
        room.caught_up(&ev.id).await.expect("caught up");
        for stream in &mut streams {
            assert!(ready(stream).is_none(), "a still line sends no heartbeat");
        }
        // One slot opens: the first fan's pass is on its stream after the step that made it.
        room.set_admission(&ev, valve(1, 60)).await.expect("valve");
        room.caught_up(&ev.id).await.expect("caught up");
        clock.advance_ms(100);
        room.pump().await;
        room.caught_up(&ev.id).await.expect("caught up");
        let admitted = ready(&mut streams[0]).expect("the admission is sent at once");
        assert_eq!(
            admitted.status.expect("status").state(),
            pb::QueueState::Admitted
        );
        assert!(admitted.admission_pass.is_some());
        // The others moved up one place each: near the front that is news, told at the next
        // look (half a second), and true when told.
        for _ in 0..6 {
            clock.advance_ms(100);
            room.pump().await;
            room.caught_up(&ev.id).await.expect("caught up");
        }
        for (stream, place) in streams[1..].iter_mut().zip([1, 2]) {
            let moved = next(stream).await;
            assert_eq!(moved.move_reason(), pb::MoveReason::Admissions);
            assert_eq!(moved.status.expect("status").position, place);
            assert!(ready(stream).is_none(), "one message per move");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_still_line_sends_nothing_and_an_admission_at_once_embedded() {
        a_still_line_sends_nothing_and_an_admission_at_once(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Redis at TAQUILLA_TEST_REDIS_URL; the suite runs it (cargo test -- --include-ignored)"]
    async fn a_still_line_sends_nothing_and_an_admission_at_once_on_redis() {
        a_still_line_sends_nothing_and_an_admission_at_once(Backend::Redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs a Redis Cluster at TAQUILLA_TEST_REDIS_CLUSTER_URL (.ci/redis-cluster); the suite runs it (cargo test -- --include-ignored)"]
    async fn a_still_line_sends_nothing_and_an_admission_at_once_on_a_redis_cluster() {
        a_still_line_sends_nothing_and_an_admission_at_once(Backend::Cluster).await;
    }

    async fn the_prequeue_hears_its_places_at_opening_and_its_moves_after(backend: Backend) {
        let clock = ManualClock::new(1_000_000);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::NotOpen);
        ev.admission = valve(1_000, 600);
        let (_stop, stopping) = crate::shutdown::channel();
        let fans: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let mut streams = watching(&room, &ev, &fans, &stopping, pb::QueueState::Prequeue).await;
        room.set_sale(
            &ev,
            SaleState::Open,
            crate::domain::SalePhase::General,
            0,
            &[],
        )
        .await
        .expect("open");
        ev.sale_state = SaleState::Open;
        let mut places = Vec::new();
        for stream in &mut streams {
            let opened = next(stream).await.status.expect("status");
            assert_eq!(opened.state(), pb::QueueState::Waiting, "told at opening");
            places.push(opened.position);
        }
        // Ten admissions a second: within a second everyone not admitted hears a move (the
        // pre-queue's rare looks were replaced at opening by their places' cadence).
        for _ in 0..10 {
            clock.advance_ms(100);
            room.pump().await;
            room.caught_up(&ev.id).await.expect("caught up");
        }
        clock.advance_ms(100);
        room.pump().await;
        for (stream, place) in streams.iter_mut().zip(places) {
            if place <= 10 {
                continue;
            }
            let moved = next(stream).await.status.expect("status");
            assert!(moved.position < place, "{place} → {}", moved.position);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_prequeue_hears_its_places_at_opening_and_its_moves_after_embedded() {
        the_prequeue_hears_its_places_at_opening_and_its_moves_after(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Redis at TAQUILLA_TEST_REDIS_URL; the suite runs it (cargo test -- --include-ignored)"]
    async fn the_prequeue_hears_its_places_at_opening_and_its_moves_after_on_redis() {
        the_prequeue_hears_its_places_at_opening_and_its_moves_after(Backend::Redis).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs a Redis Cluster at TAQUILLA_TEST_REDIS_CLUSTER_URL (.ci/redis-cluster); the suite runs it (cargo test -- --include-ignored)"]
    async fn the_prequeue_hears_its_places_at_opening_and_its_moves_after_on_a_redis_cluster() {
        the_prequeue_hears_its_places_at_opening_and_its_moves_after(Backend::Cluster).await;
    }

    /// 3,000 fans in line, watched at places 50 (`near`) and 3,000 (`far`), each stream past
    /// its first message, and the valve then opened at ten admissions a second.
    async fn a_line_of_3_000(
        clock: &ManualClock,
    ) -> (
        Under,
        EventRecord,
        crate::shutdown::ShutdownTrigger,
        QueueStream,
        QueueStream,
    ) {
        let room = room(Backend::Embedded, clock).await;
        let mut ev = event(SaleState::Open);
        ev.admission = valve(0, 600);
        let (stop, stopping) = crate::shutdown::channel();
        let mut tokens = Vec::new();
        for i in 0..3_000 {
            tokens.push(
                room.join_as(&ev, &format!("f{i}"), "")
                    .await
                    .expect("join")
                    .0,
            );
        }
        let mut near = room
            .watch(&ev, &tokens[49], stopping.clone())
            .await
            .expect("watch");
        let mut far = room
            .watch(&ev, &tokens[2_999], stopping.clone())
            .await
            .expect("watch");
        assert_eq!(next(&mut near).await.status.expect("status").position, 50);
        assert_eq!(next(&mut far).await.status.expect("status").position, 3_000);
        room.set_admission(&ev, valve(1_000_000, 600))
            .await
            .expect("valve");
        (room, ev, stop, near, far)
    }

    /// In a line that moves, a fan near the front hears every move and one far back hears a
    /// move about every 4 ms per place ahead of them, each place true when sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_farther_back_the_rarer_the_news_and_each_one_true() {
        let clock = ManualClock::new(1_000_000);
        let (room, ev, _stop, mut near, mut far) = a_line_of_3_000(&clock).await;
        let (mut near_heard, mut far_heard) = (Vec::new(), Vec::new());
        let mut near_admitted = false;
        for _ in 0..600 {
            clock.advance_ms(100);
            room.pump().await;
            for (stream, heard, fan) in [
                (&mut near, &mut near_heard, "f49"),
                (&mut far, &mut far_heard, "f2999"),
            ] {
                while let Some(update) = ready(stream) {
                    let status = update.status.expect("status");
                    if status.state() == pb::QueueState::Admitted {
                        near_admitted = true;
                        continue;
                    }
                    // True when sent: the room, asked now, says the same place.
                    let (_, now) = room.join_as(&ev, fan, "").await.expect("join");
                    assert_eq!(
                        status.position, now.position,
                        "{fan} was told a stale place"
                    );
                    heard.push(status.position);
                }
            }
        }
        assert!(
            near_admitted,
            "the fan at 50 is admitted within 60 s at 10/s"
        );
        // Place 50 admitted after 5 s: a look every half second, each one a move.
        assert!(
            (8..=11).contains(&near_heard.len()),
            "near the front: {near_heard:?}"
        );
        // Place 3,000 → 2,400 in a minute: looks every ~12 s (4 ms a place).
        assert!(
            (4..=6).contains(&far_heard.len()),
            "far back: {far_heard:?}"
        );
        assert!(far_heard.windows(2).all(|w| w[1] < w[0]), "{far_heard:?}");
        assert!(
            *far_heard.last().expect("heard") <= 2_500,
            "the last news is recent: {far_heard:?}"
        );
    }

    /// Buyers first: while the sales path is pressed, the room looks at places four times less
    /// often (a fan far back hears less), and an admission still reaches its stream at once;
    /// once the sales path has room, the usual cadence comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn places_are_told_less_often_while_buyers_need_the_machine() {
        use crate::domain::valve::SalesFeedback;
        let pressed = SalesFeedback {
            shed: 10,
            done: 500,
            busy_ms: 90_000.0,
            period_ms: 1_000.0,
            bound: 100,
        };
        let clock = ManualClock::new(1_000_000);
        let (room, _ev, _stop, mut near, mut far) = a_line_of_3_000(&clock).await;
        // Ten admissions a second for 60 simulated seconds, the sales path pressed throughout.
        let mut far_heard = 0;
        let mut near_admitted = false;
        for tick in 0..600 {
            if tick % 10 == 0 {
                room.tune_valves(&pressed).await;
            }
            clock.advance_ms(100);
            room.pump().await;
            while let Some(update) = ready(&mut near) {
                if update.status.expect("status").state() == pb::QueueState::Admitted {
                    near_admitted = true;
                }
            }
            if tick == 50 {
                // Place 50 at ten a second: admitted in the fifth second's steps, and told in
                // the step that admitted it, not at a look.
                assert!(near_admitted, "the admission reaches its stream at once");
            }
            while ready(&mut far).is_some() {
                far_heard += 1;
            }
        }
        assert_eq!(room.look_stretch.get(), 4);
        // Unpressed, place 3,000 → 2,400 heard 4 to 6 times a minute (the test above); with
        // looks four times apart (48 s at 3,000), once or twice.
        assert!(
            (1..=2).contains(&far_heard),
            "far back, pressed: {far_heard}"
        );
        // The sales path has room again: back halfway each second, then the usual cadence.
        for _ in 0..2 {
            room.tune_valves(&SalesFeedback::default()).await;
        }
        assert_eq!(room.look_stretch.get(), 1);
        let mut heard_after = 0;
        for _ in 0..600 {
            clock.advance_ms(100);
            room.pump().await;
            while ready(&mut far).is_some() {
                heard_after += 1;
            }
        }
        assert!(
            (3..=7).contains(&heard_after),
            "far back, with room again: {heard_after}"
        );
    }
}
