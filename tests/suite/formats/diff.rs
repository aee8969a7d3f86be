//! `sampler diff`: before/after profiles of the workload with its heavy and light parts
//! swapped (30/10 ms, then 10/30 ms): the differential flame graph colours `light` as grown
//! and `heavy` as shrunk, and the text table puts them first with the right signs.

use super::*;

/// Records the workload with the given spins as collapsed stacks.
fn recorded(python: &Python, heavy_ms: &str, light_ms: &str) -> Recorded {
    record_workload(python, &[heavy_ms, light_ms], "raw", "txt", "3", &[])
}

/// The title and fill colour of each of the flame graph's frames whose text starts with
/// `frame`.
fn drawn<'a>(svg: &'a str, frame: &str) -> Vec<(&'a str, (u8, u8, u8))> {
    svg.split("<title>")
        .skip(1)
        .filter(|part| part.starts_with(frame))
        .map(|part| {
            let title = &part[..part.find("</title>").unwrap()];
            let fill = part.split("fill=\"rgb(").nth(1).unwrap();
            let rgb: Vec<u8> = fill[..fill.find(')').unwrap()]
                .split(',')
                .map(|c| c.trim().parse().unwrap())
                .collect();
            (title, (rgb[0], rgb[1], rgb[2]))
        })
        .collect()
}

#[test]
fn diff_shows_what_grew_and_what_shrank() {
    let python = target_python("3.11");
    let before = recorded(&python, "30", "10");
    let after = recorded(&python, "10", "30");
    let (b, a) = (before.path.to_str().unwrap(), after.path.to_str().unwrap());
    let svg_path = after.dir.path().join("diff.svg");
    let out = run_sampler(&["diff", b, a, "-o", svg_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // inferno marks each frame with the change of its own samples: the leaf `spin` below
    // `light` went from about 20% to 60% of the samples, the one below `heavy` the other way.
    let spins = drawn(&svg, "spin (formats.py:");
    let change = |title: &str| -> f64 {
        let tail = title.rsplit("; ").next().unwrap();
        tail.trim_end_matches(')')
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    let grown = spins
        .iter()
        .max_by(|x, y| change(x.0).total_cmp(&change(y.0)))
        .unwrap();
    let shrunk = spins
        .iter()
        .min_by(|x, y| change(x.0).total_cmp(&change(y.0)))
        .unwrap();
    assert!((25.0..=55.0).contains(&change(grown.0)), "{spins:?}");
    assert!((-55.0..=-25.0).contains(&change(shrunk.0)), "{spins:?}");
    assert!(grown.1 .0 > grown.1 .2, "grown is red: {spins:?}");
    assert!(shrunk.1 .2 > shrunk.1 .0, "shrunk is blue: {spins:?}");
    // Frames are as wide as after: light now holds most of the samples.
    let light = drawn(&svg, "light (formats.py:");
    let share: f64 = light[0]
        .0
        .split("samples, ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        light.len() == 1 && (45.0..=75.0).contains(&share),
        "{light:?}"
    );

    let out = run_sampler(&["diff", b, a, "-f", "summary", "--top", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(6).collect();
    assert!(rows.len() <= 5, "{table}");
    let change = |frame: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r.contains(frame))
            .unwrap_or_else(|| panic!("{frame} is not among the top movers:\n{table}"));
        // The total share's change, the sixth column.
        row.split_whitespace()
            .nth(5)
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    let (grew, shrank) = (change("light (formats.py:"), change("heavy (formats.py:"));
    assert!((25.0..=55.0).contains(&grew), "light +{grew}:\n{table}");
    assert!(
        (-55.0..=-25.0).contains(&shrank),
        "heavy {shrank}:\n{table}"
    );
}

#[test]
fn diff_refuses_what_is_not_collapsed_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "a;b 3\nnot a stack\n").unwrap();
    let out = run_sampler(&["diff", bad.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.txt:2: not a collapsed stack"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("record -f raw"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.txt");
    let out = run_sampler(&["diff", missing.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("diff.svg").exists());
}
