#!/usr/bin/env node
// Reads a speedscope JSON file with speedscope itself and prints what speedscope understood.
//
//   node tests/consumers/speedscope_check.mjs FILE
//
// Needs .ci/install-consumers.sh (speedscope and ajv under .cache/consumers/node, or under
// $SAMPLER_CONSUMERS_DIR/node). Three stages, each fatal:
//   1. FILE is validated with ajv against the file-format schema that the speedscope package
//      ships (dist/release/file-format-schema.json);
//   2. our own checks of what the schema cannot say but speedscope relies on: frame indices in
//      range, one weight per sample, balanced open/close events;
//   3. speedscope's own importer (importProfileGroupFromText, the code the web app runs on a
//      dropped file) parses FILE. The npm package ships it only inside the browser bundle, so the
//      bundle is evaluated in a Node `vm` context with a stub `window`; one statement is inserted
//      before the bundle's final "render the app" step to hand us the importer module and skip
//      the rendering (which needs a real DOM and WebGL).
//
// stdout, on success: one JSON document
//   {"consumer": "speedscope 1.25.0", "name": <group name>, "activeProfileIndex": <index speedscope shows first>,
//    "profiles": [{"name", "unit", "totalWeight", "samples": <number of samples or events in FILE>,
//                  "frames": [{"index", "name", "file", "line", "col", "self", "total"}]}]}
// where self/total are speedscope's own Frame.getSelfWeight()/getTotalWeight() (a frame present
// twice in one stack counts once in its total), frames sorted by total desc, then name, file,
// line. file/line/col are null when absent.
// On failure: exit status 1 and one line on stderr, `speedscope_check: <stage>: <reason>`.
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import {Console} from 'node:console';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

