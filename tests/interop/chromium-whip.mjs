#!/usr/bin/env node
// Interop test: headless Chromium publishes with WHIP to a whipserversrc ->
// whepserversink relay, and a second Chromium page plays the relay with WHEP.
//
// Usage: node chromium-whip.mjs [vp8|h264]   (default vp8)
//
// Starts gst-launch-1.0 with
//   whipserversrc name=in ... whepserversink name=out ... in.video_0 ! queue ! out.video_0
//   in.audio_0 ! queue ! out.audio_0
// (one HTTP server: /whip and /whep on the same 127.0.0.1 port, ICE on 127.0.0.1 only),
// serves a test page from a second port (cross-origin, so CORS is exercised) and drives
// headless Chromium (playwright-core, /usr/bin/chromium, fake camera + microphone):
//   publisher page: getUserMedia, sendonly transceivers, the requested codec preferred
//     with setCodecPreferences, non-127.0.0.1 candidates stripped, POST to /whip;
//   viewer page: recvonly, POST to /whep, waits for >= 30 decoded frames, DELETE.
// Asserts: publisher POST 201 + Location, the viewer decoded >= 30 frames with the very
// codec the publisher sends (the relay does not transcode), audio arrived, both selected
// candidate pairs are 127.0.0.1 <-> 127.0.0.1, the viewer's and publisher's DELETE return
// 200 and the relay posts wish-publisher-joined / wish-publisher-left reason=closed.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.
//
// Environment:
//   GST_PLUGIN_PATH   where libgstwish.so lives (default: ../../build/gst/wish
//                     relative to this script)
//   CHROMIUM          Chromium executable (default /usr/bin/chromium)
//   GST_DEBUG         passed through to gst-launch-1.0; its output is printed
//                     when the test fails (or always with VERBOSE=1)
//   VERBOSE=1         print SDPs, states and the relay log also on success

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const VERBOSE = process.env.VERBOSE === '1';
const HOST = '127.0.0.1';

const MIN_FRAMES = 30;
const TOTAL_TIMEOUT_MS = 80_000;        // whole run
const SERVER_READY_TIMEOUT_MS = 10_000; // gst-launch HTTP server up
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const PUB_FLOW_TIMEOUT_MS = 15_000;     // publisher connected and sending
const PAGE_RUN_TIMEOUT_MS = 35_000;     // whole in-page WHEP session
const FRAMES_TIMEOUT_MS = 20_000;       // viewer framesDecoded >= MIN_FRAMES
const MAX_POST_TRIES = 20;

const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };

const codec = (process.argv[2] || 'vp8').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} [vp8|h264]`);
  process.exit(2);
}
const TAG = `chromium-whip ${codec}`;

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
// the test page (publisher and viewer; served from another origin than the relay)

// Browser code of the test page; see the files for what each part does.
const pageScript = (name) => fs.readFileSync(path.join(HERE, name), 'utf8');
const PAGE_COMMON = pageScript('page-common.js');
const WHEP_PLAYER_PAGE = pageScript('whep-player-page.js');
const WHIP_PUBLISHER_PAGE = pageScript('whip-publisher-page.js');

const PAGE_HTML = String.raw`<!doctype html>
<html>
<head><meta charset="utf-8"><title>wish WHIP/WHEP interop</title></head>
<body>
<video id="v" autoplay muted playsinline width="320" height="240"></video>
<pre id="log"></pre>
<script>
${PAGE_COMMON}
${WHEP_PLAYER_PAGE}
${WHIP_PUBLISHER_PAGE}
</script>
</body>
</html>
`;

function startPageServer(port) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(PAGE_HTML);
      } else {
        res.writeHead(req.url === '/favicon.ico' ? 204 : 404);
        res.end();
      }
    });
    srv.on('error', reject);
    srv.listen(port, HOST, () => resolve(srv));
  });
}

// ---------------------------------------------------------------------------
// the relay: gst-launch-1.0 whipserversrc -> whepserversink, one HTTP server

function startRelay(port) {
  const pluginPath = process.env.GST_PLUGIN_PATH || path.resolve(HERE, '../../build/gst/wish');
  const args = [
    '-m',
    'whipserversrc', 'name=in', `address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`,
    'whepserversink', 'name=out', `address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`,
    'in.video_0', '!', 'queue', '!', 'out.video_0',
    'in.audio_0', '!', 'queue', '!', 'out.audio_0',
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
    while (outLen > 4_000_000 && out.length > 1) outLen -= out.shift().length;
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  child.output = () => Buffer.concat(out).toString('utf8');
  child.isRunning = () => child.exitCode === null && child.signalCode === null;
  return child;
}

async function stopRelay(child) {
  if (!child || !child.pid || !child.isRunning()) return;
  for (const [sig, ms] of [['SIGINT', 2000], ['SIGTERM', 2000], ['SIGKILL', 2000]]) {
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
      const r = await fetch(url, { method: 'OPTIONS', signal: AbortSignal.timeout(1000) });
      await r.text();
      if (r.ok) return r.status;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not reachable within ${SERVER_READY_TIMEOUT_MS} ms (${last})`);
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
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  // With camera/microphone access Chromium would gather on every interface and send
  // to 127.0.0.1 from its Ethernet address (lower network cost). This policy (the
  // switch is --webrtc-ip-handling-policy, there is no --force- prefix) leaves both
  // pages without host candidates in the offer; their checks to the relay's 127.0.0.1
  // candidates leave from 127.0.0.1 and are learnt as peer-reflexive by the relay.
  '--webrtc-ip-handling-policy=default_public_interface_only',
  `--disable-features=${DISABLED_FEATURES.join(',')}`,
  '--no-proxy-server',
];

