"""A small workload for trying out sampler: `sampler record -o demo.svg -- python3 docs/demo.py`.

It runs for about three seconds, then prints one summary line and exits. The work is split
into a few functions of clearly different cost, so the flame graph has recognisable shapes:

    main
      run_batch
        parse_records       the widest: splits, converts and checks every field
        make_records        next: builds the CSV text
        count_partitions    recursive, so it draws a tower of identical frames
        compute_statistics  grouping, sorting, quantiles
          Histogram.add     a method, called once per value
        render_report       the narrowest: string formatting
          Histogram.render

A second thread spends its life waiting on an event: the OS reports it idle, so it shows up
only with `--idle`.

Python 3.11 or newer, standard library only.
"""

import random
import statistics
import sys
import threading
import time

RUN_SECONDS = 3.0
RECORDS_PER_BATCH = 2000
CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Perth", "Quito", "Turin", "Accra"]


def make_records(rng, count):
    """CSV text: id, date, city, temperature, rainfall."""
    rows = ["id,date,city,temperature,rainfall"]
    for i in range(count):
        city = CITIES[i % len(CITIES)]
        temperature = rng.random() * 40 - 10
        rows.append(f"{i},2024-{i % 12 + 1:02}-{i % 28 + 1:02},{city},{temperature:.2f},{i % 7 * 1.5}")
    return "\n".join(rows)


def parse_records(text):
    """Turns CSV text into dicts, checking every field."""
    lines = text.splitlines()
    header = lines[0].split(",")
    records = []
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) != len(header):
            raise ValueError(f"bad line: {line!r}")
        record = dict(zip(header, fields))
        record["id"] = int(record["id"])
        year, month, day = (int(part) for part in record["date"].split("-"))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise ValueError(f"bad date: {record['date']!r}")
        record["date"] = (year, month, day)
        record["temperature"] = float(record["temperature"])
        record["rainfall"] = float(record["rainfall"])
        record["city"] = record["city"].strip().title()
        records.append(record)
    return records


class Histogram:
    """Counts values into fixed-width buckets."""

    def __init__(self, low, high, buckets):
        self.low = low
        self.width = (high - low) / buckets
        self.counts = [0] * buckets

    def add(self, value):
        index = int((value - self.low) / self.width)
        index = min(max(index, 0), len(self.counts) - 1)
        self.counts[index] += 1

    def render(self, bar_width=30):
        peak = max(self.counts) or 1
        lines = []
        for i, count in enumerate(self.counts):
            start = self.low + i * self.width
            bar = "#" * (count * bar_width // peak)
            lines.append(f"{start:7.1f} | {bar}")
        return "\n".join(lines)


def compute_statistics(records):
    """Per-city means, overall quantiles and a temperature histogram."""
    by_city = {}
    for record in records:
        by_city.setdefault(record["city"], []).append(record["temperature"])
    means = {city: statistics.fmean(values) for city, values in by_city.items()}
    temperatures = sorted(r["temperature"] for r in records)
    quartiles = statistics.quantiles(temperatures, n=4)
    histogram = Histogram(-20.0, 50.0, 14)
    for value in temperatures:
        histogram.add(value)
    return {"means": means, "quartiles": quartiles, "histogram": histogram}


def count_partitions(n, largest):
    """Ways to write n as a sum of parts no bigger than `largest` (plain recursion)."""
    if n == 0:
        return 1
    if n < 0 or largest == 0:
        return 0
    return count_partitions(n - largest, largest) + count_partitions(n, largest - 1)


def render_report(records, stats, partitions):
    """A text report; built and thrown away, since only the summary is printed."""
    lines = ["   id  date        city     temp  rain"]
    for r in records[:500]:
        year, month, day = r["date"]
        lines.append(
            f"{r['id']:5}  {year}-{month:02}-{day:02}  {r['city']:<6} "
            f"{r['temperature']:5.1f} {r['rainfall']:5.1f}"
        )
    lines.append("city       mean temp")
    for city, mean in sorted(stats["means"].items()):
        lines.append(f"{city:<10} {mean:8.2f}")
    q1, median, q3 = stats["quartiles"]
    lines.append(f"quartiles: {q1:.2f} / {median:.2f} / {q3:.2f}")
    lines.append(stats["histogram"].render())
    lines.append(f"partitions of 26 into parts <= 10: {partitions}")
    return "\n".join(lines)


def run_batch(rng):
    text = make_records(rng, RECORDS_PER_BATCH)
    records = parse_records(text)
    stats = compute_statistics(records)
    partitions = count_partitions(26, 10)
    report = render_report(records, stats, partitions)
    return len(records), len(report)


def wait_for_shutdown(event):
    """Sleeps in the kernel until the main thread is done: an idle thread."""
    event.wait()


def main():
    rng = random.Random(1234)
    done = threading.Event()
    waiter = threading.Thread(target=wait_for_shutdown, args=(done,), name="waiter")
    waiter.start()
    deadline = time.monotonic() + RUN_SECONDS
    batches = records = 0
    while time.monotonic() < deadline:
        parsed, _ = run_batch(rng)
        batches += 1
        records += parsed
    done.set()
    waiter.join()
    print(f"demo: {batches} batches, {records} records in {RUN_SECONDS:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
