//! Schema changes: the one deterministic diff of two column lists, used by the agent's schema
//! monitor (re-exported by `measure`) and by the benchmark. Columns are matched by name. A
//! column that disappeared while one of the same type and nullability appeared is reported as
//! a rename. Removals, renames and type changes break readers; additions and nullability
//! changes do not (a check can fail on them with `fail_on_any_change`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One column of a table as the engine's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type as the catalog writes it (compared case-insensitively, whitespace-trimmed).
    pub data_type: String,
    /// Whether the column accepts nulls.
    pub nullable: bool,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>, nullable: bool) -> Self {
        Self { name: name.into(), data_type: data_type.into(), nullable }
    }

    fn same_type(&self, other: &Column) -> bool {
        self.data_type.trim().eq_ignore_ascii_case(other.data_type.trim())
    }
}

/// One difference between two schemas (stored with each schema snapshot, tagged `change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// A new column.
    Added { column: String, data_type: String },
    /// A column disappeared.
    Removed { column: String, data_type: String },
    /// A column disappeared and one of the same type and nullability appeared in the same scan.
    Renamed { from: String, to: String, data_type: String },
    /// A column changed type.
    TypeChanged { column: String, from: String, to: String },
    /// A column became nullable or not nullable.
    NullabilityChanged { column: String, nullable: bool },
}

impl SchemaChange {
    /// Whether readers of the table can break: a column removed, renamed or retyped.
    pub fn is_breaking(&self) -> bool {
        matches!(self, SchemaChange::Removed { .. } | SchemaChange::Renamed { .. } | SchemaChange::TypeChanged { .. })
    }
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaChange::Added { column, data_type } => write!(f, "column `{column}` added ({data_type})"),
            SchemaChange::Removed { column, data_type } => write!(f, "column `{column}` removed (was {data_type})"),
            SchemaChange::Renamed { from, to, data_type } => {
                write!(f, "column `{from}` renamed to `{to}` ({data_type})")
            }
            SchemaChange::TypeChanged { column, from, to } => {
                write!(f, "column `{column}` changed type from {from} to {to}")
            }
            SchemaChange::NullabilityChanged { column, nullable } => {
                write!(f, "column `{column}` became {}", if *nullable { "nullable" } else { "not nullable" })
            }
        }
    }
}