function fail(stage, reason) {
  process.stderr.write(`speedscope_check: ${stage}: ${String(reason).split('\n')[0]}\n`);
  process.exit(1);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const consumersDir = process.env.SAMPLER_CONSUMERS_DIR || path.join(here, '..', '..', '.cache', 'consumers');
const nodeDir = path.join(consumersDir, 'node');
const speedscopeDir = path.join(nodeDir, 'node_modules', 'speedscope');
const releaseDir = path.join(speedscopeDir, 'dist', 'release');
if (!fs.existsSync(releaseDir)) fail('setup', `${releaseDir} missing: run .ci/install-consumers.sh`);
const require = createRequire(path.join(nodeDir, 'package.json'));
const speedscopeVersion = JSON.parse(fs.readFileSync(path.join(speedscopeDir, 'package.json'), 'utf8')).version;

if (process.argv.length !== 3) fail('usage', 'speedscope_check.mjs FILE');
const file = process.argv[2];
let text;
try {
  text = fs.readFileSync(file, 'utf8');
} catch (e) {
  fail('read', e.message);
}
let doc;
try {
  doc = JSON.parse(text);
} catch (e) {
  fail('json', e.message);
}

// ---- 1. speedscope's published schema --------------------------------------------------------
{
  const Ajv = require('ajv');
  const schema = JSON.parse(fs.readFileSync(path.join(releaseDir, 'file-format-schema.json'), 'utf8'));
  const ajv = new Ajv({allErrors: true, strict: false});
  ajv.addSchema(schema, 'speedscope');
  const validate = ajv.getSchema('speedscope');
  const describe = (e, prefix = '') => {
    const extra = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
    return `${prefix + e.instancePath || '/'} ${e.message}${extra}`;
  };
  if (!validate(doc)) {
    // A profile is "anyOf" evented or sampled, so a bad profile yields errors from both
    // branches: name the error of the branch its `type` asks for.
    const branch = {sampled: 'FileFormat.SampledProfile', evented: 'FileFormat.EventedProfile'};
    (Array.isArray(doc?.profiles) ? doc.profiles : []).forEach((p, i) => {
      const def = branch[p?.type];
      if (!def) fail('schema', `/profiles/${i}/type is ${JSON.stringify(p?.type)}, not "sampled" or "evented"`);
      const check = ajv.getSchema(`speedscope#/definitions/${def}`);
      if (!check(p)) fail('schema', describe(check.errors[0], `/profiles/${i}`));
    });
    const errors = validate.errors.filter(e => e.keyword !== 'anyOf');
    fail('schema', describe(errors[0] || validate.errors[0]));
  }
}

// ---- 2. what the schema cannot express -------------------------------------------------------
{
  const nframes = doc.shared.frames.length;
  const isIndex = i => Number.isInteger(i) && i >= 0 && i < nframes;
  doc.shared.frames.forEach((f, i) => {
    for (const k of ['line', 'col']) {
      if (f[k] !== undefined && !(Number.isInteger(f[k]) && f[k] >= 0))
        fail('frames', `/shared/frames/${i}/${k} is ${f[k]}, not a non-negative integer`);
    }
  });
  if (doc.activeProfileIndex !== undefined &&
      !(Number.isInteger(doc.activeProfileIndex) && doc.activeProfileIndex >= 0 &&
        doc.activeProfileIndex < doc.profiles.length))
    fail('profiles', `activeProfileIndex ${doc.activeProfileIndex} is not an index of profiles`);
  doc.profiles.forEach((p, pi) => {
    const where = `/profiles/${pi}`;
    if (!(p.startValue <= p.endValue)) fail('profiles', `${where}: startValue ${p.startValue} > endValue ${p.endValue}`);
    if (p.type === 'sampled') {
      if (p.samples.length !== p.weights.length)
        fail('profiles', `${where}: ${p.samples.length} samples but ${p.weights.length} weights`);
      p.samples.forEach((stack, si) => {
        stack.forEach((i, d) => {
          if (!isIndex(i)) fail('profiles', `${where}/samples/${si}/${d} is ${i}, not an index of shared.frames (${nframes})`);
        });
      });
      p.weights.forEach((w, wi) => {
        if (!(Number.isFinite(w) && w >= 0)) fail('profiles', `${where}/weights/${wi} is ${w}`);
      });
    } else {
      const open = [];
      let last = -Infinity;
      p.events.forEach((ev, ei) => {
        if (!isIndex(ev.frame)) fail('profiles', `${where}/events/${ei}/frame is ${ev.frame}, not an index of shared.frames`);
        if (ev.at < last) fail('profiles', `${where}/events/${ei}: at ${ev.at} goes back in time`);
        if (ev.at < p.startValue || ev.at > p.endValue) fail('profiles', `${where}/events/${ei}: at ${ev.at} outside [startValue, endValue]`);
        last = ev.at;
        if (ev.type === 'O') open.push(ev.frame);
        else if (open.pop() !== ev.frame) fail('profiles', `${where}/events/${ei}: closes frame ${ev.frame}, which is not the innermost open one`);
      });
      if (open.length) fail('profiles', `${where}: ${open.length} frames left open`);
    }
  });
}

// ---- 3. speedscope's importer ----------------------------------------------------------------
async function loadImporter() {
  const bundleName = fs.readdirSync(releaseDir).find(f => /^speedscope-[\w-]*\.js$/.test(f));
  if (!bundleName) fail('setup', `no speedscope-*.js bundle in ${releaseDir}`);
  let src = fs.readFileSync(path.join(releaseDir, bundleName), 'utf8');
  // The bundle (esbuild) defines the import module as `var M={};EXPORT(M,{importFromFileSystemDirectoryEntry:...`
  // with an initialiser INIT that the app calls as `Promise.resolve().then(()=>(INIT(),M))`.
  const id = '[\\w$]+';
  const esc = s => s.replace(/\$/g, '\\$');
  const mod = src.match(new RegExp(`var (${id})=\\{\\};${id}\\(\\1,\\{importFromFileSystemDirectoryEntry:`));
  const init = mod && src.match(new RegExp(`\\(\\)=>\\((${id})\\(\\),${esc(mod[1])}\\)`));
  const renderAt = src.lastIndexOf('console.log(`speedscope v');
  if (!mod || !init || renderAt < 0)
    fail('setup', `speedscope ${speedscopeVersion}: bundle layout not recognised; update speedscope_check.mjs`);
  src = src.slice(0, renderAt) + `globalThis.__speedscopeImport=(${init[1]}(),${mod[1]});return;` + src.slice(renderAt);

  // The bundle reads window.location and window.localStorage while loading; it logs to stderr here.
  const sandbox = {
    console: new Console(process.stderr),
    TextDecoder, TextEncoder, URL, Blob, atob, btoa, performance, structuredClone,
    setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
    location: {hash: '', search: '', protocol: 'file:', href: 'file:///speedscope/index.html', pathname: '/speedscope/index.html'},
  };
  sandbox.window = sandbox;
  sandbox.self = sandbox;
  vm.createContext(sandbox);
  try {
    vm.runInContext(src, sandbox, {filename: bundleName});
  } catch (e) {
    fail('setup', `evaluating ${bundleName}: ${e.message}`);
  }
  const m = sandbox.__speedscopeImport;
  if (!m || typeof m.importProfileGroupFromText !== 'function')
    fail('setup', `speedscope ${speedscopeVersion}: importProfileGroupFromText not found in the bundle`);
  return m;
}

const importer = await loadImporter();
let group;
try {
  group = await importer.importProfileGroupFromText(path.basename(file), text);
} catch (e) {
  fail('import', `speedscope's importer threw: ${e && e.message}`);
}
if (!group) fail('import', 'speedscope did not recognise the file as any format it imports');
if (!group.profiles || group.profiles.length !== doc.profiles.length)
  fail('import', `speedscope imported ${group.profiles ? group.profiles.length : 0} profiles, the file has ${doc.profiles.length}`);

const orNull = v => (v === undefined ? null : v);
const summary = {
  consumer: `speedscope ${speedscopeVersion}`,
  name: orNull(group.name),
  activeProfileIndex: orNull(group.indexToView),
  profiles: group.profiles.map((p, pi) => {
    const frames = [];
    p.forEachFrame(f => {
      frames.push({
        index: typeof f.key === 'number' ? f.key : null,
        name: f.name,
        file: orNull(f.file),
        line: orNull(f.line),
        col: orNull(f.col),
        self: f.getSelfWeight(),
        total: f.getTotalWeight(),
      });
    });
    frames.sort((a, b) => b.total - a.total || cmp(a.name, b.name) || cmp(a.file, b.file) || (a.line ?? -1) - (b.line ?? -1));
    const src = doc.profiles[pi];
    return {
      name: p.getName(),
      unit: p.getWeightUnit(),
      totalWeight: p.getTotalWeight(),
      samples: src.type === 'sampled' ? src.samples.length : src.events.length,
      frames,
    };
  }),
};
function cmp(a, b) {
  a = a ?? '';
  b = b ?? '';
  return a < b ? -1 : a > b ? 1 : 0;
}
process.stdout.write(JSON.stringify(summary, null, 1) + '\n');
