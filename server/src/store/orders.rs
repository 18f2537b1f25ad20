//! Orders: checkout of a hold, reading orders with their seats, payments and tickets, listing
//! them, paid totals, and refunds.

use std::collections::HashMap;

use sqlx::{Database, FromRow};

use super::fast::fast_deadline;
use super::holds::{HOLD_COLUMNS, HoldRow, parse_ids};
use super::payments::{PAYMENT_COLUMNS, PaymentRow, payment_record};
use super::sql::{
    CountOnly, SEAT_INFO, SeatInfoRow, SqlStore, abandon, placeholders, seat_info, sql_impl, u32_of,
};
use super::{FastStep, HoldState, PaymentRecord, SeatInfo, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    PendingPayment,
    Paid,
    Expired,
    Cancelled,
    Refunded,
}

impl OrderState {
    pub fn as_db(self) -> &'static str {
        match self {
            OrderState::PendingPayment => "PENDING_PAYMENT",
            OrderState::Paid => "PAID",
            OrderState::Expired => "EXPIRED",
            OrderState::Cancelled => "CANCELLED",
            OrderState::Refunded => "REFUNDED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PENDING_PAYMENT" => Some(OrderState::PendingPayment),
            "PAID" => Some(OrderState::Paid),
            "EXPIRED" => Some(OrderState::Expired),
            "CANCELLED" => Some(OrderState::Cancelled),
            "REFUNDED" => Some(OrderState::Refunded),
            _ => None,
        }
    }
}

/// An order to create from a hold.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: String,
    pub hold_id: String,
    /// The fan checking out: the hold must be theirs.
    pub fan_id: String,
    /// The event the caller's pass admits to (the hold must be in it); `None` for an operator.
    /// The order's fee and currency are the hold's event's.
    pub event_id: Option<String>,
    pub checkout_key: String,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// What became of a checkout.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutOutcome {
    Created(OrderRecord),
    /// The key (or the hold) was already checked out: the first result.
    Existing(OrderRecord),
    HoldNotFound,
    HoldNotActive(HoldState),
    HoldExpired,
    KeyUsedForOtherHold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Valid,
    Refunded,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord {
    pub id: String,
    pub seat_id: u32,
    pub code: String,
    pub state: TicketState,
    pub issued_at_ms: i64,
}

/// A ticket to issue.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub id: String,
    pub seat_id: u32,
    pub code: String,
}

/// An order with everything attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: String,
    pub event_id: String,
    pub fan_id: String,
    pub hold_id: String,
    pub state: OrderState,
    pub subtotal_minor: i64,
    pub fees_minor: i64,
    pub total_minor: i64,
    pub currency: String,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
    pub paid_at_ms: Option<i64>,
    pub items: Vec<SeatInfo>,
    pub payments: Vec<PaymentRecord>,
    pub tickets: Vec<TicketRecord>,
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundOutcome {
    Refunded(Box<OrderRecord>),
    NotPaid(OrderState),
    NotFound,
}

/// A seat of a new order, with the order's event and its fee and currency
/// (`taquilla_checkout`).
#[derive(Debug, FromRow)]
pub(crate) struct CheckoutRow {
    pub(super) event_id: String,
    pub(super) fee: i64,
    pub(super) currency: String,
    #[sqlx(flatten)]
    pub(super) seat: SeatInfoRow,
}

#[derive(Debug, FromRow)]
pub(crate) struct OrderRow {
    pub(super) id: String,
    pub(super) event_id: String,
    pub(super) fan_id: String,
    pub(super) hold_id: String,
    pub(super) state: String,
    pub(super) subtotal: i64,
    pub(super) fees: i64,
    pub(super) total: i64,
    pub(super) currency: String,
    pub(super) expires_at: i64,
    pub(super) created_at: i64,
    pub(super) paid_at: Option<i64>,
}

#[derive(Debug, FromRow)]
pub(crate) struct TicketRow {
    pub(super) id: String,
    pub(super) seat_id: i64,
    pub(super) code: String,
    pub(super) state: String,
    pub(super) issued_at: i64,
}

/// A seat of one of several orders.
#[derive(Debug, FromRow)]
pub(crate) struct OrderItemRow {
    pub(super) order_id: String,
    #[sqlx(flatten)]
    pub(super) seat: SeatInfoRow,
}

