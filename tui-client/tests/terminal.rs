//! End to end in a real terminal: the real `taquilla-fan` binary runs in a tmux pane at 80×24
//! against a real server started by the test, and is driven by keys like a person would:
//! join → admitted → best available → order → pay → tickets on screen → q. The sale is then
//! checked from the operator's side: one paid order with the seats shown, and a clean audit.

mod common;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::server::{EVENT, TestServer};
use taquilla_proto::v1 as pb;

/// A tmux server of the test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let ok = Process::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "this test drives the app in tmux; install it (Debian: apt-get install tmux)"
        );
        Tmux {
            socket: format!("taquilla-e2e-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Process::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "fan"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "fan"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Scrolls down (two lines at a time, at most 150) until the screen shows `text`.
    async fn scroll_to(&self, text: &str) -> String {
        let mut screen = self.screen();
        for _ in 0..75 {
            if screen.contains(text) {
                return screen;
            }
            self.keys(&["Down", "Down"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
            screen = self.screen();
        }
        assert!(
            screen.contains(text),
            "scrolled to the end without {text:?}:\n{screen}"
        );
        screen
    }

    /// Waits until the screen shows `text`, failing with the screen after `timeout`.
    async fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "the screen never showed {text:?} within {timeout:?}; it shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Process::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_buys_two_tickets_in_the_terminal() {
    let mut server = TestServer::start().await;
    server.open_sale().await;
    let addr = server.addr;
    let tmux = Tmux::new();
    let fan = format!(
        "{} --server http://{addr} --event {EVENT} --fingerprint fp-e2e; echo \"taquilla-fan exited with $?\"; sleep 60",
        env!("CARGO_BIN_EXE_taquilla-fan")
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "fan",
        "-x",
        "80",
        "-y",
        "24",
        &fan,
    ]);

    let wait = Duration::from_secs(30);
    let screen = tmux.wait_for("It's your turn", wait).await;
    assert!(screen.contains("Block A"), "{screen}");
    // Two seats, best available in the section under the cursor (Block A).
    tmux.keys(&["2", "b"]);
    let screen = tmux.wait_for("Held for", wait).await;
    assert!(screen.contains("Booking fees"), "{screen}");
    assert!(
        screen.contains("115.00 EUR"),
        "two seats at 55.00 plus 2.50 each: {screen}"
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("Pay within", wait).await;
    // The form is filled with the test card that pays.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Your tickets", wait).await;
    assert!(screen.contains("Ticket 1: Block A row A"), "{screen}");
    assert!(screen.contains("Ticket 2: Block A row A"), "{screen}");

    // The operator sees the same sale.
    let orders = server
        .ops
        .list_orders(pb::ListOrdersRequest {
            event_id: EVENT.into(),
            ..Default::default()
        })
        .await
        .expect("orders")
        .into_inner()
        .orders;
    assert_eq!(orders.len(), 1, "{orders:?}");
    let order = &orders[0];
    assert_eq!(order.state(), pb::OrderState::Paid);
    assert_eq!(order.tickets.len(), 2);
    // Each ticket's code is drawn as a QR code (upper half blocks, dark on light) with the
    // code's start and the ticket id under it; scroll down to each.
    assert!(
        screen.contains(&"▀".repeat(40)),
        "a QR code on screen:\n{screen}"
    );
    for (n, ticket) in order.tickets.iter().enumerate() {
        let code_start: String = ticket.code.chars().take(30).collect();
        if n > 0 {
            tmux.scroll_to(&format!("Ticket {}: Block A row A", n + 1))
                .await;
        }
        tmux.scroll_to(&code_start).await;
        let screen = tmux.scroll_to(&ticket.ticket_id).await;
        assert!(screen.contains(&code_start), "{screen}");
    }
    let audit = server
        .ops
        .audit(pb::AuditRequest {
            event_id: EVENT.into(),
        })
        .await
        .expect("audit")
        .into_inner();
    assert!(audit.ok, "{audit:?}");

    // q quits cleanly: exit code 0 and the terminal back to the shell's screen.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("taquilla-fan exited with", wait).await;
    assert!(screen.contains("taquilla-fan exited with 0"), "{screen}");
    assert!(
        !screen.contains("Your tickets"),
        "the alternate screen is gone: {screen}"
    );
}
