//! A frame's arguments and local variables, read from its slots (`f_localsplus` up to 3.10,
//! the interpreter frame's `localsplus` from 3.11) and named from its code object. Values are
//! shown as short reprs (see [`Objects::repr`]); cells are followed to their contents.

use crate::error::{Error, Result};
use crate::model::Local;
use crate::process::{Fields, RemoteAddr};
use crate::python::frames::FrameRef;
use crate::python::layout::LocalsLayout;
use crate::python::objects::Objects;
use crate::python::strings;

/// Most slots read from one frame.
const MAX_SLOTS: u64 = 1 << 14;

/// Reads an `int` field of a code object.
fn code_i32(objects: &Objects, code: RemoteAddr, offset: u64) -> Result<u64> {
    let value = objects.mem().read_u32(code.offset(offset)?)? as i32;
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_SLOTS)
        .ok_or_else(|| Error::corrupt(format!("code object count {value} at {code}")))
}

/// The frame's arguments (first, in order) and the locals that have a value.
pub fn frame_locals(objects: &Objects, at: FrameRef) -> Result<Vec<Local>> {
    let v = objects.values();
    let mem = objects.mem();
    let code = at.code;
    let flags = mem.read_u32(code.offset(v.code_flags)?)?;
    let mut args = code_i32(objects, code, v.code_argcount)?;
    if let Some(kwonly) = v.code_kwonlyargcount {
        args += code_i32(objects, code, kwonly)?;
    }
    args += u64::from(flags & v.varargs_flags.0 != 0) + u64::from(flags & v.varargs_flags.1 != 0);

    // Every slot's name (null for a hidden one) and whether it may hold a cell; where the
    // slots start; the tag bits of a slot's reference.
    let (slots, slots_at, tag_bits): (Vec<(RemoteAddr, bool)>, RemoteAddr, u64) = match &v.locals {
        LocalsLayout::Objects {
            localsplus,
            nlocals,
            varnames,
            cellvars,
            freevars,
        } => {
            let nlocals = code_i32(objects, code, *nlocals)?;
            let mut names = objects.tuple_items(mem.read_addr(code.offset(*varnames)?)?)?;
            names.truncate(nlocals as usize);
            let plain = names.len();
            for tuple in [cellvars, freevars] {
                names.extend(objects.tuple_items(mem.read_addr(code.offset(*tuple)?)?)?);
            }
            let slots = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| (name, i >= plain))
                .collect();
            (slots, at.frame.offset(*localsplus)?, 0)
        }
        LocalsLayout::Interpreter {
            localsplus,
            nlocalsplus,
            names,
            kinds,
            cell_kinds,
            hidden_kind,
            tag_bits,
        } => {
            let n = code_i32(objects, code, *nlocalsplus)?;
            let names = objects.tuple_items(mem.read_addr(code.offset(*names)?)?)?;
            let (kinds, _) = strings::read_bytes_prefix(
                mem,
                &objects.layout().object,
                mem.read_addr(code.offset(*kinds)?)?,
                n as usize,
            )?;
            let slots = names
                .into_iter()
                .take(n as usize)
                .enumerate()
                .map(|(i, name)| {
                    let kind = kinds.get(i).copied().unwrap_or(0);
                    // Hidden slots (comprehension temporaries) are not shown.
                    let name = if kind & hidden_kind != 0 {
                        RemoteAddr::NULL
                    } else {
                        name
                    };
                    (name, kind & cell_kinds != 0)
                })
                .collect();
            (slots, at.frame.offset(*localsplus)?, *tag_bits)
        }
    };
    let raw = mem.read_vec(slots_at, slots.len() * 8)?;

    let mut out = Vec::new();
    for (i, (name, maybe_cell)) in slots.into_iter().enumerate() {
        if name.is_null() {
            continue;
        }
        let raw = raw.u64_at(i as u64 * 8)?;
        let value = if tag_bits != 0 && raw & 3 == 3 {
            // 3.14+: a small int tagged into the reference itself.
            Some(((raw as i64) >> 2).to_string())
        } else {
            let mut obj = RemoteAddr(raw & !tag_bits);
            if !obj.is_null() && maybe_cell && objects.type_name(obj).is_ok_and(|t| t == "cell") {
                obj = mem.read_addr(obj.offset(v.cell_ref)?)?;
            }
            (!obj.is_null()).then(|| objects.repr(obj))
        };
        // An argument without a value is still an argument; a local without one is unset.
        let is_arg = (i as u64) < args;
        if value.is_none() && !is_arg {
            continue;
        }
        out.push(Local {
            name: objects
                .name(name)
                .unwrap_or_else(|e| format!("<unreadable name: {e}>")),
            value: value.unwrap_or_else(|| "<unset>".into()),
            is_arg,
        });
    }
    Ok(out)
}
