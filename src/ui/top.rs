//! The live `top` view: a header with the run's counts and a table of functions, redrawn in
//! place on the terminal's alternate screen (ratatui over crossterm).
//!
//! [`run`] owns the terminal while the view is up: raw mode and the alternate screen are
//! entered by [`Screen`] and left when it drops, on every way out, and a panic hook leaves
//! them first so a panic's message lands on the ordinary screen. The data comes from a
//! [`Feed`], which the command implements over the sampling thread; everything here is
//! drawing and keys. [`render`] and [`handle_key`] are pure, so they are tested without a
//! terminal.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table};
use ratatui::{Frame, Terminal};

use crate::output::functions::{percent, Grouping, Row, SortBy, Totals};

/// The header's facts, since the start or the last reset.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// The target's pid (the first process's, when several are sampled).
    pub pid: u32,
    /// Its command line.
    pub command_line: String,
    /// Its Python version (`3.12.1`).
    pub python: String,
    /// Samples taken (ticks that read the target).
    pub samples: u64,
    /// Ticks dropped because of an error.
    pub errors: u64,
    /// Ticks per second actually reached.
    pub rate_reached: f64,
    /// Ticks per second asked for.
    pub rate_wanted: f64,
    /// How long the counts have been running.
    pub elapsed: Duration,
    /// The function table's tallies: GIL and activity shares.
    pub totals: Totals,
    /// Threads in the latest sample of every process.
    pub threads: usize,
    /// Processes sampled.
    pub processes: usize,
    /// Set once sampling has ended: why (the target exited, and how).
    pub ended: Option<String>,
}

/// Everything one drawing shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The header.
    pub header: Header,
    /// The table, grouped and sorted as the view asked.
    pub rows: Vec<Row>,
    /// Seconds one sample stands for (1 / rate), for the time columns.
    pub interval: f64,
}

/// What the view asks of the command that feeds it.
pub trait Feed {
    /// The counts now, grouped and sorted as asked.
    fn snapshot(&self, grouping: Grouping, sort: SortBy) -> Snapshot;
    /// Starts counting afresh.
    fn reset(&self);
    /// True once sampling has failed (an error or a panic): the view closes at once so the
    /// command can report it.
    fn failed(&self) -> bool;
}

/// How the view was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `q` or Ctrl-C on the view.
    Quit,
    /// The stop flag was set (SIGINT from outside the view).
    Interrupted,
    /// Sampling failed; the command reports why.
    Failed,
}

/// The user's choices: sorting, grouping, help, scrolling.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The column rows are sorted by.
    pub sort: SortBy,
    /// Rows per line or per function.
    pub grouping: Grouping,
    /// The help overlay is shown.
    pub help: bool,
    /// The first row shown.
    pub scroll: usize,
    /// Table rows that fitted at the last drawing (a page, for PgUp/PgDn).
    page: usize,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Draw again now (the view changed).
    Redraw,
    /// Reset the counts, then draw.
    Reset,
    /// Close the view.
    Quit,
}

/// The keys, for the help overlay and the documentation.
pub const KEYS: &[(&str, &str)] = &[
    ("1 2 3 4", "sort by %Own, %Total, OwnTime, TotalTime"),
    ("L", "one row per line / per function"),
    ("R", "reset the counts"),
    ("Up Down PgUp PgDn", "scroll (Home, End)"),
    ("? h", "show or hide this help"),
    ("q Ctrl-C", "quit"),
];

