//! Many rows in one statement, written the way each engine takes them best. PostgreSQL binds
//! one array per column and reads them back with `UNNEST`: a batch of any size is one
//! statement whose text never changes (prepared once, then reused), where multi-row `VALUES`
//! took hundreds of parameters each in statements of at most a hundred rows. SQLite has no
//! arrays: multi-row `VALUES`, a bounded number of rows per statement.
//!
//! Each function pushes the rows only, in the place of a `VALUES` list; the statement around
//! them is written once, by its caller, for both engines.

use secrecy::ExposeSecret;
use sqlx::QueryBuilder;

use super::{NewAuditRecord, NewUser};

pub(super) trait BulkRows: sqlx::Database {
    /// Rows per statement: SQLite's far below its limit on bound parameters; PostgreSQL's
    /// arrays have none.
    const ROWS_PER_STATEMENT: usize;

    /// The table `v` of one column, `column1`: the names.
    fn push_names<'a>(query: &mut QueryBuilder<'a, Self>, names: &[&'a str]);

    /// The rows of `users (name, password_hash, creation_ts, admin, is_guest, user_type,
    /// deactivated, locked, approved)`.
    fn push_users<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]);

    /// The rows of `profiles (user_id, displayname, full_user_id)`.
    fn push_profiles<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]);

    /// The rows of `homekey_audit_log (ts_ms, actor, action, target, details)`.
    fn push_audit<'a>(query: &mut QueryBuilder<'a, Self>, records: &[&'a NewAuditRecord]);

    /// Rows given column by column (every column as long as the others), for a table whose
    /// rows are copied as they are (the migrations from and to Synapse).
    fn push_columns<'a>(query: &mut QueryBuilder<'a, Self>, columns: Vec<Column<'a>>);
}

/// One column of [`BulkRows::push_columns`], in the type it is bound as.
pub(super) enum Column<'a> {
    Text(Vec<Option<&'a str>>),
    BigInt(Vec<Option<i64>>),
    SmallInt(Vec<i16>),
    Bool(Vec<Option<bool>>),
}

impl Column<'_> {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::BigInt(v) => v.len(),
            Column::SmallInt(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }
}

/// [`BulkRows::ROWS_PER_STATEMENT`] of `tx`'s engine.
pub(super) fn rows_per_statement<DB: BulkRows>(_tx: &sqlx::Transaction<'_, DB>) -> usize {
    DB::ROWS_PER_STATEMENT
}

impl BulkRows for sqlx::Sqlite {
    const ROWS_PER_STATEMENT: usize = 100;

    fn push_names<'a>(query: &mut QueryBuilder<'a, Self>, names: &[&'a str]) {
        query.push("(");
        query.push_values(names, |mut row, name| {
            row.push_bind(*name);
        });
        query.push(") AS v");
    }

    fn push_users<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]) {
        query.push_values(users, |mut row, user| {
            row.push_bind(user.user_id.as_str())
                .push_bind(user.password_hash.as_ref().map(|h| h.expose_secret()))
                .push_bind(user.creation_ts)
                .push_bind(i16::from(user.admin))
                .push_bind(i16::from(user.is_guest))
                .push_bind(user.user_type.as_deref())
                .push("0, FALSE, TRUE");
        });
    }

    fn push_profiles<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]) {
        query.push_values(users, |mut row, user| {
            row.push_bind(user.user_id.localpart())
                .push_bind(user.displayname.as_deref())
                .push_bind(user.user_id.as_str());
        });
    }

    fn push_audit<'a>(query: &mut QueryBuilder<'a, Self>, records: &[&'a NewAuditRecord]) {
        query.push_values(records, |mut row, record| {
            row.push_bind(record.ts_ms)
                .push_bind(record.actor.as_str())
                .push_bind(record.action.as_str())
                .push_bind(record.target.as_deref())
                .push_bind(record.details.to_string());
        });
    }

    fn push_columns<'a>(query: &mut QueryBuilder<'a, Self>, columns: Vec<Column<'a>>) {
        let rows = columns.first().map_or(0, Column::len);
        query.push_values(0..rows, |mut row, i| {
            for column in &columns {
                match column {
                    Column::Text(v) => row.push_bind(v[i]),
                    Column::BigInt(v) => row.push_bind(v[i]),
                    Column::SmallInt(v) => row.push_bind(v[i]),
                    Column::Bool(v) => row.push_bind(v[i]),
                };
            }
        });
    }
}

impl BulkRows for sqlx::Postgres {
    const ROWS_PER_STATEMENT: usize = usize::MAX;

    fn push_names<'a>(query: &mut QueryBuilder<'a, Self>, names: &[&'a str]) {
        query.push("UNNEST(");
        query.push_bind(names.to_vec());
        query.push(") AS v(column1)");
    }

    fn push_users<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]) {
        query.push("SELECT *, 0, FALSE, TRUE FROM UNNEST(");
        query
            .separated(", ")
            .push_bind(column(users, |u| u.user_id.as_str()))
            .push_bind(column(users, |u| {
                u.password_hash.as_ref().map(|h| h.expose_secret())
            }))
            .push_bind(column(users, |u| u.creation_ts))
            .push_bind(column(users, |u| i16::from(u.admin)))
            .push_bind(column(users, |u| i16::from(u.is_guest)))
            .push_bind(column(users, |u| u.user_type.as_deref()));
        query.push(")");
    }

    fn push_profiles<'a>(query: &mut QueryBuilder<'a, Self>, users: &[&'a NewUser]) {
        query.push("SELECT * FROM UNNEST(");
        query
            .separated(", ")
            .push_bind(column(users, |u| u.user_id.localpart()))
            .push_bind(column(users, |u| u.displayname.as_deref()))
            .push_bind(column(users, |u| u.user_id.as_str()));
        query.push(")");
    }

    fn push_audit<'a>(query: &mut QueryBuilder<'a, Self>, records: &[&'a NewAuditRecord]) {
        query.push("SELECT * FROM UNNEST(");
        query
            .separated(", ")
            .push_bind(column(records, |r| r.ts_ms))
            .push_bind(column(records, |r| r.actor.as_str()))
            .push_bind(column(records, |r| r.action.as_str()))
            .push_bind(column(records, |r| r.target.as_deref()))
            .push_bind(column(records, |r| r.details.to_string()));
        query.push(")");
    }

    fn push_columns<'a>(query: &mut QueryBuilder<'a, Self>, columns: Vec<Column<'a>>) {
        query.push("SELECT * FROM UNNEST(");
        let mut list = query.separated(", ");
        for column in columns {
            match column {
                Column::Text(v) => list.push_bind(v),
                Column::BigInt(v) => list.push_bind(v),
                Column::SmallInt(v) => list.push_bind(v),
                Column::Bool(v) => list.push_bind(v),
            };
        }
        query.push(")");
    }
}

/// One column of `rows`, as the array PostgreSQL binds.
fn column<'a, R, T>(rows: &[&'a R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(|row| value(row)).collect()
}
