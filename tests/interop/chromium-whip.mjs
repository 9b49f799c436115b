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

import path from 'node:path';

import {
  HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, chromiumArgs, FAKE_MEDIA_ARGS,
  testPageHtml, startPageServer, closePageServer, stopChild, guardRun, waitForEndpoint,
  spawnRelay,
} from './driver.mjs';

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
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);

// The test page: publisher and viewer; served from another origin than the relay.
const PAGE_HTML = testPageHtml('wish WHIP/WHEP interop', ['page-common.js', 'whep-player-page.js', 'whip-publisher-page.js']);

// ---------------------------------------------------------------------------
// the relay: gst-launch-1.0 whipserversrc -> whepserversink, one HTTP server


async function stopRelay(child) {
  const exit = await stopChild(child);
  if (child?.pid) log(`gst-launch-1.0 (pid ${child.pid}) ${exit ? `stopped after ${exit.by ?? 'exit'}: ${exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`}` : 'did not exit'}`);
}

// ---------------------------------------------------------------------------
// main

const CHROMIUM_ARGS = chromiumArgs(FAKE_MEDIA_ARGS);

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
  await closePageServer(pageServer);
}

const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup,
  () => (relay ? `--- gst-launch-1.0 output (tail) ---\n${relay.output().slice(-20000)}` : ''));

const onLoopback = (c) => typeof c === 'string' && c.startsWith('127.0.0.1:');
let pub = null, pubEnd = null, view = null;
try {
  const port = await freePort();
  const pagePort = await freePort(port);
  const whipUrl = `http://${HOST}:${port}/whip`;
  const whepUrl = `http://${HOST}:${port}/whep`;
  const pageUrl = `http://${HOST}:${pagePort}/`;

  relay = spawnRelay(port, log);
  const options = { method: 'OPTIONS' };
  const whipUp = await waitForEndpoint(whipUrl, relay, SERVER_READY_TIMEOUT_MS, options);
  const whepUp = await waitForEndpoint(whepUrl, relay, SERVER_READY_TIMEOUT_MS, options);
  log(`relay up: OPTIONS ${whipUrl} -> ${whipUp.status}, OPTIONS ${whepUrl} -> ${whepUp.status}`);
  pageServer = await startPageServer(pagePort, PAGE_HTML);
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
  failed = anyFailed();
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
