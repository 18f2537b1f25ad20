//! Payment attempts: starting one (idempotent by key), finishing a failed one, the capture
//! claim, the sale that issues tickets, and the reconciler's list of stale attempts.

use sqlx::FromRow;

use super::fast::fast_deadline;
use super::orders::{ORDER_COLUMNS, OrderRow, order_record};
use super::sql::{Affected, SeatInfoRow, SqlStore, abandon, placeholders, seat_info, sql_impl};
use super::{FastStep, NewTicket, OrderRecord, OrderState, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Authorized,
    Captured,
    Failed,
    Voided,
    Refunded,
}

impl PaymentState {
    pub fn as_db(self) -> &'static str {
        match self {
            PaymentState::Pending => "PENDING",
            PaymentState::Authorized => "AUTHORIZED",
            PaymentState::Captured => "CAPTURED",
            PaymentState::Failed => "FAILED",
            PaymentState::Voided => "VOIDED",
            PaymentState::Refunded => "REFUNDED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(PaymentState::Pending),
            "AUTHORIZED" => Some(PaymentState::Authorized),
            "CAPTURED" => Some(PaymentState::Captured),
            "FAILED" => Some(PaymentState::Failed),
            "VOIDED" => Some(PaymentState::Voided),
            "REFUNDED" => Some(PaymentState::Refunded),
            _ => None,
        }
    }

    /// Still waiting for the provider or for the sale to complete.
    pub fn in_flight(self) -> bool {
        matches!(self, PaymentState::Pending | PaymentState::Authorized)
    }
}

/// A payment attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: String,
    pub order_id: String,
    pub state: PaymentState,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: String,
    pub provider_intent_id: Option<String>,
    pub idempotency_key: String,
    pub provider_idempotency_key: String,
    pub failure_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A payment attempt to record.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payment_id: String,
    pub order_id: String,
    /// The paying fan; `None` when an operator pays on a fan's behalf.
    pub fan_id: Option<String>,
    /// The event the caller's pass admits to; `None` for an operator.
    pub event_id: Option<String>,
    pub idempotency_key: String,
    pub provider: String,
    pub now_ms: i64,
}

/// What became of a payment start.
#[derive(Debug, Clone, PartialEq)]
pub enum BeginPayment {
    /// A new attempt, PENDING, to send to the provider.
    Started(PaymentRecord, OrderRecord),
    /// The attempt with this key already exists (maybe finished, maybe in flight).
    Replay(PaymentRecord, OrderRecord),
    /// Another attempt (other key) is in flight.
    InFlight(PaymentRecord),
    /// The order cannot be paid: it is paid, expired, cancelled or refunded.
    NotPayable(OrderRecord),
    OrderNotFound,
}

/// An order on one of its seats' rows (`taquilla_begin_payment`).
#[derive(Debug, FromRow)]
pub(crate) struct OrderSeatRow {
    #[sqlx(flatten)]
    pub(super) order: OrderRow,
    #[sqlx(flatten)]
    pub(super) seat: SeatInfoRow,
}

#[derive(Debug, Clone, FromRow)]
pub(crate) struct PaymentRow {
    pub(super) id: String,
    pub(super) order_id: String,
    pub(super) state: String,
    pub(super) amount: i64,
    pub(super) currency: String,
    pub(super) provider: String,
    pub(super) provider_intent_id: Option<String>,
    pub(super) idempotency_key: String,
    pub(super) provider_idempotency_key: String,
    pub(super) failure_reason: Option<String>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

pub(super) const PAYMENT_COLUMNS: &str = "id, order_id, state, amount, currency, provider, provider_intent_id, \
     idempotency_key, provider_idempotency_key, failure_reason, created_at, updated_at";

pub(super) fn payment_record(row: PaymentRow) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        state: PaymentState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown payment state {:?}", row.state)))?,
        id: row.id,
        order_id: row.order_id,
        amount_minor: row.amount,
        currency: row.currency,
        provider: row.provider,
        provider_intent_id: row.provider_intent_id,
        idempotency_key: row.idempotency_key,
        provider_idempotency_key: row.provider_idempotency_key,
        failure_reason: row.failure_reason,
        created_at_ms: row.created_at,
        updated_at_ms: row.updated_at,
    })
}

