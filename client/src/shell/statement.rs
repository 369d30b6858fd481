//! The statements of the `kvsh` language, as data.
//!
//! A [`Statement`] is what one `;`-separated piece of a shell line means, after parsing and
//! before anything runs. Keys and values are raw bytes: the parser has already undone quoting
//! and escapes. Displaying a statement gives its canonical text (upper-case keywords, keys and
//! values through [`format_token`]), which parses back to the same statement.

use std::fmt;

use crate::shell::format::format_token;

/// The consistency of a session, as `SET CONSISTENCY` names it (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// Every read goes through the shard leader under a shared lock: strictly serializable.
    Sequential,
    /// Read-only work reads a causally safe snapshot from any replica, without locks.
    Causal,
}

impl Consistency {
    /// The lower-case name used in statements and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::Sequential => "sequential",
            Consistency::Causal => "causal",
        }
    }

    /// The consistency with this name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Consistency> {
        if name.eq_ignore_ascii_case("sequential") {
            Some(Consistency::Sequential)
        } else if name.eq_ignore_ascii_case("causal") {
            Some(Consistency::Causal)
        } else {
            None
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One statement of the shell (DESIGN §7).
///
/// Outside `BEGIN` ... `END`, a data statement (`READ`, `WRITE`, `DELETE`, `SCAN`) runs as a
/// one-statement transaction; running it is the REPL's business, not this type's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Statement {
    /// `BEGIN` or `BEGIN READ ONLY`: starts an interactive transaction.
    Begin {
        /// True for `BEGIN READ ONLY`: the transaction rejects writes, and in a causal session
        /// reads one snapshot from any replica.
        read_only: bool,
    },
    /// `READ k [FOR UPDATE]`: the value of one key, or nothing. `FOR UPDATE` (in a transaction)
    /// locks the key exclusively, for a key the transaction will write.
    Read {
        /// The key; never empty.
        key: Vec<u8>,
        /// `FOR UPDATE` was given.
        for_update: bool,
    },
    /// `WRITE k v`: sets a key (buffered until the transaction commits).
    Write {
        /// The key; never empty.
        key: Vec<u8>,
        /// The new value; may be empty.
        value: Vec<u8>,
    },
    /// `DELETE k`: removes a key.
    Delete {
        /// The key; never empty.
        key: Vec<u8>,
    },
    /// `SCAN from to [LIMIT n]`: the pairs with `from <= key < to`, in key order.
    Scan {
        /// Inclusive start; empty means the start of the key space.
        from: Vec<u8>,
        /// Exclusive end; empty means the end of the key space (as in the proto's `ScanRequest`).
        to: Vec<u8>,
        /// The most rows to return; `None` for no limit.
        limit: Option<u32>,
    },
    /// `END` or `COMMIT`: commits the open transaction.
    End,
    /// `ABORT` or `ROLLBACK`: ends the open transaction without effect.
    Abort,
    /// `SET CONSISTENCY sequential|causal`: the session's consistency from now on.
    SetConsistency(Consistency),
    /// `SHOW TOKEN`: prints the session's causal token.
    ShowToken,
    /// `SET TOKEN t`: adopts a causal token. The text is opaque here; the library validates it.
    SetToken(String),
    /// `STATUS`: the connected node's status block.
    Status,
    /// `LOCKS`: the connected node's current lock waits.
    Locks,
    /// `HELP`: the help block.
    Help,
}

impl Statement {
    /// The statement's name in canonical (upper-case, unaliased) form, e.g. `"SET TOKEN"`;
    /// handy in messages such as "`SCAN` is not allowed here".
    pub fn name(&self) -> &'static str {
        match self {
            Statement::Begin { .. } => "BEGIN",
            Statement::Read { .. } => "READ",
            Statement::Write { .. } => "WRITE",
            Statement::Delete { .. } => "DELETE",
            Statement::Scan { .. } => "SCAN",
            Statement::End => "END",
            Statement::Abort => "ABORT",
            Statement::SetConsistency(_) => "SET CONSISTENCY",
            Statement::ShowToken => "SHOW TOKEN",
            Statement::SetToken(_) => "SET TOKEN",
            Statement::Status => "STATUS",
            Statement::Locks => "LOCKS",
            Statement::Help => "HELP",
        }
    }

    /// True for the statements that read or write data (`READ`, `WRITE`, `DELETE`, `SCAN`):
    /// the ones that run inside a transaction, or as one of their own outside `BEGIN`.
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Statement::Read { .. }
                | Statement::Write { .. }
                | Statement::Delete { .. }
                | Statement::Scan { .. }
        )
    }
}

impl fmt::Display for Statement {
    /// Writes the canonical text of the statement; it parses back to an equal statement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Begin { read_only: false } => f.write_str("BEGIN"),
            Statement::Begin { read_only: true } => f.write_str("BEGIN READ ONLY"),
            Statement::Read { key, for_update: false } => write!(f, "READ {}", format_token(key)),
            Statement::Read { key, for_update: true } => {
                write!(f, "READ {} FOR UPDATE", format_token(key))
            }
            Statement::Write { key, value } => {
                write!(f, "WRITE {} {}", format_token(key), format_token(value))
            }
            Statement::Delete { key } => write!(f, "DELETE {}", format_token(key)),
            Statement::Scan { from, to, limit } => {
                write!(f, "SCAN {} {}", format_token(from), format_token(to))?;
                match limit {
                    Some(limit) => write!(f, " LIMIT {limit}"),
                    None => Ok(()),
                }
            }
            Statement::End => f.write_str("END"),
            Statement::Abort => f.write_str("ABORT"),
            Statement::SetConsistency(consistency) => write!(f, "SET CONSISTENCY {consistency}"),
            Statement::ShowToken => f.write_str("SHOW TOKEN"),
            Statement::SetToken(token) => write!(f, "SET TOKEN {}", format_token(token.as_bytes())),
            Statement::Status => f.write_str("STATUS"),
            Statement::Locks => f.write_str("LOCKS"),
            Statement::Help => f.write_str("HELP"),
        }
    }
}
