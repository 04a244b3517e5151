// SPDX-License-Identifier: GPL-2.0
//! What clonectl tells the user when something fails: one sentence that names
//! the device and says what to do. It becomes exit status 1.

/// A failure, as the message to print after `clonectl: `.
pub struct Fail(pub String);

/// clonectl's result type.
pub type Res<T> = Result<T, Fail>;

/// Fails with `msg`.
pub fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail(msg.into()))
}
