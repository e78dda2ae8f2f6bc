//! Schema changes: a deterministic diff of two column lists. Removals and type changes break
//! readers; additions and relaxed nullability do not. A column dropped while another of the
//! same type and nullability appears is reported as a rename (which still breaks readers).

use serde::{Deserialize, Serialize};

/// One column of a table as the source reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type as reported by the engine (compared case-insensitively, whitespace-trimmed).
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

/// One difference between two schemas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SchemaChange {
    /// A new column.
    Added {
        /// The new column.
        column: Column,
    },
    /// A column disappeared.
    Removed {
        /// The removed column.
        column: Column,
    },
    /// A column disappeared and one of the same type and nullability appeared.
    Renamed {
        /// The old column.
        from: Column,
        /// The new column.
        to: Column,
    },
    /// A column changed type.
    TypeChanged {
        /// Column name.
        name: String,
        /// Old type.
        from: String,
        /// New type.
        to: String,
    },
    /// A column changed nullability.
    NullabilityChanged {
        /// Column name.
        name: String,
        /// Whether it is nullable now.
        nullable: bool,
    },
}

impl SchemaChange {
    /// Whether readers of the table can break: removal, rename, type change, or a column
    /// becoming nullable (readers that assumed non-null values).
    pub fn is_breaking(&self) -> bool {
        match self {
            SchemaChange::Added { .. } => false,
            SchemaChange::Removed { .. } | SchemaChange::Renamed { .. } | SchemaChange::TypeChanged { .. } => true,
            SchemaChange::NullabilityChanged { nullable, .. } => *nullable,
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            SchemaChange::Added { column } => {
                format!("column `{}` ({}) added", column.name, column.data_type)
            }
            SchemaChange::Removed { column } => {
                format!("column `{}` ({}) removed", column.name, column.data_type)
            }
            SchemaChange::Renamed { from, to } => {
                format!("column `{}` renamed to `{}` ({})", from.name, to.name, to.data_type)
            }
            SchemaChange::TypeChanged { name, from, to } => {
                format!("column `{name}` changed type from {from} to {to}")
            }
            SchemaChange::NullabilityChanged { name, nullable } => {
                let state = if *nullable { "nullable" } else { "not null" };
                format!("column `{name}` is now {state}")
            }
        }
    }
}

/// Differences from `before` to `after`, in a stable order: renames, removals, type and
/// nullability changes (in `before` order), then additions (in `after` order).
pub fn diff(before: &[Column], after: &[Column]) -> Vec<SchemaChange> {
    let find = |columns: &[Column], name: &str| columns.iter().position(|c| c.name == name);
    let mut removed: Vec<&Column> = before.iter().filter(|c| find(after, &c.name).is_none()).collect();
    let mut added: Vec<&Column> = after.iter().filter(|c| find(before, &c.name).is_none()).collect();
    let mut changes = Vec::new();
    // Pair each removed column with the first unpaired added one of the same shape.
    let mut index = 0;
    while index < removed.len() {
        let old = removed[index];
        if let Some(position) = added.iter().position(|new| new.same_type(old) && new.nullable == old.nullable) {
            let new = added.remove(position);
            changes.push(SchemaChange::Renamed { from: old.clone(), to: new.clone() });
            removed.remove(index);
        } else {
            index += 1;
        }
    }
    for column in removed {
        changes.push(SchemaChange::Removed { column: column.clone() });
    }
    for old in before {
        let Some(position) = find(after, &old.name) else {
            continue;
        };
        let new = &after[position];
        if !new.same_type(old) {
            changes.push(SchemaChange::TypeChanged {
                name: old.name.clone(),
                from: old.data_type.clone(),
                to: new.data_type.clone(),
            });
        }
        if new.nullable != old.nullable {
            changes.push(SchemaChange::NullabilityChanged { name: old.name.clone(), nullable: new.nullable });
        }
    }
    for column in added {
        changes.push(SchemaChange::Added { column: column.clone() });
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

    #[test]
    fn identical_schemas_have_no_changes() {
        assert!(diff(&orders(), &orders()).is_empty());
        // Type names compare case-insensitively.
        let mut upper = orders();
        upper[0].data_type = "BIGINT".into();
        assert!(diff(&orders(), &upper).is_empty());
    }

    #[test]
    fn added_column_is_benign() {
        let mut after = orders();
        after.push(Column::new("note", "text", true));
        let changes = diff(&orders(), &after);
        assert_eq!(changes.len(), 1);
        assert!(matches!(&changes[0], SchemaChange::Added { column } if column.name == "note"));
        assert!(!changes[0].is_breaking());
        assert_eq!(changes[0].describe(), "column `note` (text) added");
    }

    #[test]
    fn removal_and_type_change_are_breaking() {
        let mut after = orders();
        after.remove(1);
        after[1].data_type = "text".into();
        let changes = diff(&orders(), &after);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(matches!(&changes[0], SchemaChange::Removed { column } if column.name == "customer"));
        assert!(matches!(&changes[1], SchemaChange::TypeChanged { name, .. } if name == "amount"));
        assert!(changes.iter().all(SchemaChange::is_breaking));
    }

    #[test]
    fn drop_plus_add_of_same_shape_is_a_rename() {
        let mut after = orders();
        after[1].name = "customer_name".into();
        let changes = diff(&orders(), &after);
        assert_eq!(
            changes,
            vec![SchemaChange::Renamed {
                from: Column::new("customer", "text", true),
                to: Column::new("customer_name", "text", true),
            }]
        );
        assert!(changes[0].is_breaking());
        // A drop plus an add of a different type stays a removal and an addition.
        after[1].data_type = "integer".into();
        let changes = diff(&orders(), &after);
        assert!(matches!(changes[0], SchemaChange::Removed { .. }));
        assert!(matches!(changes[1], SchemaChange::Added { .. }));
    }

    #[test]
    fn nullability_changes_break_only_when_relaxed() {
        let mut after = orders();
        after[0].nullable = true;
        after[1].nullable = false;
        let changes = diff(&orders(), &after);
        assert_eq!(changes.len(), 2);
        assert!(changes[0].is_breaking(), "id became nullable");
        assert!(!changes[1].is_breaking(), "customer became not null");
    }
}