/// The changes that turn `before` into `after`, in the order of `before`'s columns (a rename
/// where its old column was), then the additions in the order of `after`. A removed column is
/// paired with the first added column of the same type and nullability not paired yet.
pub fn diff(before: &[Column], after: &[Column]) -> Vec<SchemaChange> {
    let find = |columns: &[Column], name: &str| columns.iter().position(|c| c.name == name);
    let mut added: Vec<&Column> = after.iter().filter(|c| find(before, &c.name).is_none()).collect();
    let mut changes = Vec::new();
    for old in before {
        let Some(position) = find(after, &old.name) else {
            match added.iter().position(|new| new.same_type(old) && new.nullable == old.nullable) {
                Some(paired) => {
                    let new = added.remove(paired);
                    changes.push(SchemaChange::Renamed {
                        from: old.name.clone(),
                        to: new.name.clone(),
                        data_type: new.data_type.clone(),
                    });
                }
                None => {
                    changes.push(SchemaChange::Removed { column: old.name.clone(), data_type: old.data_type.clone() })
                }
            }
            continue;
        };
        let new = &after[position];
        if !new.same_type(old) {
            changes.push(SchemaChange::TypeChanged {
                column: old.name.clone(),
                from: old.data_type.clone(),
                to: new.data_type.clone(),
            });
        }
        if new.nullable != old.nullable {
            changes.push(SchemaChange::NullabilityChanged { column: old.name.clone(), nullable: new.nullable });
        }
    }
    for column in added {
        changes.push(SchemaChange::Added { column: column.name.clone(), data_type: column.data_type.clone() });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> Vec<Column> {
        vec![
            Column::new("id", "bigint", false),
            Column::new("customer", "text", true),
            Column::new("amount", "numeric(10,2)", true),
        ]
    }

    fn described(changes: &[SchemaChange]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn identical_schemas_have_no_changes() {
        assert!(diff(&orders(), &orders()).is_empty());
        // Type names compare case-insensitively; column order alone is no change.
        let mut other = orders();
        other[0].data_type = "BIGINT".into();
        other.reverse();
        assert!(diff(&orders(), &other).is_empty());
    }

    #[test]
    fn schema_diff_names_every_kind_of_change() {
        let before = vec![
            Column::new("id", "bigint", false),
            Column::new("amount", "integer", true),
            Column::new("note", "text", true),
            Column::new("legacy", "jsonb", true),
        ];
        let after = vec![
            Column::new("id", "bigint", true),
            Column::new("amount", "numeric", true),
            Column::new("comment", "text", true),
            Column::new("created_at", "timestamp", false),
        ];
        let changes = diff(&before, &after);
        assert_eq!(
            described(&changes),
            vec![
                "column `id` became nullable",
                "column `amount` changed type from integer to numeric",
                "column `note` renamed to `comment` (text)",
                "column `legacy` removed (was jsonb)",
                "column `created_at` added (timestamp)",
            ]
        );
        let breaking: Vec<bool> = changes.iter().map(SchemaChange::is_breaking).collect();
        assert_eq!(breaking, vec![false, true, true, true, false]);
    }

    #[test]
    fn drop_plus_add_of_same_shape_is_a_rename() {
        let mut after = orders();
        after[1].name = "customer_name".into();
        let changes = diff(&orders(), &after);
        assert_eq!(
            changes,
            vec![SchemaChange::Renamed {
                from: "customer".into(),
                to: "customer_name".into(),
                data_type: "text".into()
            }]
        );
        assert!(changes[0].is_breaking());
        // Another type, or another nullability: a removal and an addition.
        after[1].data_type = "integer".into();
        assert_eq!(
            described(&diff(&orders(), &after)),
            vec!["column `customer` removed (was text)", "column `customer_name` added (integer)"]
        );
        after[1].data_type = "text".into();
        after[1].nullable = false;
        assert!(matches!(diff(&orders(), &after)[0], SchemaChange::Removed { .. }));
        // Two columns dropped, one of their shape added: the first is paired.
        let before = vec![Column::new("a", "text", true), Column::new("b", "text", true)];
        let after = vec![Column::new("c", "text", true)];
        assert_eq!(
            described(&diff(&before, &after)),
            vec!["column `a` renamed to `c` (text)", "column `b` removed (was text)"]
        );
    }

    #[test]
    fn nullability_changes_do_not_break_readers() {
        let mut after = orders();
        after[0].nullable = true;
        after[1].nullable = false;
        let changes = diff(&orders(), &after);
        assert_eq!(described(&changes), vec!["column `id` became nullable", "column `customer` became not nullable"]);
        assert!(changes.iter().all(|c| !c.is_breaking()));
    }

    #[test]
    fn changes_keep_their_stored_form() {
        // Schema snapshots store their changes as JSON: the form written before renames existed
        // still reads.
        let stored = r#"[{"change":"removed","column":"note","data_type":"text"},{"change":"type_changed","column":"amount","from":"integer","to":"numeric"},{"change":"nullability_changed","column":"id","nullable":true},{"change":"added","column":"c","data_type":"text"}]"#;
        let changes: Vec<SchemaChange> = serde_json::from_str(stored).unwrap();
        assert_eq!(changes.len(), 4);
        assert_eq!(serde_json::to_string(&changes).unwrap(), stored);
        let renamed = SchemaChange::Renamed { from: "a".into(), to: "b".into(), data_type: "text".into() };
        assert_eq!(
            serde_json::to_string(&renamed).unwrap(),
            r#"{"change":"renamed","from":"a","to":"b","data_type":"text"}"#
        );
    }
}
