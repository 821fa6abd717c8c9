//! One SQL interface over the two databases the store runs on: SQLite (the default, one file)
//! and PostgreSQL (shared by several collector instances). The store's queries are written once,
//! against [`Connection`], in the SQL both understand (`?1` placeholders, `ON CONFLICT`,
//! `RETURNING`); the few places where the dialects differ ask [`Connection::dialect`].
//!
//! Values cross as [`Value`] (null, integer, real, text, blob) both ways. PostgreSQL's types are
//! strict where SQLite's are not, so a value is written as the type the server asks for (an
//! integer into `INT4` or `BOOL`, a text into `BYTEA`) and read back by its column's type.
//!
//! Transactions are statements on the connection (`BEGIN`, `SAVEPOINT`, `COMMIT`), so one
//! function body runs unchanged inside a transaction, a savepoint or neither. Every write
//! transaction is exclusive across processes: SQLite's `BEGIN IMMEDIATE` takes the file's write
//! lock; on PostgreSQL a transaction-scoped advisory lock does the same for every instance. That
//! keeps the audit chain one chain, counters exact, and event sequence numbers in commit order
//! (a reader paging by `seq` never skips a row committed later under a lower number).

mod postgres;
mod sqlite;

pub use self::postgres::PostgresTarget;
pub use rusqlite::types::Value;

use std::fmt;
use std::marker::PhantomData;

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A database error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A query that must return a row returned none.
    NoRows,
    /// The database reported an error (or a value did not fit its column).
    Database(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRows => f.write_str("the query returned no rows"),
            Error::Database(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {}

/// The result of a database call.
pub type Result<T> = std::result::Result<T, Error>;

/// Turns "no rows" into `None`.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`Error::NoRows`], the rest unchanged.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value that can be bound to a placeholder.
pub trait ToValue {
    /// The value to bind.
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

macro_rules! integer_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Integer(i64::from(*self))
            }
        }
    )*};
}
integer_to_value!(i64, i32, u32, u16, u8);

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// The values bound to a statement's placeholders, in order.
pub trait Params {
    /// The values.
    fn into_values(self) -> Vec<Value>;
}

impl Params for () {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}

impl Params for &[&dyn ToValue] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

macro_rules! tuple_params {
    ($($name:ident),+) => {
        impl<$($name: ToValue),+> Params for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_values(self) -> Vec<Value> {
                let ($($name,)+) = self;
                vec![$($name.to_value()),+]
            }
        }
    };
}
tuple_params!(A);
tuple_params!(A, B);
tuple_params!(A, B, C);
tuple_params!(A, B, C, D);
tuple_params!(A, B, C, D, E);
tuple_params!(A, B, C, D, E, F);
tuple_params!(A, B, C, D, E, F, G);
tuple_params!(A, B, C, D, E, F, G, H);
tuple_params!(A, B, C, D, E, F, G, H, I);
tuple_params!(A, B, C, D, E, F, G, H, I, J);

/// Any number of values of mixed types, as `[&dyn ToValue]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::ToValue),*] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub(crate) use params;

/// The values of an iterator, bound in order.
pub fn params_from_iter<I: IntoIterator<Item = Value>>(values: I) -> Vec<Value> {
    values.into_iter().collect()
}

/// A value read from a column.
pub trait FromValue: Sized {
    /// Converts, or says why not.
    fn from_value(value: &Value) -> Result<Self>;
}

fn mismatch<T>(value: &Value, wanted: &str) -> Result<T> {
    Err(Error::Database(format!(
        "a column holds {}, not {wanted}",
        match value {
            Value::Null => "NULL",
            Value::Integer(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    )))
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(value.clone())
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Integer(n) => Ok(*n),
            other => mismatch(other, "an integer"),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Result<Self> {
        let n = i64::from_value(value)?;
        u64::try_from(n).map_err(|_| Error::Database(format!("{n} is negative")))
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Result<Self> {
        let n = i64::from_value(value)?;
        u32::try_from(n).map_err(|_| Error::Database(format!("{n} does not fit 32 bits")))
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            other => mismatch(other, "text"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Blob(bytes) => Ok(bytes.clone()),
            other => mismatch(other, "a blob"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug)]
pub struct Row<'a> {
    values: Vec<Value>,
    _of: PhantomData<&'a ()>,
}

impl Row<'_> {
    fn new(values: Vec<Value>) -> Row<'static> {
        Row {
            values,
            _of: PhantomData,
        }
    }

    /// Column `index` (from 0) as `T`.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T> {
        match self.values.get(index) {
            Some(value) => T::from_value(value),
            None => Err(Error::Database(format!("no column {index}"))),
        }
    }
}

/// The rows of a result, read one at a time.
#[derive(Debug)]
pub struct Rows {
    rows: std::vec::IntoIter<Row<'static>>,
    current: Option<Row<'static>>,
}

impl Rows {
    /// The next row, if any (a fallible cursor, as rusqlite's, not an iterator).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&Row<'static>>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::PostgresConnection>),
}

/// A connection to either database.
pub struct Connection {
    backend: Backend,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({:?})", self.dialect())
    }
}

