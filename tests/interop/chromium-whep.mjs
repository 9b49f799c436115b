#!/usr/bin/env node
// Interop test: headless Chromium plays a stream served by whepserversink.
//
// Usage: node chromium-whep.mjs <h264|vp8>
//
// Starts gst-launch-1.0 with whepserversink on a free port, serves a small test
// page from a second, different port (so the page is cross-origin to the WHEP
// endpoint and CORS is exercised), and lets headless Chromium (driven by
// playwright-core, /usr/bin/chromium) play the stream with plain
// RTCPeerConnection + fetch. Asserts that >= 30 video frames were decoded with
// the requested codec, that Location and ETag are readable cross-origin, and that
// DELETE of the session returns 200.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.
//
// Environment:
//   GST_PLUGIN_PATH   where libgstwish.so lives (default: ../../build/gst/wish
//                     relative to this script)
//   CHROMIUM          Chromium executable (default /usr/bin/chromium)
//   GST_DEBUG         passed through to gst-launch-1.0; its output is printed
//                     when the test fails (or always with VERBOSE=1)
//   VERBOSE=1         print the SDP offer/answer and the server log also on success

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const VERBOSE = process.env.VERBOSE === '1';
const HOST = '127.0.0.1';

const MIN_FRAMES = 30;
const TOTAL_TIMEOUT_MS = 55_000;       // whole run, per codec
const SERVER_READY_TIMEOUT_MS = 10_000; // gst-launch HTTP server up
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const PAGE_RUN_TIMEOUT_MS = 35_000;     // whole in-page WHEP session
const FRAMES_TIMEOUT_MS = 20_000;       // framesDecoded >= MIN_FRAMES
const MAX_POST_TRIES = 20;

const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };

const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8>`);
  process.exit(2);
}
const TAG = `chromium-whep ${codec}`;

if (!fs.existsSync(CHROMIUM)) {
  console.log(`${TAG}: SKIP ${CHROMIUM} not found (install the Debian package "chromium")`);
  process.exit(77);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`${TAG}: FAIL cannot load playwright-core (run npm ci in ${HERE}): ${e.message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function log(msg) {
  console.log(`[${TAG}] ${msg}`);
}

const checks = [];
function check(name, ok, detail = '') {
  checks.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}

// ---------------------------------------------------------------------------
// the test page (served from a different origin than the WHEP endpoint)

// Browser code of the test page; see the files for what each part does.
const pageScript = (name) => fs.readFileSync(path.join(HERE, name), 'utf8');
const PAGE_COMMON = pageScript('page-common.js');
const WHEP_PLAYER_PAGE = pageScript('whep-player-page.js');

const PAGE_HTML = String.raw`<!doctype html>
<html>
<head><meta charset="utf-8"><title>wish WHEP interop</title></head>
<body>
<video id="v" autoplay muted playsinline width="320" height="240"></video>
<pre id="log"></pre>
<script>
${PAGE_COMMON}
${WHEP_PLAYER_PAGE}
</script>
</body>
</html>
`;

function startPageServer(port) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(PAGE_HTML);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found\n');
      }
    });
    srv.on('error', reject);
    srv.listen(port, HOST, () => resolve(srv));
  });
}

// ---------------------------------------------------------------------------
// gst-launch-1.0

