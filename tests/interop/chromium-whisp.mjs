#!/usr/bin/env node
// Interop test: WHISP driven from Chromium pages, against a gst-launch-1.0 server.
//
// Usage: node chromium-whisp.mjs <h264|vp8>
//
// The server (one HTTP server on 127.0.0.1): whepserversink /blue (a blue test pattern, WHISP
// on /whisp) and whipserversrc /whip. Headless Chromium, from a page of another origin (so
// CORS preflights apply to the JSON POSTs):
//   publisher 1: a red canvas published with WHIP to /whip/cam;
//   viewer: plays /blue/cam (red) with plain RTCPeerConnection + fetch, holds the session;
//   switching: the viewer's page POSTs /whisp/switching/endpoint cam -> /blue: blue within
//     2 s; DELETE on the Location: red again within 2 s;
//   grabbing: publisher 2 publishes a green canvas to /whip/cam-4g, and its MediaStream id
//     (the offer's a=msid) grabs cam with 0x0: the viewer turns green within 2 s, and
//     publisher 1's WHIP session URL answers 404 a few seconds later.
// Asserts also one POST in all for the viewer, one inbound video SSRC throughout, and the
// viewer's DELETE 200.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.

import path from 'node:path';

import {
  HOST, VERBOSE, sleep, withTimeout, freePort, reporter, loadChromium, FAKE_MEDIA_ARGS, testPageHtml,
  startPageServer, closePageServer, spawnKept, stopChild, guardRun, waitVideoColor, waitForEndpoint, PLUGIN_PATH,
  launchChromium,
} from './driver.mjs';

const TOTAL_TIMEOUT_MS = 90_000;
const SWITCH_TIMEOUT_MS = 2_000;
const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };

const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8>`);
  process.exit(2);
}
const TAG = `chromium-whisp ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);
const PAGE_HTML = testPageHtml('wish WHISP interop', ['page-common.js', 'whep-player-page.js', 'whip-publisher-page.js']);

const isRed = (c) => c && c.r > 170 && c.g < 90 && c.b < 90;
const isBlue = (c) => c && c.b > 170 && c.r < 90 && c.g < 90;
const isGreen = (c) => c && c.g > 170 && c.r < 90 && c.b < 90;

function startServer(port) {
  const common = [`address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`];
  const args = [
    '-m',
    'whepserversink', 'name=blue', 'path=/blue', 'whisp-path=/whisp', `video-codec=${codec}`, ...common,
    'whipserversrc', 'name=in', ...common,
    'videotestsrc', 'is-live=true', 'pattern=blue', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 'blue.',
    'audiotestsrc', 'is-live=true', '!', 'blue.',
  ];
  log(`GST_PLUGIN_PATH=${PLUGIN_PATH} gst-launch-1.0 ${args.join(' ')}`);
  return spawnKept('gst-launch-1.0', args, { env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_PATH } });
}

let server = null;
let pageServer = null;
let browser = null;
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  const exit = await stopChild(server);
  if (server?.pid) log(`gst-launch-1.0 (pid ${server.pid}) stopped: ${JSON.stringify(exit)}`);
  await closePageServer(pageServer);
}

const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup,
  () => (server ? `--- gst-launch-1.0 output (tail) ---\n${server.output().slice(-20000)}` : ''));

// A WHISP request from the page (cross-origin fetch: a preflight for the JSON POST).
function whisp(page, method, url, body) {
  return page.evaluate(async ({ method, url, body }) => {
    const init = { method, signal: AbortSignal.timeout(5000) };
    if (body) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const r = await fetch(url, init);
    return { status: r.status, location: r.headers.get('Location'), body: await r.text() };
  }, { method, url, body });
}

async function publish(ctx, pageUrl, endpoint, color) {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (VERBOSE) console.log(`[publisher ${color}] ${m.text()}`); });
  await page.goto(pageUrl, { timeout: 10_000 });
  const res = await withTimeout(page.evaluate((cfg) => window.runWhip(cfg), {
    endpoint, videoMime: CODECS[codec], flowTimeoutMs: 15_000, canvasColor: color,
  }), 30_000, `WHIP publish of ${color}`);
  if (res.error) throw new Error(`publisher ${color}: ${res.error}`);
  check(`${color} publisher POST 201`, res.postStatus === 201, `stream id ${res.streamId}`);
  return { page, res };
}

