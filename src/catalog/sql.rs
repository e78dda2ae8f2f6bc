//! Lineage from SQL: the tables a view's definition reads, parsed with `sqlparser` (the copy
//! DataFusion re-exports). Pure: the caller reads the definitions from the warehouse catalog
//! (PostgreSQL `pg_views`, MySQL/MariaDB `information_schema.views`, SQLite `sqlite_master`).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{ObjectName, Query, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use datafusion::sql::sqlparser::parser::Parser;

use crate::config::SourceKind;
use crate::measure::TableRef;

/// Collects relations and the names of common table expressions (which are not tables).
#[derive(Default)]
struct Relations {
    names: Vec<Vec<String>>,
    ctes: BTreeSet<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let parts = relation.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
        self.names.push(parts);
        ControlFlow::Continue(())
    }
}

/// The tables a view definition (a `SELECT`, or a whole `CREATE VIEW`) reads, deduplicated, in
/// order of first mention. Unqualified names are in `default_schema` (PostgreSQL prints a name
/// unqualified when the reading session's `search_path` finds it: `public`); three-part names
/// drop their database/catalog. Common table expressions are not tables.
pub fn view_sources(definition: &str, kind: SourceKind, default_schema: &str) -> Result<Vec<TableRef>, String> {
    let dialect: Box<dyn Dialect> = match kind {
        SourceKind::Mysql => Box::new(MySqlDialect {}),
        SourceKind::Sqlite => Box::new(SQLiteDialect {}),
        _ => Box::new(PostgreSqlDialect {}),
    };
    let statements = Parser::parse_sql(dialect.as_ref(), definition).map_err(|e| e.to_string())?;
    let mut relations = Relations::default();
    let _ = statements.visit(&mut relations);
    let mut out: Vec<TableRef> = Vec::new();
    for parts in relations.names {
        let table = match parts.as_slice() {
            [name] if relations.ctes.contains(&name.to_lowercase()) => continue,
            [name] => TableRef::new(default_schema, name),
            [.., schema, name] => TableRef::new(schema, name),
            [] => continue,
        };
        if !out.contains(&table) {
            out.push(table);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str, kind: SourceKind) -> Vec<String> {
        view_sources(sql, kind, "public").unwrap().iter().map(TableRef::qualified).collect()
    }

    #[test]
    fn tables_of_a_view_definition() {
        // As pg_views prints one: unqualified names in the search path, joins, a subquery, a CTE.
        let sql = " WITH recent AS (SELECT o.id FROM orders o WHERE o.at > now() - '1 day'::interval)\n \
                   SELECT r.id, c.name FROM recent r JOIN crm.customers c ON c.id = r.id \
                   WHERE r.id IN (SELECT order_id FROM public.refunds) UNION ALL SELECT id, name FROM orders;";
        assert_eq!(names(sql, SourceKind::Postgres), ["public.orders", "crm.customers", "public.refunds"]);
        // As MariaDB prints one: backquoted, database-qualified.
        let sql = "select `shop`.`orders`.`id` AS `id`,`s`.`total` AS `total` from (`shop`.`orders` join `stats`.`totals` `s` on(`s`.`id` = `shop`.`orders`.`id`))";
        assert_eq!(names(sql, SourceKind::Mysql), ["shop.orders", "stats.totals"]);
        assert!(view_sources("SELECT * FROM (orders", SourceKind::Postgres, "public").is_err());
    }
}
