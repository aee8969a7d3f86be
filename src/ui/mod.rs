//! What the user watches while sampling: the progress line of `record` and the live `top`
//! view.

pub mod progress;
pub mod top;
