#!/usr/bin/env node
// Reads a Chrome Trace Event Format JSON file with the trace model of Chrome DevTools'
// Performance panel (npm @paulirish/trace_engine: DevTools' own models/trace code, packaged for
// Node; Lighthouse uses it the same way) and prints the slices it imported, per thread.
//
//   node tests/consumers/chrometrace_check.mjs FILE
//
// Needs .ci/install-consumers.sh (@paulirish/trace_engine under .cache/consumers/node, or under
// $SAMPLER_CONSUMERS_DIR/node). FILE is a JSON object with a `traceEvents` array (the "JSON
// Object Format") or a bare array of events (the "JSON Array Format"); B/E pairs become one
// slice, as DevTools shows them.
//
// stdout, on success: one JSON document
//   {"consumer": "@paulirish/trace_engine 0.0.65",
//    "bounds": {"min": <us>, "max": <us>},          (DevTools' trace bounds, microseconds)
//    "threads": [{"pid", "tid", "process": <process_name or null>, "thread": <thread_name or null>,
//                 "slices": [{"name", "cat", "ts", "dur", "depth", "self"}]}]}
// ts and dur in microseconds as DevTools holds them (dur null for an instant event); depth is
// the slice's depth in DevTools' per-thread tree (0 = outermost) and self its self time, both
// null for a slice DevTools left out of the tree (one that overlaps another without nesting in
// it); an unmatched B gets dur 0. Threads sorted by pid, tid; slices in DevTools' order (by
// start time). Note: this DevTools version throws on an E event without a "name".
// On failure: exit status 1 and one line on stderr, `chrometrace_check: <stage>: <reason>`.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

function fail(stage, reason) {
  process.stderr.write(`chrometrace_check: ${stage}: ${String(reason).split('\n')[0]}\n`);
  process.exit(1);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const consumersDir = process.env.SAMPLER_CONSUMERS_DIR || path.join(here, '..', '..', '.cache', 'consumers');
const engineDir = path.join(consumersDir, 'node', 'node_modules', '@paulirish', 'trace_engine');
if (!fs.existsSync(engineDir)) fail('setup', `${engineDir} missing: run .ci/install-consumers.sh`);
const engineVersion = JSON.parse(fs.readFileSync(path.join(engineDir, 'package.json'), 'utf8')).version;

if (process.argv.length !== 3) fail('usage', 'chrometrace_check.mjs FILE');
let doc;
try {
  doc = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  fail('json', e.message);
}
const events = Array.isArray(doc) ? doc : doc?.traceEvents;
if (!Array.isArray(events)) fail('format', 'neither an array of events nor an object with a traceEvents array');
events.forEach((ev, i) => {
  if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) fail('format', `event ${i} is not an object`);
  if (typeof ev.ph !== 'string') fail('format', `event ${i} has no "ph" string`);
});

// The engine logs as it goes: keep stdout for our one document.
for (const k of ['log', 'info', 'warn', 'debug']) console[k] = (...a) => console.error(...a);

const Trace = await import(pathToFileURL(path.join(engineDir, 'models', 'trace', 'trace.js')).href);
// DevTools code expects the browser's DOMRect; the package ships a polyfill for Node.
const {polyfillDOMRect} = await import(pathToFileURL(path.join(engineDir, 'analyze-trace.mjs')).href);
polyfillDOMRect();

let parsed;
try {
  const model = Trace.TraceModel.Model.createWithAllHandlers();
  await model.parse(events);
  parsed = model.parsedTrace();
} catch (e) {
  fail('import', `DevTools' trace model threw: ${e && e.message}`);
}
if (!parsed?.data?.Renderer) fail('import', 'DevTools\' trace model produced no data');

const {Meta, Renderer} = parsed.data;
const nameOf = ev => (ev && ev.args && typeof ev.args.name === 'string' ? ev.args.name : null);
const threads = [];
for (const [pid, proc] of Renderer.processes) {
  for (const [tid, thread] of proc.threads) {
    threads.push({
      pid,
      tid,
      process: nameOf(Meta.processNames.get(pid)),
      thread: thread.name ?? nameOf(Meta.threadsInProcess.get(pid)?.get(tid)),
      slices: thread.entries.map(e => {
        const node = Renderer.entryToNode.get(e);
        return {
          name: e.name,
          cat: e.cat ?? null,
          ts: e.ts,
          dur: e.dur ?? null,
          depth: node ? node.depth : null,
          self: node && node.selfTime !== undefined ? node.selfTime : null,
        };
      }),
    });
  }
}
threads.sort((a, b) => a.pid - b.pid || a.tid - b.tid);
const bounds = Meta.traceBounds;
process.stdout.write(JSON.stringify({
  consumer: `@paulirish/trace_engine ${engineVersion}`,
  bounds: {min: bounds.min, max: bounds.max},
  threads,
}, null, 1) + '\n');