function startGst(port) {
  const pluginPath = process.env.GST_PLUGIN_PATH || path.resolve(HERE, '../../build/gst/wish');
  const args = [
    '-e',
    'whepserversink', 'name=s', `port=${port}`, `address=${HOST}`, `ice-local-addresses=${HOST}`,
    `video-codec=${codec}`,
    'videotestsrc', 'is-live=true', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 's.',
    'audiotestsrc', 'is-live=true', '!', 's.',
  ];
  log(`GST_PLUGIN_PATH=${pluginPath} gst-launch-1.0 ${args.join(' ')}`);
  const child = spawn('gst-launch-1.0', args, {
    env: { ...process.env, GST_PLUGIN_PATH: pluginPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = [];
  let outLen = 0;
  const keep = (chunk) => {
    out.push(chunk);
    outLen += chunk.length;
    while (outLen > 4_000_000 && out.length > 1) outLen -= out.shift().length; // bound memory
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  child.output = () => Buffer.concat(out).toString('utf8');
  child.isRunning = () => child.exitCode === null && child.signalCode === null;
  return child;
}

async function stopGst(child) {
  if (!child || !child.pid || !child.isRunning()) return;
  const steps = [['SIGINT', 2000], ['SIGTERM', 2000], ['SIGKILL', 2000]];
  for (const [sig, ms] of steps) {
    try { process.kill(child.pid, sig); } catch { return; }
    const done = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
    if (done) {
      const { code, signal } = await child.exited;
      log(`gst-launch-1.0 (pid ${child.pid}) stopped after ${sig}: ${signal ? `signal ${signal}` : `exit ${code}`}`);
      return;
    }
  }
  log(`gst-launch-1.0 (pid ${child.pid}) did not exit`);
}

async function waitForEndpoint(url, child) {
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`gst-launch-1.0 exited early (${child.exitCode ?? child.signalCode})`);
    try {
      const r = await fetch(url, { headers: { Accept: 'text/html' }, signal: AbortSignal.timeout(1000) });
      const body = await r.text();
      if (r.ok) return { status: r.status, contentType: r.headers.get('content-type'), length: body.length };
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await sleep(200);
  }
  throw new Error(`WHEP endpoint ${url} not reachable within ${SERVER_READY_TIMEOUT_MS} ms (${last})`);
}

// ---------------------------------------------------------------------------
// main

// Chromium uses only the last --disable-features switch it is given, so ours (which comes
// after playwright's) repeats the playwright defaults that keep it off the network.
const DISABLED_FEATURES = [
  'WebRtcHideLocalIpsWithMdns',
  'MediaRouter', 'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled',
  'PreconnectToSearch', 'Translate', 'LensOverlay', 'HttpsUpgrades', 'PaintHolding',
  'AvoidCorsURLLoaderRestartOnRedirect',
];

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
  `--disable-features=${DISABLED_FEATURES.join(',')}`,
  '--no-proxy-server',
];

let gst = null;
let pageServer = null;
let context = null;
let userDataDir = null;
let cleanedUp = false;
let failed = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (context) {
    await withTimeout(context.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  }
  await stopGst(gst);
  if (pageServer) {
    pageServer.closeAllConnections?.();
    await new Promise((r) => pageServer.close(() => r()));
  }
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    log(`got ${sig}, cleaning up`);
    await cleanup();
    process.exit(1);
  });
}

