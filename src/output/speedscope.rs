//! Placeholder until the format lands.

use std::io::Write;

use crate::error::{Error, Result};
use crate::output::{Profile, Recording};

/// Writes `profile`.
pub fn write(_profile: &Profile, _recording: &Recording, _out: &mut dyn Write) -> Result<()> {
    Err(Error::corrupt("speedscope: not written yet"))
}