/// A ticket of one of several orders.
#[derive(Debug, FromRow)]
pub(crate) struct OrderTicketRow {
    pub(super) order_id: String,
    #[sqlx(flatten)]
    pub(super) ticket: TicketRow,
}

pub(super) const ORDER_COLUMNS: &str = "id, event_id, fan_id, hold_id, state, subtotal, fees, total, currency, \
     expires_at, created_at, paid_at";

pub(super) fn ticket_record(row: TicketRow) -> Result<TicketRecord, StoreError> {
    Ok(TicketRecord {
        seat_id: u32_of("seat id", row.seat_id)?,
        state: match row.state.as_str() {
            "VALID" => TicketState::Valid,
            "REFUNDED" => TicketState::Refunded,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown ticket state {other:?}"
                )));
            }
        },
        id: row.id,
        code: row.code,
        issued_at_ms: row.issued_at,
    })
}

pub(super) fn order_record(
    row: OrderRow,
    items: Vec<SeatInfo>,
    payments: Vec<PaymentRecord>,
    tickets: Vec<TicketRecord>,
) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        state: OrderState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown order state {:?}", row.state)))?,
        id: row.id,
        event_id: row.event_id,
        fan_id: row.fan_id,
        hold_id: row.hold_id,
        subtotal_minor: row.subtotal,
        fees_minor: row.fees,
        total_minor: row.total,
        currency: row.currency,
        expires_at_ms: row.expires_at,
        created_at_ms: row.created_at,
        paid_at_ms: row.paid_at,
        items,
        payments,
        tickets,
    })
}

/// What an order takes from its event.
#[derive(Debug, FromRow)]
pub(super) struct EventFees {
    pub(super) event_id: String,
    pub(super) fee_per_ticket: i64,
    pub(super) currency: String,
}

/// Whether the caller of `order` may act in `event_id` (a pass admits to one event).
pub(super) fn in_event(order: &NewOrder, event_id: &str) -> bool {
    order.event_id.as_deref().is_none_or(|e| e == event_id)
}