let relay = null;
let pageServer = null;
let browser = null;
let cleanedUp = false;
let failed = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) {
    await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  }
  await stopRelay(relay);
  if (pageServer) {
    pageServer.closeAllConnections?.();
    await new Promise((r) => pageServer.close(() => r()));
  }
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
  if (relay) console.log(`--- gst-launch-1.0 output (tail) ---\n${relay.output().slice(-20000)}`);
  await cleanup();
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const onLoopback = (c) => typeof c === 'string' && c.startsWith('127.0.0.1:');
let pub = null, pubEnd = null, view = null;
try {
  const port = await freePort();
  let pagePort = await freePort();
  while (pagePort === port) pagePort = await freePort();
  const whipUrl = `http://${HOST}:${port}/whip`;
  const whepUrl = `http://${HOST}:${port}/whep`;
  const pageUrl = `http://${HOST}:${pagePort}/`;

  relay = startRelay(port);
  log(`relay up: OPTIONS ${whipUrl} -> ${await waitForEndpoint(whipUrl, relay)}, OPTIONS ${whepUrl} -> ${await waitForEndpoint(whepUrl, relay)}`);
  pageServer = await startPageServer(pagePort);
  log(`pages at ${pageUrl} (another origin than the relay's: CORS applies)`);

  browser = await withTimeout(chromium.launch({
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  }), BROWSER_LAUNCH_TIMEOUT_MS + 2000, 'launching chromium');
  log(`chromium ${browser.version()} launched`);

  // Publisher: its own context with camera + microphone (fake devices).
  const pubCtx = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const pubPage = await pubCtx.newPage();
  pubPage.on('console', (m) => console.log(`[publisher] ${m.text()}`));
  pubPage.on('pageerror', (e) => console.log(`[publisher error] ${e.message}`));
  await pubPage.goto(pageUrl, { timeout: 10_000 });
  pub = await withTimeout(pubPage.evaluate((cfg) => window.runWhip(cfg), {
    endpoint: whipUrl, videoMime: CODECS[codec], flowTimeoutMs: PUB_FLOW_TIMEOUT_MS,
  }), PUB_FLOW_TIMEOUT_MS + 15_000, 'WHIP publish in the page');
  if (pub.error) log(`publisher page error: ${pub.error}`);
  log(`publisher: answer video codecs ${JSON.stringify(pub.answerVideoCodecs)}`);
  if (pub.video) log(`publisher video: ${JSON.stringify(pub.video)}`);
  if (pub.audio) log(`publisher audio: ${JSON.stringify(pub.audio)}`);
  if (pub.pair) log(`publisher selected pair: ${JSON.stringify(pub.pair)}`);

  // Viewer: a second page (own context, no media permission) plays the relay's /whep.
  if (pub.postStatus === 201 && !pub.error) {
    const viewCtx = await browser.newContext({ permissions: [] });
    const viewPage = await viewCtx.newPage();
    viewPage.on('console', (m) => console.log(`[viewer] ${m.text()}`));
    viewPage.on('pageerror', (e) => console.log(`[viewer error] ${e.message}`));
    await viewPage.goto(pageUrl, { timeout: 10_000 });
    view = await withTimeout(viewPage.evaluate((cfg) => window.runWhep(cfg), {
      endpoint: whepUrl, minFrames: MIN_FRAMES, framesTimeoutMs: FRAMES_TIMEOUT_MS, maxTries: MAX_POST_TRIES,
    }), PAGE_RUN_TIMEOUT_MS, 'WHEP session in the viewer page');
    if (view.error) log(`viewer page error: ${view.error}`);
    if (view.pair) log(`viewer selected pair: ${JSON.stringify(view.pair)}`);
    if (view.video) log(`viewer video: ${JSON.stringify(view.video)}`);
    if (view.audio) log(`viewer audio: ${JSON.stringify(view.audio)}`);
  }
  pubEnd = await withTimeout(pubPage.evaluate(() => window.stopWhip()), 10_000, 'WHIP DELETE in the page');
  if (pubEnd.video) log(`publisher video at the end: ${JSON.stringify(pubEnd.video)}`);

  // wish-publisher-left should follow the DELETE.
  for (let i = 0; i < 20 && !/wish-publisher-left/.test(relay.output()); i++) await sleep(100);
  const relayOut = relay.output();

  const expected = CODECS[codec];
  console.log(`info publisher offer candidates: ${pub.offerCandidatesKept.length} kept (127.0.0.1), ${pub.offerCandidatesDropped.length} stripped`);
  check('publisher POST answered 201', pub.postStatus === 201, `status ${pub.postStatus}`);
  check('publisher got Location (readable cross-origin)', !!pub.location, `Location: ${pub.location}`);
  check('relay posted wish-publisher-joined', /wish-publisher-joined/.test(relayOut));
  check(`publisher sends ${expected}`, (pub.video?.mimeType || '').toLowerCase() === expected.toLowerCase(),
    `mimeType=${pub.video?.mimeType}, framesEncoded=${pub.video?.framesEncoded}, encoder=${pub.video?.encoderImplementation}`);
  check('publisher audio flows', (pub.audio?.packetsSent || 0) > 0, `packetsSent=${pub.audio?.packetsSent}, codec=${pub.audio?.mimeType}`);
  check('publisher media between 127.0.0.1 addresses only',
    !!pub.pair && onLoopback(pub.pair.local) && onLoopback(pub.pair.remote),
    pub.pair ? `selected pair ${pub.pair.local} <-> ${pub.pair.remote}` : 'no selected candidate pair');
  if (view) {
    console.log(`info viewer offer candidates: ${view.offerCandidatesKept.length} kept (127.0.0.1), ${view.offerCandidatesDropped.length} stripped`);
    check('viewer POST answered 201', view.postStatus === 201, `status ${view.postStatus}, ${view.posts.length} attempt(s)`);
    check(`viewer framesDecoded >= ${MIN_FRAMES}`, view.framesDecoded >= MIN_FRAMES, `framesDecoded=${view.framesDecoded}`);
    check('viewer codec equals the publisher\'s (no transcoding)',
      !!view.mimeType && (view.mimeType || '').toLowerCase() === (pub.video?.mimeType || '').toLowerCase(),
      `viewer ${view.mimeType}, publisher ${pub.video?.mimeType}`);
    check('viewer audio arrives', view.audioPacketsReceived > 0,
      `packetsReceived=${view.audioPacketsReceived}, codec=${view.audio?.mimeType ?? 'n/a'}`);
    check('viewer media between 127.0.0.1 addresses only',
      !!view.pair && onLoopback(view.pair.local) && onLoopback(view.pair.remote),
      view.pair ? `selected pair ${view.pair.local} <-> ${view.pair.remote}` : 'no selected candidate pair');
    check('viewer DELETE returned 200', view.deleteStatus === 200, `DELETE ${view.sessionUrl} -> ${view.deleteStatus}`);
  } else {
    check('viewer ran', false, 'publisher did not get going');
  }
  check('publisher DELETE returned 200', pubEnd.deleteStatus === 200, `DELETE ${pub.sessionUrl} -> ${pubEnd.deleteStatus}`);
  const left = (relayOut.match(/wish-publisher-left[^;]*/) || [''])[0];
  check('relay posted wish-publisher-left reason=closed', /reason=\(string\)closed/.test(left), left);
  if (pub.error) check('no error in the publisher page', false, pub.error.split('\n')[0]);
  if (view?.error) check('no error in the viewer page', false, view.error.split('\n')[0]);
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  failed = checks.length === 0 || checks.some((c) => !c.ok);
  const showDetails = failed || VERBOSE;
  if (showDetails) {
    for (const [who, r] of [['publisher', pub], ['viewer', view]]) {
      if (!r) continue;
      if (r.offerSdp) console.log(`--- ${who} SDP offer (filtered) ---\n${r.offerSdp.trim()}`);
      if (r.answerSdp) console.log(`--- ${who} SDP answer ---\n${r.answerSdp.trim()}`);
      console.log(`--- ${who} peer connection states ---\n${r.states.map((s) => JSON.stringify(s)).join('\n')}`);
    }
  }
  await cleanup();
  if (showDetails && relay) {
    const out = relay.output();
    console.log(`--- gst-launch-1.0 output (${out.length} chars, tail) ---\n${out.slice(-30000)}`);
  }
  clearTimeout(watchdog);
}

if (failed) {
  console.log(`${TAG}: FAIL frames=${view?.framesDecoded ?? 0}`);
  process.exit(1);
}
console.log(`${TAG}: PASS frames=${view.framesDecoded} codec=${view.mimeType}`);
process.exit(0);
