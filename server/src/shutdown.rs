//! Shutdown as a value. The server starts it once, when it begins to drain; every long-lived
//! task and stream holds a [`Shutdown`] and ends when it starts, or when the [`ShutdownTrigger`]
//! is gone (a server dropped without draining has stopped too).

use tokio::sync::watch;

/// Starts the shutdown of everything that holds one of its [`Shutdown`]s.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// One holder's view of the shutdown: cheap to clone, one per task or stream.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and the first of its shutdowns.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Starts the shutdown (again is a no-op).
    pub fn start(&self) {
        self.0.send_replace(true);
    }

    /// Another holder's view.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Resolves once the shutdown has started or its trigger is gone.
    pub async fn started(&mut self) {
        // An error means the trigger is gone, which is a shutdown too.
        let _ = self.0.wait_for(|started| *started).await;
    }

    /// Whether the shutdown has started.
    pub fn has_started(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_holder_sees_the_start_and_a_dropped_trigger_counts() {
        let (trigger, mut first) = channel();
        let mut second = trigger.subscribe();
        assert!(!first.has_started());
        let waiting = tokio::spawn(async move { second.started().await });
        trigger.start();
        first.started().await;
        assert!(first.has_started());
        waiting.await.expect("the second holder saw it");

        let (trigger, mut orphan) = channel();
        drop(trigger);
        // Resolves at once: a server dropped without draining has stopped.
        tokio::time::timeout(std::time::Duration::from_secs(1), orphan.started())
            .await
            .expect("a dropped trigger is a shutdown");
    }
}