/// The record of an order just created from a hold in `event`, its seats in seat order.
pub(super) fn created_order(
    order: &NewOrder,
    event: EventFees,
    seats: Vec<SeatInfo>,
) -> OrderRecord {
    let EventFees {
        event_id,
        fee_per_ticket,
        currency,
    } = event;
    let subtotal: i64 = seats.iter().map(|s| s.price_minor).sum();
    let fees = fee_per_ticket * seats.len() as i64;
    OrderRecord {
        id: order.order_id.clone(),
        event_id,
        fan_id: order.fan_id.clone(),
        hold_id: order.hold_id.clone(),
        state: OrderState::PendingPayment,
        subtotal_minor: subtotal,
        fees_minor: fees,
        total_minor: subtotal + fees,
        currency,
        expires_at_ms: order.expires_at_ms,
        created_at_ms: order.now_ms,
        paid_at_ms: None,
        items: seats,
        payments: Vec::new(),
        tickets: Vec::new(),
    }
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        /// The seat ids of an order, in seat order.
        pub(super) async fn order_seat_ids(
            conn: &mut <DB as Database>::Connection,
            order_id: &str,
        ) -> Result<Vec<u32>, StoreError> {
            let rows: Vec<CountOnly> = sqlx::query_as(
                "SELECT seat_id AS n FROM order_items WHERE order_id = $1 ORDER BY seat_id",
            )
            .bind(order_id)
            .fetch_all(&mut *conn)
            .await?;
            rows.into_iter().map(|r| u32_of("seat id", r.n)).collect()
        }

        /// An order with its seats and payments, and its tickets if `with_tickets`; `lock` takes
        /// the order row for the rest of the transaction.
        pub(super) async fn order_in(
            conn: &mut <DB as Database>::Connection,
            clause: &str,
            key: &str,
            second: Option<&str>,
            lock: bool,
            with_tickets: bool,
        ) -> Result<Option<OrderRecord>, StoreError> {
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE {clause}{}",
                if lock { DB::FOR_UPDATE } else { "" }
            );
            let mut query = sqlx::query_as::<_, OrderRow>(&sql).bind(key);
            if let Some(second) = second {
                query = query.bind(second);
            }
            let Some(row) = query.fetch_optional(&mut *conn).await? else {
                return Ok(None);
            };
            let items = sqlx::query_as::<_, SeatInfoRow>(
                "SELECT oi.seat_id, s.section_id, s.row_label, s.seat_number, oi.price \
                 FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id \
                 WHERE oi.order_id = $1 ORDER BY oi.seat_id",
            )
            .bind(row.id.as_str())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(seat_info)
            .collect::<Result<_, _>>()?;
            let payments = sqlx::query_as::<_, PaymentRow>(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY created_at, id"
            ))
            .bind(row.id.as_str())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(payment_record)
            .collect::<Result<_, _>>()?;
            let tickets = if with_tickets {
                sqlx::query_as::<_, TicketRow>(
                    "SELECT id, seat_id, code, state, issued_at FROM tickets WHERE order_id = $1 ORDER BY seat_id",
                )
                .bind(row.id.as_str())
                .fetch_all(&mut *conn)
                .await?
            } else {
                Vec::new()
            }
            .into_iter()
            .map(ticket_record)
            .collect::<Result<_, StoreError>>()?;
            Ok(Some(order_record(row, items, payments, tickets)?))
        }

        pub(super) async fn sql_get_order(
            &self,
            order_id: &str,
        ) -> Result<Option<OrderRecord>, StoreError> {
            // The order, its seats, payments and tickets are separate statements: read in one
            // snapshot, or a payment that turned AUTHORIZED between two of them shows beside the
            // order's time to pay from before its claim extended it.
            let mut tx = self.reader.begin().await?;
            for setup in DB::SNAPSHOT_SETUP {
                sqlx::query(setup).execute(&mut *tx).await?;
            }
            let order = Self::order_in(&mut tx, "id = $1", order_id, None, false, true).await?;
            tx.commit().await?;
            Ok(order)
        }

        pub(super) async fn sql_checkout(
            &self,
            order: &NewOrder,
        ) -> Result<CheckoutOutcome, StoreError> {
            let deadline = fast_deadline(self.call_timeout);
            let fast = DB::fast_checkout(&self.writer, deadline, order).await?;
            if let Some(rows) = self.fast_path.count(FastStep::Checkout, fast) {
                let event = rows
                    .first()
                    .map(|r| EventFees {
                        event_id: r.event_id.clone(),
                        fee_per_ticket: r.fee,
                        currency: r.currency.clone(),
                    })
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "order {} was created without seats",
                            order.order_id
                        ))
                    })?;
                let seats = rows
                    .into_iter()
                    .map(|r| seat_info(r.seat))
                    .collect::<Result<_, _>>()?;
                return Ok(CheckoutOutcome::Created(created_order(order, event, seats)));
            }
            let mut tx = self.writer.begin().await?;
            DB::relax_durability(&mut tx).await?;
            if let Some(existing) = Self::order_in(
                &mut tx,
                "fan_id = $1 AND checkout_key = $2",
                &order.fan_id,
                Some(&order.checkout_key),
                false,
                true,
            )
            .await?
            {
                // The key names another hold (wherever it is): say so. The same hold seen through a
                // pass for another event: as if it did not exist, as below.
                let outcome = if existing.hold_id != order.hold_id {
                    CheckoutOutcome::KeyUsedForOtherHold
                } else if !in_event(order, &existing.event_id) {
                    CheckoutOutcome::HoldNotFound
                } else {
                    CheckoutOutcome::Existing(existing)
                };
                return abandon(tx, outcome).await;
            }
            let Some(hold) = sqlx::query_as::<_, HoldRow>(&format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(order.hold_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .filter(|h| h.fan_id == order.fan_id && in_event(order, &h.event_id)) else {
                return abandon(tx, CheckoutOutcome::HoldNotFound).await;
            };
            match HoldState::from_db(&hold.state) {
                Some(HoldState::Active) => {}
                Some(HoldState::CheckedOut) => {
                    let existing =
                        Self::order_in(&mut tx, "hold_id = $1", &order.hold_id, None, false, true)
                            .await?;
                    return abandon(
                        tx,
                        existing
                            .map_or(CheckoutOutcome::HoldNotActive(HoldState::CheckedOut), |o| {
                                CheckoutOutcome::Existing(o)
                            }),
                    )
                    .await;
                }
                Some(other) => return abandon(tx, CheckoutOutcome::HoldNotActive(other)).await,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "unknown hold state {:?}",
                        hold.state
                    )));
                }
            }
            let ids = parse_ids(&hold.seat_ids)?;
            let sql = format!(
                "UPDATE seats SET status = 'HARD_LOCKED', order_id = $3, locked_until = $4, \
                 version = version + 1, updated_at = $5 \
                 WHERE event_id = $1 AND hold_id = $2 AND status = 'SOFT_LOCKED' AND locked_until > $5 \
                 AND seat_id IN {} RETURNING {SEAT_INFO}",
                placeholders(6, ids.len())
            );
            let mut lock = sqlx::query_as::<_, SeatInfoRow>(&sql)
                .bind(hold.event_id.as_str())
                .bind(order.hold_id.as_str())
                .bind(order.order_id.as_str())
                .bind(order.expires_at_ms)
                .bind(order.now_ms);
            for id in &ids {
                lock = lock.bind(i64::from(*id));
            }
            let mut seats: Vec<SeatInfo> = lock
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(seat_info)
                .collect::<Result<_, _>>()?;
            seats.sort_by_key(|s| s.seat_id);
            if seats.len() as u64 != hold.seat_count as u64 || seats.is_empty() {
                tx.rollback().await?;
                // The hold lapsed: record it, so the fan sees why.
                sqlx::query(
                    "UPDATE holds SET state = 'EXPIRED' WHERE id = $1 AND state = 'ACTIVE'",
                )
                .bind(order.hold_id.as_str())
                .execute(&self.writer)
                .await?;
                return Ok(CheckoutOutcome::HoldExpired);
            }
            let event: EventFees = sqlx::query_as(
                "SELECT id AS event_id, fee_per_ticket, currency FROM events WHERE id = $1",
            )
            .bind(hold.event_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let created = created_order(order, event, seats);
            sqlx::query(
                "INSERT INTO orders (id, event_id, fan_id, hold_id, state, subtotal, fees, total, currency, \
                 expires_at, checkout_key, created_at, updated_at, seat_count) \
                 VALUES ($1, $2, $3, $4, 'PENDING_PAYMENT', $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            )
            .bind(order.order_id.as_str())
            .bind(hold.event_id.as_str())
            .bind(order.fan_id.as_str())
            .bind(order.hold_id.as_str())
            .bind(created.subtotal_minor)
            .bind(created.fees_minor)
            .bind(created.total_minor)
            .bind(created.currency.as_str())
            .bind(order.expires_at_ms)
            .bind(order.checkout_key.as_str())
            .bind(order.now_ms)
            .bind(created.items.len() as i64)
            .execute(&mut *tx)
            .await?;
            let sql = format!(
                "INSERT INTO order_items (order_id, event_id, seat_id, price) VALUES {}",
                (0..created.items.len())
                    .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut items = sqlx::query(&sql)
                .bind(order.order_id.as_str())
                .bind(hold.event_id.as_str());
            for seat in &created.items {
                items = items.bind(i64::from(seat.seat_id)).bind(seat.price_minor);
            }
            items.execute(&mut *tx).await?;
            sqlx::query("UPDATE holds SET state = 'CHECKED_OUT', order_id = $2 WHERE id = $1")
                .bind(order.hold_id.as_str())
                .bind(order.order_id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CheckoutOutcome::Created(created))
        }

        pub(super) async fn sql_refund_order(
            &self,
            order_id: &str,
            return_seats: bool,
            now_ms: i64,
        ) -> Result<RefundOutcome, StoreError> {
            let mut tx = self.writer.begin().await?;
            let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return abandon(tx, RefundOutcome::NotFound).await;
            };
            let state = OrderState::from_db(&order.state).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown order state {:?}", order.state))
            })?;
            if state != OrderState::Paid {
                return abandon(tx, RefundOutcome::NotPaid(state)).await;
            }
            sqlx::query(
                "UPDATE tickets SET state = 'REFUNDED' WHERE order_id = $1 AND state = 'VALID'",
            )
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE payments SET state = 'REFUNDED', updated_at = $2 WHERE order_id = $1 AND state = 'CAPTURED'",
            )
            .bind(order_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if return_seats {
                let ids = Self::order_seat_ids(&mut tx, order_id).await?;
                let sql = format!(
                    "UPDATE seats SET status = 'AVAILABLE', sold_to = NULL, sold_at = NULL, order_id = NULL, \
                     hold_id = NULL, locked_by = NULL, locked_until = NULL, version = version + 1, updated_at = $3 \
                     WHERE event_id = $1 AND order_id = $2 AND status = 'SOLD' AND seat_id IN {}",
                    placeholders(4, ids.len())
                );
                let mut release = sqlx::query(&sql)
                    .bind(order.event_id.as_str())
                    .bind(order_id)
                    .bind(now_ms);
                for id in &ids {
                    release = release.bind(i64::from(*id));
                }
                release.execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE orders SET state = 'REFUNDED', updated_at = $2 WHERE id = $1")
                .bind(order_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            let refunded = Self::order_in(&mut tx, "id = $1", order_id, None, false, true)
                .await?
                .ok_or_else(|| StoreError::Corrupt("the refunded order vanished".into()))?;
            tx.commit().await?;
            Ok(RefundOutcome::Refunded(Box::new(refunded)))
        }

        pub(super) async fn sql_list_orders(
            &self,
            event_id: &str,
            state: Option<OrderState>,
            before: Option<(i64, String)>,
            limit: i64,
        ) -> Result<Vec<OrderRecord>, StoreError> {
            let (before_at, before_id) = before.unwrap_or((i64::MAX, String::new()));
            let rows: Vec<OrderRow> = sqlx::query_as(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE event_id = $1 AND ($2 = '' OR state = $2) \
                 AND (created_at < $3 OR (created_at = $3 AND $4 <> '' AND id < $4)) \
                 ORDER BY created_at DESC, id DESC LIMIT $5"
            ))
            .bind(event_id)
            .bind(state.map(OrderState::as_db).unwrap_or(""))
            .bind(before_at)
            .bind(before_id.as_str())
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let ids = placeholders(1, rows.len());
            let items_sql = format!(
                "SELECT oi.order_id, oi.seat_id, s.section_id, s.row_label, s.seat_number, oi.price \
                 FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id \
                 WHERE oi.order_id IN {ids} ORDER BY oi.seat_id"
            );
            let mut items_query = sqlx::query_as::<_, OrderItemRow>(&items_sql);
            for row in &rows {
                items_query = items_query.bind(row.id.as_str());
            }
            let items = items_query.fetch_all(&self.reader).await?;
            let payments_sql = format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id IN {ids} ORDER BY created_at, id"
            );
            let mut payments_query = sqlx::query_as::<_, PaymentRow>(&payments_sql);
            for row in &rows {
                payments_query = payments_query.bind(row.id.as_str());
            }
            let payments = payments_query.fetch_all(&self.reader).await?;
            let tickets_sql = format!(
                "SELECT order_id, id, seat_id, code, state, issued_at FROM tickets WHERE order_id IN {ids} \
                 ORDER BY seat_id"
            );
            let mut tickets_query = sqlx::query_as::<_, OrderTicketRow>(&tickets_sql);
            for row in &rows {
                tickets_query = tickets_query.bind(row.id.as_str());
            }
            let tickets = tickets_query.fetch_all(&self.reader).await?;
            let mut items_of: HashMap<String, Vec<SeatInfo>> = HashMap::new();
            for item in items {
                items_of
                    .entry(item.order_id)
                    .or_default()
                    .push(seat_info(item.seat)?);
            }
            let mut payments_of: HashMap<String, Vec<PaymentRecord>> = HashMap::new();
            for payment in payments {
                payments_of
                    .entry(payment.order_id.clone())
                    .or_default()
                    .push(payment_record(payment)?);
            }
            let mut tickets_of: HashMap<String, Vec<TicketRecord>> = HashMap::new();
            for ticket in tickets {
                tickets_of
                    .entry(ticket.order_id)
                    .or_default()
                    .push(ticket_record(ticket.ticket)?);
            }
            let mut orders = Vec::with_capacity(rows.len());
            for row in rows {
                let items = items_of.remove(&row.id).unwrap_or_default();
                let payments = payments_of.remove(&row.id).unwrap_or_default();
                let tickets = tickets_of.remove(&row.id).unwrap_or_default();
                orders.push(order_record(row, items, payments, tickets)?);
            }
            Ok(orders)
        }

        pub(super) async fn sql_paid_totals(
            &self,
            event_id: &str,
        ) -> Result<(u64, i64), StoreError> {
            let count: CountOnly = sqlx::query_as(
                "SELECT COUNT(*) AS n FROM orders WHERE event_id = $1 AND state = 'PAID'",
            )
            .bind(event_id)
            .fetch_one(&self.reader)
            .await?;
            let total: CountOnly = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS n FROM orders \
                 WHERE event_id = $1 AND state = 'PAID'",
            )
            .bind(event_id)
            .fetch_one(&self.reader)
            .await?;
            Ok((count.n.max(0) as u64, total.n))
        }
    }
}