try {
  const port = await freePort();
  const pagePort = await freePort(port);
  const base = `http://${HOST}:${port}`;
  const pageUrl = `http://${HOST}:${pagePort}/`;
  server = startServer(port);
  await waitForEndpoint(`${base}/blue`, server, 10_000, { method: 'OPTIONS' });
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  browser = await launchChromium(chromium, log, FAKE_MEDIA_ARGS);
  const pubCtx = await browser.newContext({ permissions: ['microphone'] });
  const first = await publish(pubCtx, pageUrl, `${base}/whip/cam`, '#ff0000');

  const viewCtx = await browser.newContext({ permissions: [] });
  const view = await viewCtx.newPage();
  view.on('console', (m) => { if (VERBOSE) console.log(`[viewer] ${m.text()}`); });
  await view.goto(pageUrl, { timeout: 10_000 });
  const res = await withTimeout(view.evaluate((cfg) => window.runWhep(cfg), {
    endpoint: `${base}/blue/cam`, minFrames: 10, framesTimeoutMs: 20_000, maxTries: 20, hold: true,
  }), 30_000, 'WHEP session in the viewer page');
  if (res.error) throw new Error(res.error);
  check(`viewer negotiated ${codec}`, (res.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(), res.mimeType);
  const red = await waitVideoColor(view, isRed, 10_000);
  check('viewer plays the red publisher', red.ok, JSON.stringify(red.sample));
  const ssrc = red.sample && red.sample.ssrc;

  // Switching, from the page.
  let t0 = Date.now();
  const sw = await whisp(view, 'POST', `${base}/whisp/switching/endpoint`,
    { 'source media': { URL: `${base}/whip/cam` }, 'destination media': { URL: '/blue' } });
  check('switching POST 201 with a Location readable cross-origin', sw.status === 201 && !!sw.location,
    `${sw.status} ${sw.location} ${sw.body}`);
  const blue = await waitVideoColor(view, isBlue, SWITCH_TIMEOUT_MS);
  check(`blue within ${SWITCH_TIMEOUT_MS} ms of the POST`, blue.ok, `${Date.now() - t0} ms, ${JSON.stringify(blue.sample)}`);
  const back = await whisp(view, 'DELETE', new URL(sw.location, base).href);
  check('DELETE on the switch 200', back.status === 200, String(back.status));
  t0 = Date.now();
  const red2 = await waitVideoColor(view, isRed, SWITCH_TIMEOUT_MS);
  check(`red again within ${SWITCH_TIMEOUT_MS} ms`, red2.ok, `${Date.now() - t0} ms, ${JSON.stringify(red2.sample)}`);

  // Grabbing by a second Chromium publisher, named by its MediaStream id.
  const second = await publish(pubCtx, pageUrl, `${base}/whip/cam-4g`, '#00ff00');
  t0 = Date.now();
  const grab = await whisp(second.page, 'POST', `${base}/whisp/grabbing/endpoint`, {
    'new media': { 'media ID': { vmsid: [second.res.streamId] }, URL: `${base}/whip/cam` }, error_code: '0x0',
  });
  check('grabbing POST 200', grab.status === 200, `${grab.status} ${grab.body}`);
  const green = await waitVideoColor(view, isGreen, SWITCH_TIMEOUT_MS);
  check(`the viewer shows the grabbing publisher within ${SWITCH_TIMEOUT_MS} ms`, green.ok,
    `${Date.now() - t0} ms, ${JSON.stringify(green.sample)}`);
  let oldStatus = null;
  for (let i = 0; i < 40; i++) {
    oldStatus = (await fetch(first.res.sessionUrl, { signal: AbortSignal.timeout(3000) })).status;
    if (oldStatus === 404) break;
    await sleep(250);
  }
  check('the grabbed publisher\'s WHIP session URL answers 404', oldStatus === 404, `${Date.now() - t0} ms after the grab`);

  const last = await view.evaluate(() => window.sampleVideo());
  check('one inbound video SSRC throughout', ssrc != null && [blue, red2, green].every((s) => s.sample && s.sample.ssrc === ssrc)
    && last.ssrc === ssrc, `${ssrc} / ${blue.sample?.ssrc} / ${green.sample?.ssrc} / ${last.ssrc}`);
  check('one offer/answer in all', res.posts.length === 1, `${res.posts.length} POST(s)`);
  const del = await view.evaluate(() => window.endWhep());
  check('viewer DELETE 200', del === 200, String(del));
  await second.page.evaluate(() => window.stopWhip());
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  const failed = anyFailed();
  const out = server ? server.output() : '';
  await cleanup();
  if (failed || VERBOSE) console.log(`--- gst-launch-1.0 output (tail) ---\n${out.slice(-20000)}`);
  clearTimeout(watchdog);
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'}`);
  process.exit(failed ? 1 : 0);
}