/// The record of a payment attempt just started.
pub(super) fn started_payment(new: &NewPayment, order: &OrderRecord) -> PaymentRecord {
    PaymentRecord {
        id: new.payment_id.clone(),
        order_id: new.order_id.clone(),
        state: PaymentState::Pending,
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
        provider: new.provider.clone(),
        provider_intent_id: None,
        idempotency_key: new.idempotency_key.clone(),
        provider_idempotency_key: new.payment_id.clone(),
        failure_reason: None,
        created_at_ms: new.now_ms,
        updated_at_ms: new.now_ms,
    }
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_begin_payment(
            &self,
            new: &NewPayment,
        ) -> Result<BeginPayment, StoreError> {
            let deadline = fast_deadline(self.call_timeout);
            let fast = DB::fast_begin_payment(&self.writer, deadline, new).await?;
            if let Some(rows) = self.fast_path.count(FastStep::BeginPayment, fast) {
                let mut rows = rows.into_iter();
                let first = rows.next().ok_or_else(|| {
                    StoreError::Corrupt(format!("order {} has no seats", new.order_id))
                })?;
                let mut items = vec![seat_info(first.seat)?];
                for row in rows {
                    items.push(seat_info(row.seat)?);
                }
                let order = order_record(first.order, items, Vec::new(), Vec::new())?;
                return Ok(BeginPayment::Started(started_payment(new, &order), order));
            }
            let mut tx = self.writer.begin().await?;
            // The order row stays locked: payment starts of one order are serialized.
            let Some(order) = Self::order_in(&mut tx, "id = $1", &new.order_id, None, true, false)
                .await?
                .filter(|o| new.fan_id.as_ref().is_none_or(|fan| *fan == o.fan_id))
                .filter(|o| {
                    new.event_id
                        .as_ref()
                        .is_none_or(|event| *event == o.event_id)
                })
            else {
                return abandon(tx, BeginPayment::OrderNotFound).await;
            };
            if let Some(same) = order
                .payments
                .iter()
                .find(|p| p.idempotency_key == new.idempotency_key)
            {
                let same = same.clone();
                return abandon(tx, BeginPayment::Replay(same, order)).await;
            }
            if let Some(in_flight) = order.payments.iter().find(|p| p.state.in_flight()) {
                let in_flight = in_flight.clone();
                return abandon(tx, BeginPayment::InFlight(in_flight)).await;
            }
            if order.state != OrderState::PendingPayment || order.expires_at_ms <= new.now_ms {
                return abandon(tx, BeginPayment::NotPayable(order)).await;
            }
            sqlx::query(
                "INSERT INTO payments (id, order_id, state, amount, currency, provider, idempotency_key, \
                 provider_idempotency_key, created_at, updated_at) \
                 VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $1, $7, $7)",
            )
            .bind(new.payment_id.as_str())
            .bind(new.order_id.as_str())
            .bind(order.total_minor)
            .bind(order.currency.as_str())
            .bind(new.provider.as_str())
            .bind(new.idempotency_key.as_str())
            .bind(new.now_ms)
            .execute(&mut *tx)
            .await?;
            let payment = started_payment(new, &order);
            tx.commit().await?;
            Ok(BeginPayment::Started(payment, order))
        }

        pub(super) async fn sql_get_payment(
            &self,
            payment_id: &str,
        ) -> Result<Option<PaymentRecord>, StoreError> {
            sqlx::query_as::<_, PaymentRow>(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
            ))
            .bind(payment_id)
            .fetch_optional(&self.reader)
            .await?
            .map(payment_record)
            .transpose()
        }

        pub(super) async fn sql_finish_payment(
            &self,
            payment_id: &str,
            state: PaymentState,
            intent_id: Option<&str>,
            reason: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE payments SET state = $2, provider_intent_id = COALESCE($3, provider_intent_id), \
                 failure_reason = $4, updated_at = $5 \
                 WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
            )
            .bind(payment_id)
            .bind(state.as_db())
            .bind(intent_id)
            .bind(reason)
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        pub(super) async fn sql_forget_payment(&self, payment_id: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM payments WHERE id = $1 AND state = 'PENDING'")
                .bind(payment_id)
                .execute(&self.writer)
                .await?;
            Ok(())
        }

        pub(super) async fn sql_claim_for_capture(
            &self,
            payment_id: &str,
            intent_id: &str,
            now_ms: i64,
            until_ms: i64,
        ) -> Result<bool, StoreError> {
            let deadline = fast_deadline(self.call_timeout);
            let fast = DB::fast_claim(
                &self.writer,
                deadline,
                payment_id,
                intent_id,
                now_ms,
                until_ms,
            )
            .await?;
            if self.fast_path.count(FastStep::Claim, fast).is_some() {
                return Ok(true);
            }
            let mut tx = self.writer.begin().await?;
            DB::relax_durability(&mut tx).await?;
            let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1){}",
                DB::FOR_UPDATE
            ))
            .bind(payment_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return abandon(tx, false).await;
            };
            let ids = Self::order_seat_ids(&mut tx, &order.id).await?;
            let sql = format!(
                "UPDATE seats SET locked_until = {}(locked_until, $4), version = version + 1, updated_at = $3 \
                 WHERE event_id = $1 AND order_id = $2 AND status = 'HARD_LOCKED' AND locked_until > $3 \
                 AND seat_id IN {}",
                DB::GREATEST,
                placeholders(5, ids.len())
            );
            let mut extend = sqlx::query(&sql)
                .bind(order.event_id.as_str())
                .bind(order.id.as_str())
                .bind(now_ms)
                .bind(until_ms);
            for id in &ids {
                extend = extend.bind(i64::from(*id));
            }
            let extended = extend.execute(&mut *tx).await?.affected();
            if order.state != "PENDING_PAYMENT" || ids.is_empty() || extended != ids.len() as u64 {
                return abandon(tx, false).await;
            }
            // The order's time to pay follows its seats' claim (the per-fan cap counts it meanwhile).
            sqlx::query(&format!(
                "UPDATE orders SET expires_at = {}(expires_at, $2), updated_at = $3 WHERE id = $1",
                DB::GREATEST
            ))
            .bind(order.id.as_str())
            .bind(until_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            let authorized = sqlx::query(
                "UPDATE payments SET state = 'AUTHORIZED', provider_intent_id = $2, updated_at = $3 \
                 WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
            )
            .bind(payment_id)
            .bind(intent_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .affected();
            if authorized != 1 {
                return abandon(tx, false).await;
            }
            tx.commit().await?;
            Ok(true)
        }

        pub(super) async fn sql_complete_sale(
            &self,
            payment_id: &str,
            intent_id: &str,
            tickets: &[NewTicket],
            now_ms: i64,
        ) -> Result<Option<i64>, StoreError> {
            let deadline = fast_deadline(self.call_timeout);
            let fast = DB::fast_complete_sale(
                &self.writer,
                deadline,
                payment_id,
                intent_id,
                tickets,
                now_ms,
            )
            .await?;
            if let Some(expires_at) = self.fast_path.count(FastStep::CompleteSale, fast) {
                return Ok(Some(expires_at));
            }
            let mut tx = self.writer.begin().await?;
            let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1){}",
                DB::FOR_UPDATE
            ))
            .bind(payment_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return abandon(tx, None).await;
            };
            let ids: Vec<u32> = tickets.iter().map(|t| t.seat_id).collect();
            let sql = format!(
                "UPDATE seats SET status = 'SOLD', sold_to = $3, sold_at = $4, locked_by = NULL, \
                 locked_until = NULL, hold_id = NULL, version = version + 1, updated_at = $4 \
                 WHERE event_id = $1 AND order_id = $2 AND status = 'HARD_LOCKED' AND seat_id IN {}",
                placeholders(5, ids.len())
            );
            let mut sell = sqlx::query(&sql)
                .bind(order.event_id.as_str())
                .bind(order.id.as_str())
                .bind(order.fan_id.as_str())
                .bind(now_ms);
            for id in &ids {
                sell = sell.bind(i64::from(*id));
            }
            let sold = sell.execute(&mut *tx).await?.affected();
            let paid = sqlx::query(
                "UPDATE orders SET state = 'PAID', paid_at = $2, updated_at = $2 \
                 WHERE id = $1 AND state = 'PENDING_PAYMENT'",
            )
            .bind(order.id.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .affected();
            // Any attempt in flight: normally AUTHORIZED by its claim, but the claim commits
            // without waiting for its WAL, so a database crash can lose it and leave the attempt
            // PENDING while the provider holds the captured money. The capture is what counts.
            let captured = sqlx::query(
                "UPDATE payments SET state = 'CAPTURED', provider_intent_id = $3, updated_at = $2 \
                 WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
            )
            .bind(payment_id)
            .bind(now_ms)
            .bind(intent_id)
            .execute(&mut *tx)
            .await?
            .affected();
            if sold != tickets.len() as u64 || paid != 1 || captured != 1 || tickets.is_empty() {
                return abandon(tx, None).await;
            }
            let sql = format!(
                "INSERT INTO tickets (id, event_id, seat_id, order_id, fan_id, code, state, issued_at) VALUES {}",
                (0..tickets.len())
                    .map(|i| format!(
                        "(${}, $1, ${}, $2, $3, ${}, 'VALID', $4)",
                        5 + 3 * i,
                        6 + 3 * i,
                        7 + 3 * i
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut insert = sqlx::query(&sql)
                .bind(order.event_id.as_str())
                .bind(order.id.as_str())
                .bind(order.fan_id.as_str())
                .bind(now_ms);
            for ticket in tickets {
                insert = insert
                    .bind(ticket.id.as_str())
                    .bind(i64::from(ticket.seat_id))
                    .bind(ticket.code.as_str());
            }
            insert.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(order.expires_at))
        }

        pub(super) async fn sql_stale_payments(
            &self,
            before_ms: i64,
            limit: i64,
        ) -> Result<Vec<PaymentRecord>, StoreError> {
            sqlx::query_as::<_, PaymentRow>(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE state IN ('PENDING', 'AUTHORIZED') \
                 AND failure_reason IS NULL AND updated_at < $1 ORDER BY updated_at LIMIT $2"
            ))
            .bind(before_ms)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?
            .into_iter()
            .map(payment_record)
            .collect()
        }
    }
}
