//! The SQLite side of [`super::Connection`]: rusqlite with its prepared-statement cache.

use super::{Error, Result, Row, Value};

/// A rusqlite error as ours.
pub(super) fn error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
        other => Error::Database(format!("sqlite: {other}")),
    }
}

/// Runs one statement with `values`.
pub(super) fn execute(conn: &rusqlite::Connection, sql: &str, values: Vec<Value>) -> Result<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(values)))
        .map_err(error)
}

/// Runs a query with `values`; every row, each column as a [`Value`].
pub(super) fn query(
    conn: &rusqlite::Connection,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<Row<'static>>> {
    let mut statement = conn.prepare_cached(sql).map_err(error)?;
    let columns = statement.column_count();
    let mut rows = statement
        .query(rusqlite::params_from_iter(values))
        .map_err(error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error)? {
        let values = (0..columns)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(error)?;
        out.push(Row::new(values));
    }
    Ok(out)
}
