//! Fixed statements: SQL written out once, with `?` where each bind goes, that Diesel's statement
//! cache prepares once per connection, as it does its own select and insert queries.
//!
//! Diesel marks every `UPDATE` (a changeset may skip its `None` fields, so the SQL can change) and
//! every `sql_query` unsafe to cache: each call builds the SQL again (quoting each identifier) and
//! the database parses it again (PostgreSQL plans it too). On SQLite that was 30k of the 52k
//! instructions of the one `UPDATE` a code exchange makes (`bench/callgrind --only code`). The hot
//! writes (a code consumed, a refresh token used, PostgreSQL's one-statement redemption and
//! rotation) are fixed statements; the rest stay Diesel's DSL.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text};

/// A statement's SQL: one type per text, since the statement cache knows a statement by its type.
pub trait FixedSql: 'static {
    /// `?` marks each bind, in order.
    const SQL: &'static str;
    /// What a row of its answer holds (`()` for a statement that is only executed).
    type Row;
}

/// A bind of a fixed statement.
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    Int(i64),
    Text(&'a str),
    NullText(Option<&'a str>),
}

/// `S`'s SQL with these binds, one per `?`: run with Diesel's `execute` or `get_result`.
#[derive(Debug)]
pub struct Fixed<'a, S> {
    binds: &'a [Bind<'a>],
    statement: PhantomData<S>,
}

impl<'a, S: FixedSql> Fixed<'a, S> {
    pub const fn new(binds: &'a [Bind<'a>]) -> Self {
        Self {
            binds,
            statement: PhantomData,
        }
    }
}

impl<S: FixedSql> Fixed<'_, S> {
    /// Runs the statement on either backend; the number of rows it changed.
    pub fn execute_on(self, conn: &mut super::DbConn) -> QueryResult<usize> {
        use diesel::RunQueryDsl as _;
        super::on_backend!(conn, |c| self.execute(c))
    }
}

impl<S: FixedSql> QueryId for Fixed<'_, S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: FixedSql> Query for Fixed<'_, S> {
    type SqlType = S::Row;
}

impl<S: FixedSql, C> diesel::RunQueryDsl<C> for Fixed<'_, S> {}

impl<S: FixedSql> QueryFragment<diesel::pg::Pg> for Fixed<'_, S> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        walk(S::SQL, self.binds, out)
    }
}

impl<S: FixedSql> QueryFragment<diesel::sqlite::Sqlite> for Fixed<'_, S> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        walk(S::SQL, self.binds, out)
    }
}

/// The SQL with each `?` replaced by the backend's placeholder for the next bind (`$n` on
/// PostgreSQL, `?` on SQLite). As many binds as placeholders, or an error.
fn walk<'b, DB>(
    sql: &'static str,
    binds: &'b [Bind<'_>],
    mut out: AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Text>,
    i64: ToSql<BigInt, DB>,
    str: ToSql<Text, DB>,
    Option<&'b str>: ToSql<Nullable<Text>, DB>,
{
    let mut parts = sql.split('?');
    out.push_sql(parts.next().unwrap_or_default());
    let mut binds = binds.iter();
    for part in parts {
        match binds.next() {
            Some(Bind::Int(v)) => out.push_bind_param::<BigInt, _>(v)?,
            Some(Bind::Text(v)) => out.push_bind_param::<Text, _>(*v)?,
            Some(Bind::NullText(v)) => out.push_bind_param::<Nullable<Text>, _>(v)?,
            None => return Err(count_mismatch()),
        }
        out.push_sql(part);
    }
    if binds.next().is_some() {
        return Err(count_mismatch());
    }
    Ok(())
}

fn count_mismatch() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        "a fixed statement's binds do not match its ? marks".into(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::{InstrumentationEvent, SimpleConnection as _};
    use diesel::prelude::*;

    use super::*;

    struct SetB;
    impl FixedSql for SetB {
        const SQL: &'static str = "UPDATE t SET b = ? WHERE a = ? AND c IS ?";
        type Row = ();
    }

    fn table() -> diesel::SqliteConnection {
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("sqlite");
        c.batch_execute(
            "CREATE TABLE t (a TEXT, b INTEGER, c TEXT); INSERT INTO t VALUES ('x', 0, NULL);",
        )
        .expect("table");
        c
    }

    /// Counts the statements the connection puts in its statement cache.
    fn count_cached(c: &mut diesel::SqliteConnection) -> std::sync::Arc<AtomicUsize> {
        let cached = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = cached.clone();
        c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::CacheQuery { .. }) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        cached
    }

    #[test]
    fn binds_go_where_the_marks_are_and_the_statement_is_cached() {
        let mut c = table();
        let cached = count_cached(&mut c);
        diesel::sql_query("UPDATE t SET b = 0")
            .execute(&mut c)
            .expect("update");
        assert_eq!(
            cached.load(Ordering::Relaxed),
            0,
            "Diesel caches no sql_query (nor update)"
        );
        for n in 1..=3 {
            let changed =
                Fixed::<SetB>::new(&[Bind::Int(n), Bind::Text("x"), Bind::NullText(None)])
                    .execute(&mut c)
                    .expect("update");
            assert_eq!(changed, 1);
        }
        let b: i64 = diesel::dsl::sql::<BigInt>("SELECT b FROM t")
            .get_result(&mut c)
            .expect("b");
        assert_eq!(b, 3);
        assert_eq!(
            cached.load(Ordering::Relaxed),
            1,
            "prepared once, run three times"
        );
        let none = Fixed::<SetB>::new(&[Bind::Int(9), Bind::Text("y"), Bind::NullText(None)])
            .execute(&mut c)
            .expect("update");
        assert_eq!(none, 0, "no row has a = 'y'");
    }

    #[test]
    fn too_few_or_too_many_binds_are_an_error() {
        let mut c = table();
        let few = Fixed::<SetB>::new(&[Bind::Int(1), Bind::Text("x")]).execute(&mut c);
        assert!(few.is_err(), "{few:?}");
        let many = Fixed::<SetB>::new(&[
            Bind::Int(1),
            Bind::Text("x"),
            Bind::NullText(None),
            Bind::Int(2),
        ])
        .execute(&mut c);
        assert!(many.is_err(), "{many:?}");
    }
}
