//! `-f summary`: the text table, written to standard output with `-o -`.

use super::*;

/// `(own %, total %, own s, total s)` of the row whose label starts with `label`.
fn row(table: &str, label: &str) -> (f64, f64, f64, f64) {
    let line = table
        .lines()
        .find(|l| {
            l.split("  ")
                .last()
                .unwrap()
                .trim_start()
                .starts_with(label)
        })
        .unwrap_or_else(|| panic!("no row {label}:\n{table}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .take(4)
        .map(|w| w.trim_end_matches('%').parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

#[test]
fn summary_lists_the_busiest_frames_with_the_known_split() {
    let python = target_python("3.13");
    let target = Target::start(&python, "formats.py", &[]);
    let pid = target.pid.to_string();
    let out = run_sampler(&[
        "record", "-p", &pid, "-d", "3", "-r", "200", "-f", "summary", "-o", "-",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("formats.py"), "{table}");
    assert!(
        lines[1].contains(" samples (")
            && lines[1].contains("Hz reached of 200 Hz asked")
            && lines[1].ends_with(" errors"),
        "{table}"
    );
    assert!(text(&out.stderr).contains("to standard output"));
    // The innermost frame is almost always `spin`, at its loop.
    let spin = row(
        &table,
        &format!("spin (formats.py:{})", marker_line("formats.py", "spin")),
    );
    assert!(spin.0 > 80.0 && spin.0 <= spin.1, "{table}");
    let first_row = lines[4];
    assert!(first_row.contains("spin (formats.py:"), "{table}");
    let heavy = row(
        &table,
        &format!("heavy (formats.py:{})", marker_line("formats.py", "heavy")),
    );
    let light = row(
        &table,
        &format!("light (formats.py:{})", marker_line("formats.py", "light")),
    );
    assert_ratio("heavy / light total %", heavy.1, light.1, 3.0, 0.35);
    assert_eq!(heavy.0, 0.0);
    // Times are samples × interval: about 3 s of samples in all, nearly all of them the main
    // thread's (the napper is seen only in the moments it is awake).
    let module = row(&table, "<module>");
    assert!(
        module.1 >= 95.0 && (2.5..=3.5).contains(&module.3),
        "{table}"
    );
    assert!(spin.2 > 0.0 && (spin.2 / spin.3 - spin.0 / spin.1).abs() < 0.01);
}

#[test]
fn summary_rows_follow_the_style_and_the_top_count() {
    let python = target_python("3.8");
    let recorded = record(
        &python,
        "summary",
        "summary.txt",
        "2",
        &["-F", "--top", "3"],
    );
    let table = std::fs::read_to_string(&recorded.path).unwrap();
    let rows: Vec<&str> = table.lines().skip(4).collect();
    assert_eq!(rows.len(), 4, "3 rows and the rest counted:\n{table}");
    assert!(
        rows[3].starts_with("… ") && rows[3].contains("more"),
        "{table}"
    );
    // One row per function, at its `def` line.
    assert!(
        rows[0].ends_with(&format!("spin (formats.py:{})", def_line("spin"))),
        "{table}"
    );
}
