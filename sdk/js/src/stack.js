// Error text for the host: the error's name and message, then its stack frames in the job's
// own files, without the SDK's frames.
//
// Inside a component the code runs as one bundle (build.js bundles the job, its imports and the
// SDK with esbuild), so SpiderMonkey's frames name bundle lines. The build appends a line table
// derived from esbuild's source map (globalThis.__mrSourceLines: for each bundle line, the
// source file and line it came from), and frames are mapped back through it here, only when an
// error is formatted. Natively (node) the frames already name the real files.

const BUNDLE = 'mr-job.bundle.js';

// The SDK's own directory, to recognise its frames natively. testing.js sets it; this module
// must not read import.meta itself: StarlingMonkey fails the whole module on it.
let sdkDir;

/** Hides native stack frames of files under `dir` (the SDK's own). */
export function hideFramesUnder(dir) {
  sdkDir = dir;
}

// SpiderMonkey: `fn@file:line:col`; V8: `    at fn (file:line:col)` or `    at file:line:col`.
const SPIDERMONKEY = /^(.*)@(.*):(\d+):(\d+)$/;
const V8 = /^\s*at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?$/;

function parseFrame(text) {
  const m = SPIDERMONKEY.exec(text) ?? V8.exec(text);
  if (!m) return null;
  return { fn: m[1] || '<anonymous>', file: m[2], line: Number(m[3]), col: Number(m[4]) };
}

/** Maps a frame in the bundle back to its source; null for frames to hide. */
function mapFrame(frame) {
  const table = globalThis.__mrSourceLines;
  if (frame.file.endsWith(BUNDLE) && table) {
    const i = frame.line - 1;
    const source = table.lines[2 * i];
    if (source === undefined || source < 0) return frame;
    if (table.sdk[source]) return null;
    return { ...frame, file: table.sources[source], line: table.lines[2 * i + 1], col: null };
  }
  if (frame.file.endsWith('initializer.js') || frame.file.startsWith('node:')) return null;
  if (sdkDir && frame.file.replace(/^file:\/\//, '').startsWith(sdkDir)) return null;
  return frame;
}

/** The error's text for a job-error: `Name: message` and the job's own stack frames. */
export function formatError(e) {
  if (!(e instanceof Error)) {
    let shown;
    try {
      shown = typeof e === 'string' ? e : JSON.stringify(e);
    } catch {
      shown = String(e);
    }
    return `uncaught ${typeof e} (throw an Error to get a stack): ${shown}`;
  }
  const head = `${e.name}: ${e.message}`;
  const frames = [];
  for (const line of String(e.stack ?? '').split('\n')) {
    const frame = parseFrame(line);
    const mapped = frame && mapFrame(frame);
    if (mapped) {
      const at = mapped.col === null ? `${mapped.file}:${mapped.line}` : `${mapped.file}:${mapped.line}:${mapped.col}`;
      frames.push(`    at ${mapped.fn} (${at})`);
    }
  }
  return frames.length ? `${head}\n${frames.join('\n')}` : head;
}
