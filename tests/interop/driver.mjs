// What the Node test drivers of this folder share: Chromium and playwright-core (a skip
// when Chromium is missing), timeouts, free ports, checks, the test page server, and child
// processes kept with their output and stopped by PID.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const HOST = '127.0.0.1';
export const VERBOSE = process.env.VERBOSE === '1';
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A free TCP port on 127.0.0.1, none of `avoid`.
export async function freePort(...avoid) {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, HOST, () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!avoid.includes(port)) return port;
  }
}

// Log lines and checks under a tag the driver may change as it goes (one per codec, say);
// with prefixChecks the check lines carry the tag too.
export function reporter(tag, { prefixChecks = false } = {}) {
  const r = {
    tag,
    checks: [],
    log: (msg) => console.log(`[${r.tag}] ${msg}`),
    check(name, ok, detail = '') {
      r.checks.push({ tag: r.tag, name, ok: !!ok });
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${prefixChecks ? `${r.tag}: ` : ''}${name}${detail ? ` (${detail})` : ''}`);
      return !!ok;
    },
    failed: () => r.checks.length === 0 || r.checks.some((c) => !c.ok),
  };
  return r;
}

// playwright-core's chromium; exits 77 (skip) without a Chromium, 1 without playwright-core.
export async function loadChromium(tag) {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`${tag}: SKIP ${CHROMIUM} not found (install the Debian package "chromium")`);
    process.exit(77);
  }
  try {
    return (await import('playwright-core')).chromium;
  } catch (e) {
    console.error(`${tag}: FAIL cannot load playwright-core (run npm ci in ${HERE}): ${e.message}`);
    process.exit(1);
  }
}

// Chromium uses only the last --disable-features switch it is given, so ours (which comes
// after playwright's) repeats the playwright defaults that keep it off the network.
const DISABLED_FEATURES = [
  'WebRtcHideLocalIpsWithMdns',
  'MediaRouter', 'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled',
  'PreconnectToSearch', 'Translate', 'LensOverlay', 'HttpsUpgrades', 'PaintHolding',
  'AvoidCorsURLLoaderRestartOnRedirect',
];

// For pages that publish the fake camera and microphone. With camera/microphone access
// Chromium would gather on every interface and send to 127.0.0.1 from its Ethernet address
// (lower network cost). This policy (the switch is --webrtc-ip-handling-policy, there is no
// --force- prefix) leaves the pages without host candidates in their offers; their checks
// to 127.0.0.1 candidates leave from 127.0.0.1 and are learnt as peer-reflexive.
export const FAKE_MEDIA_ARGS = [
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--webrtc-ip-handling-policy=default_public_interface_only',
];

export function chromiumArgs(extra = []) {
  return [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--allow-loopback-in-peer-connection',
    ...extra,
    `--disable-features=${DISABLED_FEATURES.join(',')}`,
    '--no-proxy-server',
  ];
}

// Headless Chromium with the project's switches (plus `extra`), within `timeoutMs`.
export async function launchChromium(chromium, log, extra = [], timeoutMs = 15_000) {
  const browser = await withTimeout(chromium.launch({
    executablePath: CHROMIUM, headless: true, args: chromiumArgs(extra), timeout: timeoutMs,
  }), timeoutMs + 2000, 'launching chromium');
  log(`chromium ${browser.version()} launched`);
  return browser;
}

// The plugin built beside the tests, unless GST_PLUGIN_PATH says otherwise.
export const PLUGIN_PATH = process.env.GST_PLUGIN_PATH || path.resolve(HERE, '../../build/gst/wish');

// The relay of the README, one gst-launch-1.0 on one HTTP port: whipserversrc -> whepserversink
// without re-encoding. `env` adds to the environment (GST_DEBUG, ...).
export function spawnRelay(port, log, env = {}) {
  const args = [
    '-m',
    'whipserversrc', 'name=in', `address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`,
    'whepserversink', 'name=out', `address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`,
    'in.video_0', '!', 'queue', '!', 'out.video_0',
    'in.audio_0', '!', 'queue', '!', 'out.audio_0',
  ];
  log(`GST_PLUGIN_PATH=${PLUGIN_PATH} gst-launch-1.0 ${args.join(' ')}`);
  return spawnKept('gst-launch-1.0', args, { env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_PATH, ...env } });
}

// The test page: a video element, a log and the given browser scripts of this folder
// (which hold no backticks, so they can sit in a template literal).
export function testPageHtml(title, scripts) {
  const code = scripts.map((name) => fs.readFileSync(path.join(HERE, name), 'utf8')).join('\n');
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>${title}</title></head>
<body>
<video id="v" autoplay muted playsinline width="320" height="240"></video>
<pre id="log"></pre>
<script>
${code}
</script>
</body>
</html>
`;
}

// Serves the page on 127.0.0.1:port, another origin than the endpoints: CORS applies.
export function startPageServer(port, html) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(html);
      } else {
        res.writeHead(req.url === '/favicon.ico' ? 204 : 404);
        res.end();
      }
    });
    srv.on('error', reject);
    srv.listen(port, HOST, () => resolve(srv));
  });
}

