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
// the requested codec, that Location and ETag are readable cross-origin, that an
// EventSource on the session's server-sent events receives active and viewercount,
// and that DELETE of the session returns 200.
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

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  HERE, HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, chromiumArgs,
  testPageHtml, startPageServer, closePageServer, spawnKept, stopChild, guardRun, waitForEndpoint,
} from './driver.mjs';

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
// "shared": the server runs with shared-transport=true (the default), and the viewer must be
// served by the shared transport (its log says when an offer goes to a webrtcbin instead);
// without it, shared-transport=false: a webrtcbin per viewer.
const shared = process.argv[3] === 'shared';
const TAG = `chromium-whep ${codec}${shared ? ' shared' : ''}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);

// The test page (served from a different origin than the WHEP endpoint).
const PAGE_HTML = testPageHtml('wish WHEP interop', ['page-common.js', 'whep-player-page.js']);

// ---------------------------------------------------------------------------
// gst-launch-1.0

function startGst(port) {
  const pluginPath = process.env.GST_PLUGIN_PATH || path.resolve(HERE, '../../build/gst/wish');
  const args = [
    '-e',
    'whepserversink', 'name=s', `port=${port}`, `address=${HOST}`, `ice-local-addresses=${HOST}`,
    `video-codec=${codec}`, `shared-transport=${shared}`,
    'videotestsrc', 'is-live=true', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 's.',
    'audiotestsrc', 'is-live=true', '!', 's.',
  ];
  log(`GST_PLUGIN_PATH=${pluginPath} gst-launch-1.0 ${args.join(' ')}`);
  const debug = shared ? { GST_DEBUG: `${process.env.GST_DEBUG ? `${process.env.GST_DEBUG},` : ''}wishserver:4`, GST_DEBUG_NO_COLOR: '1' } : {};
  return spawnKept('gst-launch-1.0', args, { env: { ...process.env, GST_PLUGIN_PATH: pluginPath, ...debug } });
}

async function stopGst(child) {
  const exit = await stopChild(child);
  if (child?.pid) log(`gst-launch-1.0 (pid ${child.pid}) ${exit ? `stopped after ${exit.by ?? 'exit'}: ${exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`}` : 'did not exit'}`);
}

// ---------------------------------------------------------------------------
// main

const CHROMIUM_ARGS = chromiumArgs();

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
  await closePageServer(pageServer);
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup,
  () => (gst ? `--- gst-launch-1.0 output (tail) ---\n${gst.output().slice(-20000)}` : ''));

let result = null;
try {
  const whepPort = await freePort();
  const pagePort = await freePort(whepPort);
  const endpoint = `http://${HOST}:${whepPort}/whep`;
  const pageUrl = `http://${HOST}:${pagePort}/`;

  gst = startGst(whepPort);
  const player = await waitForEndpoint(endpoint, gst, SERVER_READY_TIMEOUT_MS, { headers: { Accept: 'text/html' } });
  log(`endpoint up: GET ${endpoint} (Accept: text/html) -> ${player.status} ${player.contentType}, ${player.length} bytes`);

  pageServer = await startPageServer(pagePort, PAGE_HTML);
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
    endpoint, minFrames: MIN_FRAMES, framesTimeoutMs: FRAMES_TIMEOUT_MS, maxTries: MAX_POST_TRIES, events: true,
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
  // Server-sent events read cross-origin: the Link, the subscription and an EventSource.
  check('server-sent events offered in a readable Link', !!result.eventsLink?.url,
    `Link: ${JSON.stringify(result.eventsLink)}`);
  check('event subscription answered 201', result.eventsSubscribeStatus === 201, `status ${result.eventsSubscribeStatus}`);
  const eventTypes = result.events.map((e) => e.type);
  check('EventSource received active', eventTypes.includes('active'), `events: ${JSON.stringify(result.events)}`);
  check('EventSource received viewercount 1',
    result.events.some((e) => e.type === 'viewercount' && JSON.parse(e.data).viewercount === 1),
    `events: ${JSON.stringify(result.events)}`);
  if (result.error) check('no error in the page', false, result.error.split('\n')[0]);
  if (shared) {
    const fallback = gst.output().split('\n').find((l) => l.includes('goes to webrtcbin'));
    check('the shared transport served the viewer (no webrtcbin for it)', !fallback, fallback || '');
  }
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  failed = anyFailed();
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
