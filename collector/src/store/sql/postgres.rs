//! The PostgreSQL side of [`super::Connection`]: the `postgres` client (tokio-postgres driven on
//! the calling thread), with TLS by rustls, a prepared-statement cache, `?N` placeholders
//! rewritten to `$N`, and values converted to the types the server asks for.

use super::{Error, Result, Row, Value};
use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use rustls::pki_types::pem::PemObject;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The advisory lock every write transaction holds until it ends (see the module comment of
/// [`super`]): ASCII "cnsntry".
const WRITE_LOCK: i64 = 0x0063_6e73_6e74_7279;

/// Where and how to connect: a libpq-style URL (`postgres://user@host:port/db?sslmode=...`).
/// `sslmode=require` verifies the server's certificate against `sslrootcert=FILE` (PEM); the
/// password comes from the URL or, better (never in `ps`), from `PGPASSWORD`.
#[derive(Clone)]
pub struct PostgresTarget {
    config: postgres::Config,
    root_cert: Option<PathBuf>,
    url_without_password: String,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_without_password)
    }
}

impl fmt::Display for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_without_password)
    }
}

impl PostgresTarget {
    /// Reads a `postgres://` URL; `env_password` (from `PGPASSWORD`) is used when the URL has
    /// none.
    pub fn parse(url: &str, env_password: Option<&str>) -> std::result::Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslrootcert", path)) => root_cert = Some(PathBuf::from(path)),
                _ => kept.push(pair),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config = postgres::Config::from_str(&rebuilt)
            .map_err(|e| format!("--store: not a PostgreSQL URL ({e})"))?;
        if config.get_password().is_none() {
            if let Some(password) = env_password {
                config.password(password);
            }
        }
        if config.get_ssl_mode() == postgres::config::SslMode::Require && root_cert.is_none() {
            return Err(
                "--store: sslmode=require needs sslrootcert=FILE (the CA certificate that \
                        signed the server's, PEM) to verify the server"
                    .to_owned(),
            );
        }
        Ok(PostgresTarget {
            url_without_password: without_password(url),
            config,
            root_cert,
        })
    }

    /// Whether the URL itself carries a password (then it shows in `ps`).
    pub fn url_has_password(url: &str) -> bool {
        without_password(url) != url
    }
}

/// `url` with any password in its authority replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn tls_config(root_cert: &PathBuf) -> Result<rustls::ClientConfig> {
    let pem = std::fs::read(root_cert)
        .map_err(|e| Error::Database(format!("sslrootcert {}: {e}", root_cert.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Database(format!("sslrootcert {}: {e}", root_cert.display())))?;
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| Error::Database(format!("sslrootcert {}: {e}", root_cert.display())))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Database(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn error(e: &postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Database(format!("postgres: {} ({})", db.message(), db.code().code())),
        None => Error::Database(format!("postgres: {e}")),
    }
}

/// One client and its cache of prepared statements.
pub(super) struct PostgresConnection {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl PostgresConnection {
    pub(super) fn connect(target: &PostgresTarget) -> Result<PostgresConnection> {
        let client = match &target.root_cert {
            Some(root_cert)
                if target.config.get_ssl_mode() != postgres::config::SslMode::Disable =>
            {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(root_cert)?);
                target.config.connect(tls)
            }
            _ => target.config.connect(postgres::NoTls),
        }
        .map_err(|e| error(&e))?;
        Ok(PostgresConnection {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        })
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(&placeholders(sql))
            .map_err(|e| error(&e))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs `call` with the cached statement of `sql` and `values` bound to it.
    fn with_statement<T>(
        &self,
        sql: &str,
        values: &[Value],
        call: impl FnOnce(
            &mut postgres::Client,
            &postgres::Statement,
            &[&(dyn ToSql + Sync)],
        ) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let statement = self.statement(sql)?;
        let bound: Vec<Bound<'_>> = values.iter().map(Bound).collect();
        let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as _).collect();
        call(&mut self.client.borrow_mut(), &statement, &params).map_err(|e| error(&e))
    }

    pub(super) fn execute(&self, sql: &str, values: &[Value]) -> Result<usize> {
        let changed = self.with_statement(sql, values, |client, statement, params| {
            client.execute(statement, params)
        })?;
        usize::try_from(changed).map_err(|_| Error::Database("row count overflow".to_owned()))
    }

    pub(super) fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<Row<'static>>> {
        let rows = self.with_statement(sql, values, |client, statement, params| {
            client.query(statement, params)
        })?;
        rows.iter().map(read_row).collect()
    }

    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        self.client
            .borrow_mut()
            .batch_execute(sql)
            .map_err(|e| error(&e))
    }

    pub(super) fn close(self) -> Result<()> {
        self.client.into_inner().close().map_err(|e| error(&e))
    }

    pub(super) fn begin_write(&self) -> Result<()> {
        self.batch(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
        ))
    }
}

/// `?N` placeholders as `$N`, and bare `?` numbered in order; quoted text left alone.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let (mut quoted, mut bare) = (false, 0);
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    bare += 1;
                    out.push_str(&bare.to_string());
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A value bound as the type the server inferred for its placeholder.
#[derive(Debug)]
struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot store {:?} in a {ty} column", self.0).into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n).map_err(|_| wrong())?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n).map_err(|_| wrong())?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().as_str().to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Text(text) => match *ty {
                Type::BYTEA => text.as_bytes().to_sql(ty, out),
                _ => text.as_str().to_sql(ty, out),
            },
            Value::Blob(bytes) => match *ty {
                Type::BYTEA => bytes.as_slice().to_sql(ty, out),
                _ => Err(wrong()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn read_row(row: &postgres::Row) -> Result<Row<'static>> {
    let values = row
        .columns()
        .iter()
        .enumerate()
        .map(|(i, column)| read_value(row, i, column.type_()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Row::new(values))
}

fn read_value(row: &postgres::Row, i: usize, ty: &Type) -> Result<Value> {
    let value = match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map(|v| v.map(Value::Integer)),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|n| Value::Integer(n.into()))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map(|v| v.map(|n| Value::Integer(n.into()))),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(|b| Value::Integer(b.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map(|v| v.map(Value::Blob)),
        Type::VOID => return Ok(Value::Null),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Value::Text)),
    }
    .map_err(|e| Error::Database(format!("postgres: column {i} ({ty}): {e}")))?;
    Ok(value.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(placeholders("a = ?1 AND b = ?12"), "a = $1 AND b = $12");
        assert_eq!(
            placeholders("IN (?, ?) AND s > ?"),
            "IN ($1, $2) AND s > $3"
        );
        assert_eq!(placeholders("x = '?' AND y = ?2"), "x = '?' AND y = $2");
    }

    #[test]
    fn passwords_stay_out_of_what_is_shown() {
        let target = PostgresTarget::parse("postgres://u:secret@h:5/db", None).unwrap();
        assert_eq!(target.to_string(), "postgres://u:***@h:5/db");
        assert!(PostgresTarget::url_has_password("postgres://u:secret@h/db"));
        assert!(!PostgresTarget::url_has_password("postgres://u@h/db"));
        let from_env = PostgresTarget::parse("postgres://u@h/db", Some("pw")).unwrap();
        assert_eq!(from_env.config.get_password(), Some(&b"pw"[..]));
        assert!(PostgresTarget::parse("postgres://u@h/db?sslmode=require", None).is_err());
    }
}
