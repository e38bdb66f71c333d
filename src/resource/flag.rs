//! Notes on a point: what a kind saw while taking it (data that changed
//! while read, an encrypted snapshot) or what the orchestration concluded
//! (far smaller than the previous point, leftovers removed).

use std::fmt;

/// A note on a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointFlag {
    /// Far smaller than the previous point of its resource (an emptied
    /// source, a wrong mount, ransomware?).
    Shrunk,
    /// Some of the data changed while it was read.
    ChangedWhileRead,
    /// The RDS snapshot is encrypted.
    Encrypted,
    /// A failed point whose leftovers prune removed.
    LeftoversRemoved,
    /// Files or folders disappeared between being listed and being read:
    /// the point holds the rest.
    Vanished,
    /// Sockets, FIFOs or devices were skipped: a point holds files,
    /// folders and links only.
    SpecialSkipped,
    /// Recorded by `catalog rebuild` from its manifest in a vault: bound
    /// to the vault's files as they were then, its completion time is the
    /// manifest's write time.
    Rebuilt,
}

impl PointFlag {
    /// Every flag, in the order they were introduced.
    pub const ALL: [PointFlag; 7] = [
        PointFlag::Shrunk,
        PointFlag::ChangedWhileRead,
        PointFlag::Encrypted,
        PointFlag::LeftoversRemoved,
        PointFlag::Vanished,
        PointFlag::SpecialSkipped,
        PointFlag::Rebuilt,
    ];

    /// The flag's word, as the catalog's `flags` column and `--json` hold
    /// it (`changed-while-read`).
    pub fn as_str(self) -> &'static str {
        match self {
            PointFlag::Shrunk => "shrunk",
            PointFlag::ChangedWhileRead => "changed-while-read",
            PointFlag::Encrypted => "encrypted",
            PointFlag::LeftoversRemoved => "leftovers-removed",
            PointFlag::Vanished => "vanished",
            PointFlag::SpecialSkipped => "special-skipped",
            PointFlag::Rebuilt => "rebuilt",
        }
    }

    /// The flag spelt `text` (as [`PointFlag::as_str`] writes it); `None`
    /// for a word this build does not know.
    pub fn parse(text: &str) -> Option<PointFlag> {
        PointFlag::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

impl fmt::Display for PointFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
