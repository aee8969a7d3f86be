//! Thread names, read from the target's `threading` module: `sys.modules["threading"]._active`
//! maps each thread's ident (the pthread id that the thread state records as `thread_id`) to
//! its `Thread` object, whose name is the instance attribute `_name` (`_Thread__name` in 2.7).
//!
//! A lookup reads `sys.modules`, the module's dict, `_active` and one attribute per thread, so
//! [`ThreadNames`] caches the result and looks again only when a thread it has not named
//! appears, at most once a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::process::{ReadMemory, RemoteAddr};
use crate::python::objects::Objects;
use crate::python::Interpreter;

/// How often a lookup may run while some thread is still unnamed.
const RETRY: Duration = Duration::from_secs(1);

/// The name attribute of `threading.Thread`.
const NAME_ATTRS: [&str; 2] = ["_name", "_Thread__name"];

/// `ident → name` for every thread in `threading._active` of the interpreter at `interp`.
/// A process that never imported `threading` has no names: an empty map.
pub fn names_in(objects: &Objects, interp: RemoteAddr) -> Result<HashMap<u64, String>> {
    let mut names = HashMap::new();
    let modules = objects
        .mem()
        .read_addr(interp.offset(objects.values().interp_modules)?)?;
    if modules.is_null() {
        return Ok(names);
    }
    let Some(threading) = objects.dict_get(modules, "threading")? else {
        return Ok(names);
    };
    let Some(active) = objects.module_attr(threading, "_active")? else {
        return Ok(names);
    };
    for (ident, thread) in objects.dict_items(active)? {
        let Some(ident) = objects.int_u64(ident)? else {
            continue;
        };
        for attr in NAME_ATTRS {
            if let Some(name) = objects.instance_attr(thread, attr)? {
                names.insert(ident, objects.name(name)?);
                break;
            }
        }
    }
    Ok(names)
}

/// Cached thread names for one process.
#[derive(Debug, Default)]
pub struct ThreadNames {
    /// Names found at the last lookup; a thread absent from the map had none.
    names: HashMap<u64, Arc<str>>,
    /// When the last lookup ran.
    last: Option<Instant>,
}

impl ThreadNames {
    /// The name of each thread in `idents` (in order). The names are looked up again when a
    /// thread has none yet (it is new, or the last lookup failed) and the last lookup is more
    /// than a second old, so a failing lookup costs at most once a second.
    pub fn get(
        &mut self,
        interpreter: &Interpreter,
        mem: &dyn ReadMemory,
        idents: &[u64],
    ) -> Vec<Option<Arc<str>>> {
        let unnamed = idents.iter().any(|i| !self.names.contains_key(i));
        if unnamed && self.last.is_none_or(|t| t.elapsed() >= RETRY) {
            self.last = Some(Instant::now());
            match interpreter.thread_names(mem) {
                Ok(names) => {
                    self.names = names.into_iter().map(|(k, v)| (k, Arc::from(v))).collect()
                }
                Err(e) => log::debug!("thread names unavailable: {e}"),
            }
        }
        idents.iter().map(|i| self.names.get(i).cloned()).collect()
    }
}
