//! What the user watches while sampling: the progress line (and, later, the live `top` view).

pub mod progress;
