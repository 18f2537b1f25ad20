//! One channel for everything that happens to the app (keys and resizes from the terminal,
//! clock ticks, answers from network tasks) and the loop that drains it: update, hand the
//! queued commands to the network, draw.

use std::time::Duration;

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::app::{App, Msg, update};
use crate::net::{Network, now_ms};

/// How often the clock ticks (countdowns show whole seconds).
const TICK: Duration = Duration::from_millis(250);

/// Reads the terminal on a plain thread (crossterm's reads block) and forwards keys and
/// resizes until the app's channel closes.
pub fn spawn_terminal_reader(tx: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Msg::Key(key),
                Ok(Event::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
}

/// Sends a tick every [`TICK`] until the channel closes.
pub fn spawn_ticker(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if tx.send(Msg::Tick(now_ms())).is_err() {
                break;
            }
        }
    });
}

/// Runs the app until the fan quits. Messages that arrive together are applied together and
/// drawn once.
pub async fn run(
    terminal: &mut DefaultTerminal,
    mut app: App,
    mut network: Network,
    mut rx: UnboundedReceiver<Msg>,
) -> std::io::Result<App> {
    loop {
        for command in app.take_commands() {
            network.run(command);
        }
        if app.quit {
            return Ok(app);
        }
        terminal.draw(|frame| crate::ui::draw(frame, &app))?;
        let Some(first) = rx.recv().await else {
            return Ok(app);
        };
        let mut next = Some(first);
        while let Some(msg) = next {
            let mut follow = update(&mut app, msg);
            while let Some(msg) = follow {
                follow = update(&mut app, msg);
            }
            next = rx.try_recv().ok();
        }
    }
}