const watchdog = setTimeout(async () => {
  console.log(`${TAG}: FAIL overall timeout of ${TOTAL_TIMEOUT_MS} ms exceeded`);
  if (gst) console.log(`--- gst-launch-1.0 output (tail) ---\n${gst.output().slice(-20000)}`);
  await cleanup();
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

let result = null;
try {
  const whepPort = await freePort();
  let pagePort = await freePort();
  while (pagePort === whepPort) pagePort = await freePort();
  const endpoint = `http://${HOST}:${whepPort}/whep`;
  const pageUrl = `http://${HOST}:${pagePort}/`;

  gst = startGst(whepPort);
  const player = await waitForEndpoint(endpoint, gst);
  log(`endpoint up: GET ${endpoint} (Accept: text/html) -> ${player.status} ${player.contentType}, ${player.length} bytes`);

  pageServer = await startPageServer(pagePort);
  log(`test page at ${pageUrl} (origin differs from the endpoint's: CORS applies)`);

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wish-chromium-'));
  context = await withTimeout(chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    // No camera/microphone permission on purpose: with one, Chromium gathers on every
    // interface (loopback included) but prefers the Ethernet address (lower network
    // cost) as the source of its packets to 127.0.0.1. Without one, it only has its
    // default-route candidate (stripped by the page, so the offer carries none) on a
    // socket bound to the any-address, whose checks to the server's 127.0.0.1
    // candidates leave from 127.0.0.1: the server learns it as peer-reflexive.
    permissions: [],
    timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  }), BROWSER_LAUNCH_TIMEOUT_MS + 2000, 'launching chromium');
  log(`chromium ${context.browser()?.version() ?? ''} launched, profile ${userDataDir}`);

  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(pageUrl, { timeout: 10_000 });

  result = await withTimeout(page.evaluate((cfg) => window.runWhep(cfg), {
    endpoint, minFrames: MIN_FRAMES, framesTimeoutMs: FRAMES_TIMEOUT_MS, maxTries: MAX_POST_TRIES,
  }), PAGE_RUN_TIMEOUT_MS, 'WHEP session in the page');

  if (result.error) log(`page error: ${result.error}`);
  log(`POST attempts: ${result.posts.map((p) => `${p.status}${p.retryAfter ? `(Retry-After ${p.retryAfter})` : ''}`).join(' ')}`);
  if (result.pair) log(`selected pair: ${JSON.stringify(result.pair)}`);
  if (result.video) log(`video stats: ${JSON.stringify(result.video)}`);
  if (result.audio) log(`audio stats: ${JSON.stringify(result.audio)}`);

  const expected = CODECS[codec];
  console.log(`info offer candidates: ${result.offerCandidatesKept.length} kept (127.0.0.1), ${result.offerCandidatesDropped.length} stripped`);
  check('POST answered 201', result.postStatus === 201, `status ${result.postStatus}, ${result.posts.length} attempt(s)`);
  check('Location readable cross-origin', !!result.location, `Location: ${result.location}`);
  check('ETag readable cross-origin', !!result.etag, `ETag: ${result.etag}`);
  check(`framesDecoded >= ${MIN_FRAMES}`, result.framesDecoded >= MIN_FRAMES, `framesDecoded=${result.framesDecoded}`);
  check(`negotiated codec is ${expected}`,
    (result.mimeType || '').toLowerCase() === expected.toLowerCase(), `mimeType=${result.mimeType}`);
  console.log(`info audio packets arrived: ${result.audioPacketsReceived > 0 ? 'yes' : 'NO'} (packetsReceived=${result.audioPacketsReceived}, codec=${result.audio?.mimeType ?? 'n/a'})`);
  const onLoopback = (c) => typeof c === 'string' && c.startsWith('127.0.0.1:');
  check('media flowed between 127.0.0.1 addresses only',
    !!result.pair && onLoopback(result.pair.local) && onLoopback(result.pair.remote),
    result.pair ? `selected pair ${result.pair.local} <-> ${result.pair.remote}` : 'no selected candidate pair');
  check('DELETE session returned 200', result.deleteStatus === 200, `DELETE ${result.sessionUrl} -> ${result.deleteStatus}`);
  if (result.error) check('no error in the page', false, result.error.split('\n')[0]);
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  failed = checks.length === 0 || checks.some((c) => !c.ok);
  const showDetails = failed || VERBOSE;
  if (showDetails && result) {
    if (result.offerSdp) console.log(`--- SDP offer (filtered) ---\n${result.offerSdp.trim()}`);
    if (result.answerSdp) console.log(`--- SDP answer ---\n${result.answerSdp.trim()}`);
    console.log(`--- peer connection states ---\n${result.states.map((s) => JSON.stringify(s)).join('\n')}`);
  }
  await cleanup();
  if (showDetails && gst) {
    const out = gst.output();
    console.log(`--- gst-launch-1.0 output (${out.length} chars, tail) ---\n${out.slice(-30000)}`);
  }
  clearTimeout(watchdog);
}

if (failed) {
  console.log(`${TAG}: FAIL frames=${result?.framesDecoded ?? 0}`);
  process.exit(1);
}
console.log(`${TAG}: PASS frames=${result.framesDecoded}`);
process.exit(0);