/// Applies one key to the view.
pub fn handle_key(view: &mut View, key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let page = view.page.max(1);
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Action::Quit,
        KeyCode::Char('q' | 'Q') => Action::Quit,
        KeyCode::Char(c @ '1'..='4') => {
            view.sort = SortBy::ALL[(c as u8 - b'1') as usize];
            view.scroll = 0;
            Action::Redraw
        }
        KeyCode::Char('l' | 'L') => {
            view.grouping = view.grouping.toggled();
            view.scroll = 0;
            Action::Redraw
        }
        KeyCode::Char('r' | 'R') => {
            view.scroll = 0;
            Action::Reset
        }
        KeyCode::Char('?' | 'h' | 'H') => {
            view.help = !view.help;
            Action::Redraw
        }
        KeyCode::Esc if view.help => {
            view.help = false;
            Action::Redraw
        }
        KeyCode::Up => scroll(view, view.scroll.saturating_sub(1)),
        KeyCode::Down => scroll(view, view.scroll.saturating_add(1)),
        KeyCode::PageUp => scroll(view, view.scroll.saturating_sub(page)),
        KeyCode::PageDown => scroll(view, view.scroll.saturating_add(page)),
        KeyCode::Home => scroll(view, 0),
        // Clamped to the last page when drawn.
        KeyCode::End => scroll(view, usize::MAX),
        _ => Action::None,
    }
}

fn scroll(view: &mut View, to: usize) -> Action {
    view.scroll = to;
    Action::Redraw
}

/// Draws the whole view into `frame`.
pub fn render(frame: &mut Frame, view: &mut View, snapshot: &Snapshot) {
    let [header, table] =
        Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(view, snapshot)), header);
    render_table(frame, table, view, snapshot);
    if view.help {
        render_help(frame);
    }
}

fn header_lines(view: &View, snapshot: &Snapshot) -> Vec<Line<'static>> {
    let h = &snapshot.header;
    let t = &h.totals;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let field = |name: &str, value: String| {
        vec![
            Span::raw(format!("{name}: ")),
            Span::styled(value, bold),
            Span::raw("   "),
        ]
    };
    let mut counts = vec![Span::raw(format!("Python {}   ", h.python))];
    counts.extend(field("Samples", h.samples.to_string()));
    counts.extend(field(
        "Rate",
        format!("{:.1}/s of {}", h.rate_reached, h.rate_wanted),
    ));
    counts.extend(field("Errors", h.errors.to_string()));
    counts.extend(field(
        "Elapsed",
        format!("{:.1} s", h.elapsed.as_secs_f64()),
    ));
    let mut activity = field("GIL", format!("{:.1}%", percent(t.gil_samples, t.samples)));
    activity.extend(field(
        "Active",
        format!("{:.1}%", percent(t.active_thread_samples, t.thread_samples)),
    ));
    activity.extend(field("Threads", h.threads.to_string()));
    activity.extend(field("Processes", h.processes.to_string()));
    let status = match &h.ended {
        Some(why) => Line::styled(
            format!("Sampling ended: {why}. The last counts stay on screen; q quits."),
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        None => Line::raw(format!(
            "Sorted by {}, one row per {}.   Keys: 1-4 sort, L lines/functions, R reset, \
             ? help, q quit",
            view.sort.title(),
            match view.grouping {
                Grouping::Line => "line",
                Grouping::Function => "function",
            }
        )),
    };
    vec![
        Line::styled(format!("Process {}: {}", h.pid, h.command_line), bold),
        Line::from(counts),
        Line::from(activity),
        status,
    ]
}

