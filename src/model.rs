//! Pure data produced by one sample: frames, thread stacks, and the sample itself. No I/O.

use std::sync::Arc;

/// What a frame shows of its function: shared by every frame of one code object, so that a
/// frame costs one reference count rather than one per string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameCode {
    /// The function's qualified name (`Class.method`, `outer.<locals>.inner`; plain name before 3.11).
    pub name: Arc<str>,
    /// The file name as the code object holds it.
    pub filename: Arc<str>,
    /// The file name shortened to the package-relative path (unless full names were asked for).
    pub short_filename: Option<Arc<str>>,
    /// The first line of the function (`co_firstlineno`).
    pub first_line: u32,
}

impl FrameCode {
    /// The file name to show: the short one when present.
    pub fn display_filename(&self) -> &str {
        self.display_file()
    }

    /// [`FrameCode::display_filename`], shared rather than copied.
    pub fn display_file(&self) -> &Arc<str> {
        self.short_filename.as_ref().unwrap_or(&self.filename)
    }
}

/// One frame of a Python stack, as the user sees it. Its function's fields (`name`,
/// `filename`, `short_filename`, `first_line`) are reached through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// The function.
    pub code: Arc<FrameCode>,
    /// The line being executed; 0 when unknown.
    pub line: u32,
    /// What kind of frame this is.
    pub kind: FrameKind,
}

impl std::ops::Deref for Frame {
    type Target = FrameCode;
    fn deref(&self) -> &FrameCode {
        &self.code
    }
}

/// Ordinary frames and markers the walker inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// A Python function.
    Python,
    /// Stands in for the outermost frames beyond the depth cap.
    Truncated,
}

impl Frame {
    /// A Python frame of a function of its own (tests, and anything not read by a walker).
    pub fn python(
        name: &str,
        filename: &str,
        short_filename: Option<&str>,
        line: u32,
        first_line: u32,
    ) -> Frame {
        Frame {
            code: Arc::new(FrameCode {
                name: Arc::from(name),
                filename: Arc::from(filename),
                short_filename: short_filename.map(Arc::from),
                first_line,
            }),
            line,
            kind: FrameKind::Python,
        }
    }

    /// A marker frame standing for the frames cut off by the depth cap.
    pub fn truncated(depth_cap: usize) -> Frame {
        Frame {
            kind: FrameKind::Truncated,
            ..Frame::python(
                &format!("[stack truncated at {depth_cap} frames]"),
                "",
                None,
                0,
                0,
            )
        }
    }
}

/// One thread's stack in one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSample {
    /// Python's own thread id (`threading.get_ident()`).
    pub thread_id: u64,
    /// The kernel thread id, when the interpreter records it.
    pub os_thread_id: Option<u32>,
    /// True when the OS reported the thread running (not sleeping or blocked), or it held the
    /// GIL.
    pub active: bool,
    /// True when the thread held the GIL.
    pub holds_gil: bool,
    /// The thread's name from the target's `threading` module, when it has one.
    pub name: Option<Arc<str>>,
    /// The stack, innermost frame first.
    pub frames: Vec<Frame>,
    /// Each frame's arguments and locals, in the order of `frames`, when they were asked for
    /// (`dump --locals`); empty otherwise.
    pub locals: Vec<Vec<Local>>,
}

/// An argument or local variable of a frame, with a short repr of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// The variable's name.
    pub name: String,
    /// A short repr of its value (see `python::objects`).
    pub value: String,
    /// True for the function's arguments (including `*args` and `**kwargs`).
    pub is_arg: bool,
}

/// Every thread of one process at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The process sampled.
    pub pid: u32,
    /// The process's command line, set when several processes are sampled together
    /// (`--subprocesses`) so that each one's stacks can be rooted at it.
    pub command_line: Option<Arc<str>>,
    /// Its threads, in the interpreter's order.
    pub threads: Vec<ThreadSample>,
}