impl Connection {
    /// Wraps an open SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Connection {
        Connection {
            backend: Backend::Sqlite(conn),
        }
    }

    /// Connects to PostgreSQL. Blocks: call it off the async runtime.
    pub fn postgres(target: &PostgresTarget) -> Result<Connection> {
        Ok(Connection {
            backend: Backend::Postgres(Box::new(postgres::PostgresConnection::connect(target)?)),
        })
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, checkpoints).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(conn) => Some(conn),
            Backend::Postgres(_) => None,
        }
    }

    fn run(&self, sql: &str, values: Vec<Value>) -> Result<usize> {
        match &self.backend {
            Backend::Sqlite(conn) => sqlite::execute(conn, sql, values),
            Backend::Postgres(conn) => conn.execute(sql, &values),
        }
    }

    fn rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row<'static>>> {
        match &self.backend {
            Backend::Sqlite(conn) => sqlite::query(conn, sql, values),
            Backend::Postgres(conn) => conn.query(sql, &values),
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.run(sql, params.into_values())
    }

    /// Runs a query and maps its first row; [`Error::NoRows`] if it has none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let rows = self.rows(sql, params.into_values())?;
        rows.first().map_or(Err(Error::NoRows), map)
    }

    /// Runs statements separated by semicolons, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => conn.execute_batch(sql).map_err(sqlite::error),
            Backend::Postgres(conn) => conn.batch(sql),
        }
    }

    /// A statement to run (possibly many times); prepared plans are cached per connection.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_owned(),
        })
    }

    /// Same as [`Connection::prepare_cached`].
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare_cached(sql)
    }

    /// Closes the connection; SQLite first checkpoints its write-ahead log into the file.
    pub fn close(self) -> Result<()> {
        match self.backend {
            Backend::Sqlite(conn) => {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(sqlite::error)?;
                conn.close().map_err(|(_, e)| sqlite::error(e))
            }
            Backend::Postgres(conn) => (*conn).close(),
        }
    }

    /// Begins a write transaction, exclusive across every process using the database.
    pub fn begin_write(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite::error),
            Backend::Postgres(conn) => conn.begin_write(),
        }
    }

    /// Commits the open transaction.
    pub fn commit(&self) -> Result<()> {
        self.execute_batch("COMMIT")
    }

    /// Rolls the open transaction back.
    pub fn rollback(&self) -> Result<()> {
        self.execute_batch("ROLLBACK")
    }

    /// Runs `change` in a write transaction: committed if it succeeds, rolled back if not.
    pub fn write<T, E: From<Error>>(
        &self,
        change: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.begin_write()?;
        match change(self) {
            Ok(out) => {
                if let Err(e) = self.commit() {
                    let _ = self.rollback();
                    return Err(e.into());
                }
                Ok(out)
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// Runs `change` in a savepoint of the open transaction: released if it succeeds, rolled
    /// back (alone) if not.
    pub fn savepoint<T, E: From<Error>>(
        &self,
        change: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.execute_batch("SAVEPOINT write_op")?;
        match change(self) {
            Ok(out) => {
                self.execute_batch("RELEASE SAVEPOINT write_op")?;
                Ok(out)
            }
            Err(e) => {
                self.execute_batch("ROLLBACK TO SAVEPOINT write_op; RELEASE SAVEPOINT write_op")?;
                Err(e)
            }
        }
    }
}

/// A statement bound to its connection.
pub struct Statement<'c> {
    conn: &'c Connection,
    sql: String,
}

impl Statement<'_> {
    /// Runs it; returns how many rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        self.conn.run(&self.sql, params.into_values())
    }

    /// Runs it and maps its first row; [`Error::NoRows`] if it has none.
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.conn.query_row(&self.sql, params, map)
    }

    /// Runs it and maps every row.
    pub fn query_map<T, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: impl Params,
        map: F,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.rows(&self.sql, params.into_values())?;
        Ok(rows.iter().map(map).collect::<Vec<_>>().into_iter())
    }

    /// Runs it; its rows, to read in order.
    pub fn query(&mut self, params: impl Params) -> Result<Rows> {
        let rows = self.conn.rows(&self.sql, params.into_values())?;
        Ok(Rows {
            rows: rows.into_iter(),
            current: None,
        })
    }
}
