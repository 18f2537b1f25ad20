//! Taquilla's server: a virtual waiting room in front of a transactional seat inventory, served
//! over gRPC (package `taquilla.v1`).
//!
//! - [`config`]: command-line flags and environment, typed.
//! - [`app`]: builds the server from a config and runs it until shutdown.
//! - [`domain`]: pure rules (layouts, seat states, seat-map shape, clock); no IO.
//! - [`store`]: inventory and sales records in PostgreSQL or the embedded SQLite file.
//! - [`catalog`]: the in-memory view of events and seat-map shapes the RPCs read.
//! - [`availability`]: live seat maps, diffed per event and streamed as coalesced updates.
//! - [`sale_control`]: the one owner of a sale's state (open, pause, close, sold out).
//! - [`purchase`]: holds, checkout, payment (with reconciliation) and the sweeper.
//! - [`payments`]: the payment-provider adapter and the simulated provider.
//! - [`convert`]: the conversions between proto and domain types, for `rpc` and the two rooms
//!   that stream proto messages (`waiting_room`, `availability`).
//! - [`state`]: what the RPC handlers share (`AppState`), built by `app`.
//! - [`rpc`]: the three gRPC services: parse requests, call the services, convert the answers.
//! - [`auth`]: operator bearer tokens and the admission-pass guard of the sales RPCs.
//! - [`tokens`]: HMAC-signed queue tokens, admission passes and ticket codes.
//! - [`breaker`]: circuit breakers around the database and the payment provider.
//! - [`redis_link`]: the connection to Redis, one server or a Redis Cluster.
//! - [`limits`]: rate limits (token buckets, local or in Redis) and the abuse log.
//! - [`shed`]: load shedding: a bound on sales calls in progress, with an adaptive retry hint.
//! - [`shutdown`]: shutdown as a value every long-lived task and stream holds.
//! - [`metrics`]: Prometheus metrics and the admin HTTP endpoint.
//! - [`error`]: the API error type and its mapping to gRPC statuses.

pub mod app;
pub mod auth;
pub mod availability;
pub mod breaker;
pub mod catalog;
pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod payments;
pub mod purchase;
pub mod redis_link;
pub mod rpc;
pub mod sale_control;
pub mod shed;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tokens;
pub mod waiting_room;
