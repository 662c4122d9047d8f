//! The ledger: every model call is priced and recorded here. Before a call it **reserves**
//! the call's worst case against the task's cap and the client's monthly cap and refuses
//! the call if either would be passed; after the call it **settles** to the usage the
//! provider reported (or, when it reported none, to an estimate, and the row is marked
//! `estimated`: a call that happened is never free), writing the cost row and the counters
//! it changes in one transaction.
//!
//! Reservations live in memory behind one lock, so concurrent runs can never together start
//! calls past a cap. Committed spend is loaded from the store the first time a task or
//! client is seen and then kept in step with every settled row.

use crate::money::{Micros, Price, Usage, format_usd};
use crate::store::{CostRow, Store, StoreError, WriteOp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Who a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallScope {
    pub client_id: String,
    pub task_id: String,
    pub run_id: String,
}

/// What a call is, for pricing and the cost row.
#[derive(Debug, Clone)]
pub struct CallQuote {
    pub provider: String,
    pub model: String,
    pub purpose: String,
    pub simulated: bool,
    pub price: Price,
    pub prompt_tokens_estimate: u64,
    pub max_output_tokens: u64,
}

/// Budget held for a call in flight. Settle or release it exactly once.
#[derive(Debug)]
pub struct Reservation {
    pub scope: CallScope,
    pub quote: CallQuote,
    pub month: String,
    pub amount: Micros,
}

/// Why a call may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("task {task_id} would pass its budget: {} spent or held of {}, and the next call may cost up to {}; raise it (Clients view, or `ecca budget {task_id} AMOUNT --note WHY`) and resume", format_usd(*.spent), format_usd(*.cap), format_usd(*.needed))]
    Task {
        task_id: String,
        spent: Micros,
        cap: Micros,
        needed: Micros,
    },
    #[error("client {client_id} would pass its monthly budget: {} spent or held of {} in {month}, and the next call may cost up to {}; raise its monthly cap (Clients view, or `ecca clients cap {client_id} AMOUNT --note WHY`); the paused runs then go on", format_usd(*.spent), format_usd(*.cap), format_usd(*.needed))]
    Client {
        client_id: String,
        month: String,
        spent: Micros,
        cap: Micros,
        needed: Micros,
    },
    #[error("{0}")]
    Unknown(String),
}

/// What a settled call cost, and the totals after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub cost: Micros,
    pub task_total: Micros,
    pub client_month_total: Micros,
}

#[derive(Debug)]
struct Book {
    committed: Micros,
    reserved: Micros,
    cap: Micros,
}

#[derive(Debug)]
struct ClientBook {
    month: String,
    book: Book,
}

#[derive(Default)]
struct Books {
    clients: HashMap<String, ClientBook>,
    tasks: HashMap<String, Book>,
}

#[derive(Clone)]
pub struct Ledger {
    store: Store,
    books: Arc<Mutex<Books>>,
}