fn render_table(frame: &mut Frame, area: Rect, view: &mut View, snapshot: &Snapshot) {
    // One line for the column titles.
    view.page = usize::from(area.height.saturating_sub(1));
    let rows = &snapshot.rows;
    view.scroll = view.scroll.min(rows.len().saturating_sub(view.page));
    let function_title = match view.grouping {
        Grouping::Line => "Function (file:line)",
        Grouping::Function => "Function (file:first line)",
    };
    let titles = SortBy::ALL
        .iter()
        .map(|&sort| {
            let style = if sort == view.sort {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new()
            };
            Cell::from(Line::from(sort.title()).right_aligned()).style(style)
        })
        .chain([Cell::from(function_title)]);
    let header = TableRow::new(titles).style(Style::new().add_modifier(Modifier::REVERSED));
    let whole = snapshot.header.totals.thread_samples;
    let seconds = |count: u64| format!("{:.2}s", count as f64 * snapshot.interval);
    let share = |count: u64| format!("{:.1}%", percent(count, whole));
    let shown = rows.iter().skip(view.scroll).take(view.page).map(|row| {
        TableRow::new([
            Cell::from(Line::from(share(row.own)).right_aligned()),
            Cell::from(Line::from(share(row.total)).right_aligned()),
            Cell::from(Line::from(seconds(row.own)).right_aligned()),
            Cell::from(Line::from(seconds(row.total)).right_aligned()),
            Cell::from(row.label()),
        ])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let table = Table::new(shown, widths).header(header).column_spacing(2);
    frame.render_widget(table, area);
    if rows.is_empty() && area.height > 2 {
        let note = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        let text = match snapshot.header.samples {
            0 => "  Waiting for the first sample.".to_string(),
            n => format!(
                "  No Python stacks in {n} samples (idle threads are left out unless --idle)."
            ),
        };
        frame.render_widget(Paragraph::new(text), note);
    } else if rows.len() > view.page && area.height > 0 {
        // Where the visible rows are, on the title line's right-hand end.
        let text = format!(
            " rows {}-{} of {} ",
            view.scroll + 1,
            (view.scroll + view.page).min(rows.len()),
            rows.len()
        );
        let width = (text.len() as u16).min(area.width);
        let at = Rect {
            x: area.x + area.width - width,
            width,
            height: 1,
            ..area
        };
        frame.render_widget(
            Paragraph::new(text).style(Style::new().add_modifier(Modifier::REVERSED)),
            at,
        );
    }
}

fn render_help(frame: &mut Frame) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| Line::from(format!(" {keys:<18} {what}")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        " %Own: share of thread-samples running the function itself;",
    ));
    lines.push(Line::raw(
        " %Total: share with it anywhere on the stack (once per sample).",
    ));
    lines.push(Line::raw(" Times are samples x the sampling interval."));
    let area = frame.area();
    let width = 72.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let at = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, at);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help: keys of sampler top ")),
        at,
    );
}

/// Shows the view until the user quits, sampling fails, or `stop` is set; redraws every
/// `refresh` and after every key. The terminal is restored before this returns, whatever
/// happens.
pub fn run(feed: &dyn Feed, refresh: Duration, stop: &AtomicBool) -> io::Result<Exit> {
    /// The longest wait for a key, so that a stop request or a failure is seen promptly.
    const POLL: Duration = Duration::from_millis(100);
    let mut screen = Screen::enter()?;
    let mut view = View::default();
    let mut due = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Exit::Interrupted);
        }
        // A panic elsewhere has already given the terminal back: stop drawing on it.
        if feed.failed() || !ON_SCREEN.load(Ordering::SeqCst) {
            return Ok(Exit::Failed);
        }
        if Instant::now() >= due {
            let snapshot = feed.snapshot(view.grouping, view.sort);
            screen
                .terminal
                .draw(|frame| render(frame, &mut view, &snapshot))?;
            due = Instant::now() + refresh;
        }
        if event::poll(due.saturating_duration_since(Instant::now()).min(POLL))? {
            match event::read()? {
                Event::Key(key) => match handle_key(&mut view, key) {
                    Action::Quit => return Ok(Exit::Quit),
                    Action::Reset => {
                        feed.reset();
                        due = Instant::now();
                    }
                    Action::Redraw => due = Instant::now(),
                    Action::None => {}
                },
                Event::Resize(..) => due = Instant::now(),
                _ => {}
            }
        }
    }
}

/// True while the terminal is in raw mode on the alternate screen.
static ON_SCREEN: AtomicBool = AtomicBool::new(false);

