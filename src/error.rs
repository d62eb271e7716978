//! Error kinds that decide the exit code.
//!
//! Everything is an `anyhow::Error` with context; what differs is *who* must act. A [`UsageError`]
//! anywhere in the chain means the user's input (flags, config, Dockerfile, ignore file) is wrong and
//! the process exits with 2, like clap does for bad flags. Anything else (I/O, registry) exits with 1.

use std::fmt;

/// Marks an error the user fixes by changing their input. Exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Build an `anyhow::Error` that exits with 2.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Early-return a [`UsageError`] with a formatted message.
#[macro_export]
macro_rules! bail_usage {
    ($($arg:tt)*) => {
        return Err($crate::error::usage(format!($($arg)*)))
    };
}

/// The process exit code for an error: 2 for user input problems, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        2
    } else {
        1
    }
}