impl Ledger {
    pub fn new(store: Store) -> Ledger {
        Ledger {
            store,
            books: Arc::new(Mutex::new(Books::default())),
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // Every update under this lock is a few integer additions that cannot panic midway.
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds the worst case of a call, or says why it may not start.
    pub fn reserve(
        &self,
        scope: CallScope,
        quote: CallQuote,
        month: &str,
    ) -> Result<Reservation, Refused> {
        let amount = quote
            .price
            .worst_case(quote.prompt_tokens_estimate, quote.max_output_tokens);
        self.reserve_amount(scope, quote, month, amount)
    }

    /// Records the call at the usage the provider reported (or, with `estimated`, at ecca's
    /// estimate of it, and the row says so), together with `also` (the run's checkpoint), in
    /// one transaction, and frees the reservation. Returns once committed.
    pub async fn settle(
        &self,
        reservation: Reservation,
        usage: Usage,
        estimated: bool,
        outcome: &str,
        also: Vec<WriteOp>,
    ) -> Result<Settled, StoreError> {
        let cost = reservation.quote.price.cost(&usage);
        let row = CostRow {
            at: crate::time::now_ms(),
            month: reservation.month.clone(),
            client_id: reservation.scope.client_id.clone(),
            task_id: reservation.scope.task_id.clone(),
            run_id: reservation.scope.run_id.clone(),
            provider: reservation.quote.provider.clone(),
            model: reservation.quote.model.clone(),
            purpose: reservation.quote.purpose.clone(),
            simulated: reservation.quote.simulated,
            usage,
            cost_micros: cost,
            reserved_micros: reservation.amount,
            outcome: outcome.to_string(),
            estimated,
        };
        if cost > reservation.amount {
            tracing::warn!(task = %row.task_id, cost, reserved = reservation.amount, "call cost more than its reservation");
        }
        let mut ops = Vec::with_capacity(also.len() + 1);
        ops.push(WriteOp::Cost(row));
        ops.extend(also);
        let written = self.store.write(ops).await;
        // The money is spent whether or not the row could be written: count it either way,
        // so a failing disk can never let spending run past a cap.
        let settled = self.apply(&reservation, cost);
        written.map(|()| settled)
    }

    /// Holds `amount` against the task's cap and the client's month, or says which cap
    /// it would pass. For one call (`reserve`), or a whole agent run ecca does not control
    /// call by call (a third-party CLI), whose calls are then recorded within it by
    /// [`Ledger::record_within`].
    pub fn reserve_amount(
        &self,
        scope: CallScope,
        quote: CallQuote,
        month: &str,
        amount: Micros,
    ) -> Result<Reservation, Refused> {
        let mut books = self.books();
        self.load_client(&mut books, &scope.client_id, month)?;
        self.load_task(&mut books, &scope.task_id)?;
        let task = &books.tasks[&scope.task_id];
        if task.committed + task.reserved + amount > task.cap {
            return Err(Refused::Task {
                task_id: scope.task_id.clone(),
                spent: task.committed + task.reserved,
                cap: task.cap,
                needed: amount,
            });
        }
        let client = &books.clients[&scope.client_id].book;
        if client.committed + client.reserved + amount > client.cap {
            return Err(Refused::Client {
                client_id: scope.client_id.clone(),
                month: month.to_string(),
                spent: client.committed + client.reserved,
                cap: client.cap,
                needed: amount,
            });
        }
        if let Some(t) = books.tasks.get_mut(&scope.task_id) {
            t.reserved += amount;
        }
        if let Some(c) = books.clients.get_mut(&scope.client_id) {
            c.book.reserved += amount;
        }
        Ok(Reservation {
            scope,
            quote,
            month: month.to_string(),
            amount,
        })
    }

    /// Records one call made inside `reservation` at `cost` (ecca's price of its usage,
    /// or the agent's own figure): the row is written and the money moves from held to
    /// spent. What the reservation holds shrinks by the cost, never below zero; a cost past
    /// it still counts in full.
    pub async fn record_within(
        &self,
        reservation: &mut Reservation,
        row: CostRow,
    ) -> Result<Settled, StoreError> {
        let cost = row.cost_micros;
        let written = self.store.write(vec![WriteOp::Cost(row)]).await;
        let freed = cost.clamp(0, reservation.amount);
        let part = Reservation {
            scope: reservation.scope.clone(),
            quote: reservation.quote.clone(),
            month: reservation.month.clone(),
            amount: freed,
        };
        reservation.amount -= freed;
        let settled = self.apply(&part, cost);
        written.map(|()| settled)
    }

    /// Frees a reservation for a call that incurred nothing.
    pub fn release(&self, reservation: Reservation) {
        self.apply(&reservation, 0);
    }

    fn apply(&self, r: &Reservation, cost: Micros) -> Settled {
        let mut books = self.books();
        let mut task_total = 0;
        if let Some(t) = books.tasks.get_mut(&r.scope.task_id) {
            t.reserved -= r.amount;
            t.committed += cost;
            task_total = t.committed;
        }
        let mut client_month_total = 0;
        if let Some(c) = books.clients.get_mut(&r.scope.client_id) {
            c.book.reserved -= r.amount;
            if c.month == r.month {
                c.book.committed += cost;
            }
            client_month_total = c.book.committed;
        }
        Settled {
            cost,
            task_total,
            client_month_total,
        }
    }

    /// A task's committed spend as the ledger sees it.
    pub fn task_spent(&self, task_id: &str) -> Micros {
        self.books()
            .tasks
            .get(task_id)
            .map(|t| t.committed)
            .unwrap_or(0)
    }

    /// What the client's calls in flight hold right now.
    pub fn client_reserved(&self, client_id: &str) -> Micros {
        self.books()
            .clients
            .get(client_id)
            .map(|c| c.book.reserved)
            .unwrap_or(0)
    }

    /// Money held by in-flight calls, for every client that has some.
    pub fn reserved_by_client(&self) -> std::collections::BTreeMap<String, Micros> {
        self.books()
            .clients
            .iter()
            .filter(|(_, c)| c.book.reserved > 0)
            .map(|(id, c)| (id.clone(), c.book.reserved))
            .collect()
    }

    /// What is left of a task's budget: its cap less what is spent and held.
    pub fn task_remaining(&self, task_id: &str) -> Result<Micros, Refused> {
        let mut books = self.books();
        self.load_task(&mut books, task_id)?;
        let t = &books.tasks[task_id];
        Ok(t.cap - t.committed - t.reserved)
    }

    /// A task's new budget, effective for its next call.
    pub fn set_task_cap(&self, task_id: &str, cap: Micros) {
        if let Some(t) = self.books().tasks.get_mut(task_id) {
            t.cap = cap;
        }
    }

    /// Forgets the cached caps of a client so the next call reads the new budget.
    pub fn refresh_client(&self, client_id: &str) {
        let mut books = self.books();
        if let Some(c) = books.clients.get(client_id) {
            if c.book.reserved == 0 {
                books.clients.remove(client_id);
            } else if let Ok(Some(rec)) = self.store.client(client_id)
                && let Some(c) = books.clients.get_mut(client_id)
            {
                c.book.cap = rec.monthly_budget_micros;
            }
        }
    }

    fn load_client(&self, books: &mut Books, client_id: &str, month: &str) -> Result<(), Refused> {
        let fresh = books
            .clients
            .get(client_id)
            .is_some_and(|c| c.month == month);
        if fresh {
            return Ok(());
        }
        let store_err = |e: StoreError| Refused::Unknown(e.0);
        let client = self
            .store
            .client(client_id)
            .map_err(store_err)?
            .ok_or_else(|| Refused::Unknown(format!("client {client_id} does not exist")))?;
        let committed = self
            .store
            .client_month_spend(client_id, month)
            .map_err(store_err)?;
        let reserved = books
            .clients
            .get(client_id)
            .map(|c| c.book.reserved)
            .unwrap_or(0);
        books.clients.insert(
            client_id.to_string(),
            ClientBook {
                month: month.to_string(),
                book: Book {
                    committed,
                    reserved,
                    cap: client.monthly_budget_micros,
                },
            },
        );
        Ok(())
    }

    fn load_task(&self, books: &mut Books, task_id: &str) -> Result<(), Refused> {
        if books.tasks.contains_key(task_id) {
            return Ok(());
        }
        let task = self
            .store
            .task(task_id)
            .map_err(|e| Refused::Unknown(e.0))?
            .ok_or_else(|| Refused::Unknown(format!("task {task_id} does not exist")))?;
        books.tasks.insert(
            task_id.to_string(),
            Book {
                committed: task.cost_micros,
                reserved: 0,
                cap: task.budget_micros,
            },
        );
        Ok(())
    }
}