/// The terminal in raw mode on the alternate screen, the cursor hidden; all undone on drop.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Switches the terminal over, after installing (once) the panic hook that switches it
    /// back.
    pub fn enter() -> io::Result<Screen> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                leave_screen();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        ON_SCREEN.store(true, Ordering::SeqCst);
        let entered =
            crossterm::execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)
                .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                leave_screen();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        leave_screen();
    }
}

/// Gives the terminal back: leaves the alternate screen, shows the cursor, ends raw mode.
/// Does nothing when the view is not up, so every exit path may call it.
pub fn leave_screen() {
    if ON_SCREEN.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
        let _ = disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use std::sync::Arc;

    fn row(name: &str, line: u32, own: u64, total: u64) -> Row {
        Row {
            name: Arc::from(name),
            file: Arc::from("app.py"),
            line,
            own,
            total,
        }
    }

    fn snapshot(rows: Vec<Row>) -> Snapshot {
        Snapshot {
            header: Header {
                pid: 4242,
                command_line: "python3 app.py --fast".into(),
                python: "3.12.1".into(),
                samples: 200,
                errors: 1,
                rate_reached: 99.5,
                rate_wanted: 100.0,
                elapsed: Duration::from_millis(2010),
                totals: Totals {
                    samples: 200,
                    gil_samples: 150,
                    thread_samples: 400,
                    active_thread_samples: 300,
                },
                threads: 2,
                processes: 1,
                ended: None,
            },
            rows,
            interval: 0.01,
        }
    }

    /// The screen's text, one string per line, right-trimmed.
    fn draw(view: &mut View, snapshot: &Snapshot, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, view, snapshot)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_header_and_table_show_counts_shares_and_times() {
        let snap = snapshot(vec![row("hot", 3, 300, 300), row("main", 9, 0, 400)]);
        let screen = draw(&mut View::default(), &snap, 100, 12);
        assert_eq!(screen[0], "Process 4242: python3 app.py --fast");
        assert!(screen[1].starts_with("Python 3.12.1   Samples: 200   Rate: 99.5/s of 100"));
        assert!(
            screen[1].contains("Errors: 1   Elapsed: 2.0 s"),
            "{}",
            screen[1]
        );
        assert_eq!(
            screen[2],
            "GIL: 75.0%   Active: 75.0%   Threads: 2   Processes: 1"
        );
        assert!(screen[3].starts_with("Sorted by %Own, one row per line."));
        assert_eq!(
            screen[5],
            "   %Own   %Total    OwnTime   TotalTime  Function (file:line)"
        );
        assert_eq!(
            screen[6],
            "  75.0%    75.0%      3.00s       3.00s  hot (app.py:3)"
        );
        assert_eq!(
            screen[7],
            "   0.0%   100.0%      0.00s       4.00s  main (app.py:9)"
        );
    }

    #[test]
    fn an_ended_run_says_so_and_an_empty_table_explains_itself() {
        let mut snap = snapshot(vec![]);
        snap.header.ended = Some("the command exited with exit status: 3".into());
        let screen = draw(&mut View::default(), &snap, 100, 10);
        assert!(
            screen[3].starts_with(
                "Sampling ended: the command exited with exit status: 3. The last counts"
            ),
            "{}",
            screen[3]
        );
        assert_eq!(
            screen[7],
            "  No Python stacks in 200 samples (idle threads are left out unless --idle)."
        );
        snap.header.samples = 0;
        let screen = draw(&mut View::default(), &snap, 100, 10);
        assert_eq!(screen[7], "  Waiting for the first sample.");
    }

    #[test]
    fn keys_sort_group_reset_help_and_quit() {
        let mut view = View::default();
        assert_eq!(
            handle_key(&mut view, key(KeyCode::Char('2'))),
            Action::Redraw
        );
        assert_eq!(view.sort, SortBy::TotalShare);
        handle_key(&mut view, key(KeyCode::Char('4')));
        assert_eq!(view.sort, SortBy::TotalTime);
        handle_key(&mut view, key(KeyCode::Char('3')));
        assert_eq!(view.sort, SortBy::OwnTime);
        handle_key(&mut view, key(KeyCode::Char('1')));
        assert_eq!(view.sort, SortBy::OwnShare);
        handle_key(
            &mut view,
            KeyEvent::new(KeyCode::Char('L'), KeyModifiers::SHIFT),
        );
        assert_eq!(view.grouping, Grouping::Function);
        handle_key(&mut view, key(KeyCode::Char('l')));
        assert_eq!(view.grouping, Grouping::Line);
        assert_eq!(
            handle_key(&mut view, key(KeyCode::Char('R'))),
            Action::Reset
        );
        handle_key(&mut view, key(KeyCode::Char('?')));
        assert!(view.help);
        handle_key(&mut view, key(KeyCode::Esc));
        assert!(!view.help);
        handle_key(&mut view, key(KeyCode::Char('h')));
        assert!(view.help);
        assert_eq!(handle_key(&mut view, key(KeyCode::Char('x'))), Action::None);
        assert_eq!(handle_key(&mut view, key(KeyCode::Char('q'))), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(handle_key(&mut view, ctrl_c), Action::Quit);
        assert_eq!(handle_key(&mut view, key(KeyCode::Char('c'))), Action::None);
    }

    #[test]
    fn the_sorted_column_and_grouping_show_in_the_view() {
        let snap = snapshot(vec![row("main", 1, 0, 400)]);
        let mut view = View::default();
        handle_key(&mut view, key(KeyCode::Char('2')));
        handle_key(&mut view, key(KeyCode::Char('L')));
        let screen = draw(&mut view, &snap, 100, 10);
        assert!(
            screen[3].starts_with("Sorted by %Total, one row per function."),
            "{}",
            screen[3]
        );
        assert!(
            screen[5].ends_with("Function (file:first line)"),
            "{}",
            screen[5]
        );
    }

    #[test]
    fn scrolling_stays_within_the_rows() {
        let rows: Vec<Row> = (0..30)
            .map(|i| row("f", i + 1, 30 - u64::from(i), 30))
            .collect();
        let snap = snapshot(rows);
        let mut view = View::default();
        // 12 lines: 5 of header, 1 of titles, 6 rows.
        let screen = draw(&mut view, &snap, 100, 12);
        assert!(screen[5].ends_with("rows 1-6 of 30"), "{}", screen[5]);
        handle_key(&mut view, key(KeyCode::PageDown));
        let screen = draw(&mut view, &snap, 100, 12);
        assert!(screen[6].ends_with("f (app.py:7)"), "{}", screen[6]);
        handle_key(&mut view, key(KeyCode::End));
        let screen = draw(&mut view, &snap, 100, 12);
        assert!(screen[5].ends_with("rows 25-30 of 30"), "{}", screen[5]);
        assert!(screen[11].ends_with("f (app.py:30)"), "{}", screen[11]);
        handle_key(&mut view, key(KeyCode::Up));
        assert_eq!(view.scroll, 23);
        handle_key(&mut view, key(KeyCode::Home));
        assert_eq!(view.scroll, 0);
        handle_key(&mut view, key(KeyCode::PageUp));
        assert_eq!(view.scroll, 0);
    }

    #[test]
    fn help_lists_every_key_over_the_table() {
        let snap = snapshot(vec![row("hot", 3, 300, 300)]);
        let mut view = View {
            help: true,
            ..View::default()
        };
        let screen = draw(&mut view, &snap, 100, 30).join("\n");
        assert!(screen.contains("Help: keys of sampler top"), "{screen}");
        for (keys, what) in KEYS {
            assert!(
                screen.contains(keys) && screen.contains(what),
                "{keys}: {screen}"
            );
        }
        // Small terminals do not make drawing fail.
        draw(&mut view, &snap, 20, 4);
        draw(&mut view, &snap, 1, 1);
    }
}