export async function closePageServer(srv) {
  if (!srv) return;
  srv.closeAllConnections?.();
  await new Promise((r) => srv.close(() => r()));
}

// A child process whose stderr (and stdout unless the driver reads it) is kept, bounded,
// for failure reports: child.output(), child.exited (resolves to { code, signal }),
// child.isRunning(). stdin: 'pipe' for a driver that writes to it.
export function spawnKept(cmd, args, { env = process.env, keepStdout = true, stdin = 'ignore', limit = 4_000_000 } = {}) {
  const child = spawn(cmd, args, { env, stdio: [stdin, 'pipe', 'pipe'] });
  const kept = [];
  let keptLen = 0;
  const keep = (chunk) => {
    kept.push(chunk);
    keptLen += chunk.length;
    while (keptLen > limit && kept.length > 1) keptLen -= kept.shift().length;
  };
  if (keepStdout) child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.output = () => Buffer.concat(kept).toString('utf8');
  child.isRunning = () => child.exitCode === null && child.signalCode === null;
  return child;
}

// Stops the child by PID, one signal after the other until it exits; resolves to its exit
// ({ code, signal, by }) or null if it would not exit.
export async function stopChild(child, steps = [['SIGINT', 2000], ['SIGTERM', 2000], ['SIGKILL', 2000]]) {
  if (!child || !child.pid) return null;
  if (!child.isRunning()) return child.exited;
  for (const [sig, ms] of steps) {
    try { process.kill(child.pid, sig); } catch { break; }
    const done = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
    if (done) return { ...(await child.exited), by: sig };
  }
  return null;
}

// Runs cleanup and exits 1 on SIGINT/SIGTERM, or when the whole run exceeds totalMs
// (after printing report()). Returns the watchdog timer for clearTimeout.
export function guardRun(tag, totalMs, cleanup, report = () => '') {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, async () => {
      console.log(`[${tag}] got ${sig}, cleaning up`);
      await cleanup();
      process.exit(1);
    });
  }
  return setTimeout(async () => {
    console.log(`${tag}: FAIL overall timeout of ${totalMs} ms exceeded`);
    const extra = report();
    if (extra) console.log(extra);
    await cleanup();
    process.exit(1);
  }, totalMs);
}

// Polls url (fetch init, GET by default) until it answers 2xx while child runs; resolves to
// { status, contentType, length }.
export async function waitForEndpoint(url, child, timeoutMs, init = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`${child.spawnfile} exited early (${child.exitCode ?? child.signalCode})`);
    try {
      const r = await fetch(url, { ...init, signal: AbortSignal.timeout(1000) });
      const body = await r.text();
      if (r.ok) return { status: r.status, contentType: r.headers.get('content-type'), length: body.length };
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not reachable within ${timeoutMs} ms (${last})`);
}

// Samples the <video> of a page (window.sampleVideo of whep-player-page.js) until `pred` holds
// or `ms` pass: { ok, sample } with the last sample.
export async function waitVideoColor(page, pred, ms) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.evaluate(() => window.sampleVideo());
    if (pred(last)) return { ok: true, sample: last };
    await sleep(50);
  }
  return { ok: false, sample: last };
}
