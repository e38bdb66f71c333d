//! The words the catalog stores for statuses and flags, as types: stored
//! as the same TEXT they always were, compared as enums.

use serde::{Serialize, Serializer};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::resource::{Location, PointFlag};

/// Where a point is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type, Serialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PointStatus {
    /// Being taken or copied; never restored from.
    Running,
    /// Its data is durable and recorded: usable.
    Complete,
    /// The snapshot or copy failed (or its process died).
    Failed,
    /// Prune started deleting it: no longer usable.
    Deleting,
    /// Prune deleted its data.
    Deleted,
    /// Was complete, until `lifeboat verify` or a drill found its data
    /// missing or not what the catalog recorded: not usable, and counted
    /// as never having been (it may never have been restorable). A verify
    /// that finds the data whole again makes it complete again.
    Damaged,
}

impl std::fmt::Display for PointStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PointStatus {
    /// The word the catalog stores and `--json` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            PointStatus::Running => "running",
            PointStatus::Complete => "complete",
            PointStatus::Failed => "failed",
            PointStatus::Deleting => "deleting",
            PointStatus::Deleted => "deleted",
            PointStatus::Damaged => "damaged",
        }
    }
}

/// How a backup run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type, Serialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished (or its process died: the plan's next
    /// backup, or the daemon at start-up, marks it failed).
    Running,
    /// Every point and copy is complete.
    Succeeded,
    /// Some points or copies failed, others are complete.
    Partial,
    /// No point was taken, or the run was interrupted.
    Failed,
}

impl RunStatus {
    /// The word the catalog stores and `--json` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// A flag this build does not know (a catalog written by a newer one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown point flag `{0}`")]
pub struct UnknownFlag(String);

/// A point's flags, stored as one comma-separated TEXT column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(Vec<PointFlag>);

impl Flags {
    /// The set of `flags`, duplicates dropped, in first-seen order.
    pub fn new(flags: impl IntoIterator<Item = PointFlag>) -> Flags {
        let mut out = Flags::default();
        for f in flags {
            out.insert(f);
        }
        out
    }

    /// Adds a flag once.
    pub fn insert(&mut self, flag: PointFlag) {
        if !self.0.contains(&flag) {
            self.0.push(flag);
        }
    }

    /// Whether `flag` is set.
    pub fn contains(&self, flag: PointFlag) -> bool {
        self.0.contains(&flag)
    }

    /// Whether no flag is set (the column holds an empty string).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The flags, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = PointFlag> + '_ {
        self.0.iter().copied()
    }

    fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn from_text(text: &str) -> Result<Flags, UnknownFlag> {
        text.split(',')
            .filter(|f| !f.is_empty())
            .map(|f| PointFlag::parse(f).ok_or_else(|| UnknownFlag(f.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(Flags)
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| f.as_str()))
    }
}

/// A value kept as text in the catalog, whichever engine holds it.
macro_rules! text_column {
    ($ty:ty, $to_text:expr, $from_text:expr) => {
        impl<DB: Database> Type<DB> for $ty
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<DB>>::decode(value)?;
                let from_text: fn(&str) -> Result<$ty, BoxDynError> = $from_text;
                from_text(text)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            String: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                let to_text: fn(&$ty) -> Result<String, BoxDynError> = $to_text;
                <String as Encode<DB>>::encode(to_text(self)?, buf)
            }
        }
    };
}

text_column!(Flags, |f| Ok(f.to_text()), |t| Ok(Flags::from_text(t)?));
text_column!(Location, |l| Ok(serde_json::to_string(l)?), |t| Ok(
    serde_json::from_str(t)?
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_their_column_text() {
        let flags = Flags::new([
            PointFlag::ChangedWhileRead,
            PointFlag::Shrunk,
            PointFlag::Shrunk,
        ]);
        assert_eq!(flags.to_text(), "changed-while-read,shrunk");
        assert_eq!(Flags::from_text("changed-while-read,shrunk"), Ok(flags));
        assert_eq!(Flags::from_text(""), Ok(Flags::default()));
        assert!(Flags::from_text("shrunk,sparkly").is_err());
    }
}
