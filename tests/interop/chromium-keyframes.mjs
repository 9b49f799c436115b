#!/usr/bin/env node
// Interop test: late viewers of a Chromium WHIP publisher get a key frame on request.
// Headless Chromium publishes to the relay of the README (whipserversrc -> whepserversink,
// no re-encoding), first one encoding (/whip/plain), then three-layer simulcast (/whip/sim,
// rids q, h, f). Once the publisher has settled, whepsrc viewers join one after the other;
// every one makes the relay ask the publisher for a key frame of the encoding it plays
// (RTCP FIR/PLI). Chromium makes no key frames of its own after the first ones, so:
//   the publisher's keyFramesEncoded (of the encoding watched) grows with every viewer;
//   every request Chromium counted made a key frame: none came within the 300 ms after
//   another in which Chromium ignores them (for all encodings of a sender at once), where a
//   viewer's request is lost and it waits for the next one;
//   every viewer decodes its first frame soon after its session starts (well under the
//   seconds a viewer would wait for a key frame the publisher makes of its own accord).
// The page's outbound-rtp stats (pliCount, firCount, keyFramesEncoded per encoding) and
// each viewer's time to first frame are logged.
//
// Usage: node chromium-keyframes.mjs <vp8|h264>
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.

import fs from 'node:fs';
import path from 'node:path';

import {
  HOST, VERBOSE, PLUGIN_PATH, sleep, withTimeout, freePort, reporter, loadChromium, launchChromium, FAKE_MEDIA_ARGS,
  testPageHtml, startPageServer, closePageServer, spawnKept, spawnRelay, stopChild, guardRun, waitForEndpoint,
} from './driver.mjs';

const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };
const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <vp8|h264>`);
  process.exit(2);
}
const TAG = `chromium-keyframes ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);

// A viewer's first frame: the session set up (ICE, DTLS, a fresh gst-launch-1.0's decoder)
// and one key frame round trip, a few ms on loopback; the rest is slack for a busy machine
// (1.4 s seen at load average 10). Ignored requests are caught by the key frame counts
// below; this bound catches a viewer left waiting for a key frame Chromium makes of its own
// accord, which takes far longer (or never comes).
const FIRST_FRAME_MS = 3_000;
// A viewer's session (a fresh gst-launch-1.0, its webrtcbin, the offer, ICE and DTLS) took
// more than 8 s on a machine at load average 20: its first frame is waited for from then on.
const SESSION_TIMEOUT_MS = 20_000;
const VIEWER_TIMEOUT_MS = 8_000;
// Between viewers: more than the relay's and Chromium's minimum intervals between key frame
// requests, so that every viewer's request is one of its own.
const VIEWER_GAP_MS = 1_200;
const PAGE_HTML = testPageHtml('wish key frame interop', ['page-common.js', 'whip-publisher-page.js']);
const env = { ...process.env, GST_PLUGIN_PATH: PLUGIN_PATH };
// For a closer look (with WISH_TEST_LOGDIR): GST_DEBUG of the relay and of the viewers.
const debugEnv = (what) => (process.env[what] ? { GST_DEBUG: process.env[what], GST_DEBUG_NO_COLOR: '1' } : {});

let relay = null, viewer = null, pageServer = null, browser = null, cleanedUp = false;
const viewerLogs = [];
async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  await stopChild(viewer);
  await stopChild(relay);
  await closePageServer(pageServer);
}
const watchdog = guardRun(TAG, 170_000, cleanup, () => [relay, viewer].filter(Boolean).map((c) => c.output().slice(-10000)).join('\n---\n'));

const layerStats = async (page) => (await page.evaluate(() => outboundStats(window.whipPc))).videoLayers;
const byRid = (layers, rid) => layers.find((l) => (rid ? l.rid === rid : true)) || {};
const summary = (layers) => layers.map((l) => `${l.rid || 'video'} ssrc ${l.ssrc}: ${l.keyFramesEncoded} key frames of `
  + `${l.framesEncoded}, ${l.pliCount} PLI, ${l.firCount} FIR, ${l.frameWidth}x${l.frameHeight}, `
  + `${l.packetsSent} packets, limited by ${l.qualityLimitationReason}`).join('; ');

// One whepsrc viewer (its own gst-launch) of `endpoint`: { started, firstFrame } in ms since
// its spawn (null when not seen within SESSION_TIMEOUT_MS of its spawn, VIEWER_TIMEOUT_MS of
// its session), and whether its decoder made a
// picture at all (inside whepsrc: it may not have reached the element's pad), then it is stopped.
async function lateViewer(endpoint, layer) {
  const t0 = Date.now();
  viewer = spawnKept('gst-launch-1.0', [
    '-v', '-m', 'whepsrc', `whep-endpoint=${endpoint}`, `ice-local-addresses=${HOST}`, 'audio-codecs=none',
    ...(layer ? [`video-layer=${layer}`] : []),
    '!', 'videoconvert', '!', 'identity', 'name=v', 'silent=true', '!', 'fakesink', 'sync=false',
  ], { env: { ...env, ...debugEnv('VIEWER_GST_DEBUG') } });
  let started = null, firstFrame = null, deadline = t0 + SESSION_TIMEOUT_MS;
  while (Date.now() < deadline && viewer.isRunning()) {
    const out = viewer.output();
    if (started === null && /wish-session-started/.test(out)) {
      started = Date.now() - t0;
      deadline = Date.now() + VIEWER_TIMEOUT_MS;
    }
    if (/GstIdentity:v\.GstPad:src: caps = video\/x-raw/.test(out)) {
      firstFrame = Date.now() - t0;
      break;
    }
    await sleep(20);
  }
  const decoded = /GstDecodeBin:[^\n]*\.GstPad:src: caps = video\/x-raw/.test(viewer.output());
  viewerLogs.push(viewer.output());
  await stopChild(viewer);
  viewer = null;
  return { started, firstFrame, decoded };
}

// Publishes with `cfg` to `name`, lets `viewers` (video-layer per viewer, '' for the
// server's choice) join one after the other and checks key frames and first frames.
async function scenario(base, pagePort, name, cfg, viewers) {
  const page = await (await browser.newContext({ permissions: ['camera', 'microphone'] })).newPage();
  page.on('pageerror', (e) => log(`publisher page error: ${e.message}`));
  if (VERBOSE) page.on('console', (m) => console.log(`[publisher] ${m.text()}`));
  await page.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });
  const pub = await withTimeout(page.evaluate((c) => window.runWhip(c), {
    endpoint: `${base}/whip/${name}`, videoMime: CODECS[codec], flowTimeoutMs: 15_000, canvasColor: '#3366cc', ...cfg,
  }), 30_000, `WHIP publish to /whip/${name}`);
  if (!check(`${name}: publisher POST answered 201`, pub.postStatus === 201, `status ${pub.postStatus} ${pub.error || ''}`)) return;
  // Chromium asks for what the answer allows: key frame requests need ccm fir or nack pli.
  const video = (pub.answerSdp || '').split('m=video')[1] || '';
  const pts = (video.match(/a=rtpmap:\d+ (VP8|H264|VP9)\//g) || []).map((l) => l.slice(9).split(' ')[0]);
  check(`${name}: the answer allows FIR and PLI for its video (a=rtcp-fb:<pt> ccm fir, nack pli)`,
    pts.length > 0 && pts.every((pt) => video.includes(`a=rtcp-fb:${pt} ccm fir`) && video.includes(`a=rtcp-fb:${pt} nack pli`)),
    (video.match(/a=(rtpmap|rtcp-fb):[^\r\n]*/g) || []).join(' | '));
  const rids = cfg.simulcast ? cfg.simulcast.map((e) => e.rid) : [''];
  // Settled: every encoding sends, and its key frames stopped coming.
  let before = [];
  for (let i = 0, still = 0; i < 60 && still < 8; i++) {
    await sleep(250);
    const now = await layerStats(page);
    const same = rids.every((r) => byRid(now, r).framesEncoded > 10
      && byRid(now, r).keyFramesEncoded === byRid(before, r).keyFramesEncoded);
    still = same ? still + 1 : 0;
    before = now;
  }
  log(`${name}: before the viewers: ${summary(before)}`);
  const times = [];
  for (const layer of viewers) {
    const atStart = await layerStats(page);
    const t = await lateViewer(`${base}/whep/${name}`, layer);
    const ttff = t.started !== null && t.firstFrame !== null ? t.firstFrame - t.started : null;
    times.push(ttff);
    log(`${name}: viewer ${layer || '(largest)'}: session started after ${t.started} ms, first frame ${ttff} ms later`);
    check(`${name}: viewer of ${layer || 'the largest encoding'} decodes its first frame within ${FIRST_FRAME_MS} ms of its session`,
      ttff !== null && ttff <= FIRST_FRAME_MS,
      t.started === null ? `no session within ${SESSION_TIMEOUT_MS} ms` : ttff === null ? 'no frame' : `${ttff} ms`);
    if (ttff === null || ttff > FIRST_FRAME_MS) {  // what the publisher sent meanwhile
      log(`${name}: the viewer's decoder ${t.decoded ? 'made pictures, none on whepsrc\'s pad by then' : 'made no picture'}`);
      log(`${name}: publisher as the viewer came: ${summary(atStart)}`);
      log(`${name}: publisher as it left: ${summary(await layerStats(page))}`);
    }
    await sleep(VIEWER_GAP_MS);
  }
  const after = await layerStats(page);
  log(`${name}: after the viewers: ${summary(after)}`);
  for (const rid of rids) {
    const watched = viewers.filter((l) => (cfg.simulcast ? (l || rids[rids.length - 1]) === rid : true)).length;
    if (!watched) continue;
    const grown = (byRid(after, rid).keyFramesEncoded || 0) - (byRid(before, rid).keyFramesEncoded || 0);
    const asked = (byRid(after, rid).pliCount || 0) + (byRid(after, rid).firCount || 0)
      - (byRid(before, rid).pliCount || 0) - (byRid(before, rid).firCount || 0);
    check(`${name}: ${rid || 'the encoding'} made a key frame for each of its ${watched} late viewers`, grown >= watched,
      `${grown} more key frames, ${asked} more PLI/FIR counted`);
  }
  // Chromium makes a key frame of every encoding for a request it honours.
  const asked = rids.reduce((n, r) => n + (byRid(after, r).pliCount || 0) + (byRid(after, r).firCount || 0)
    - (byRid(before, r).pliCount || 0) - (byRid(before, r).firCount || 0), 0);
  const made = Math.min(...rids.map((r) => (byRid(after, r).keyFramesEncoded || 0) - (byRid(before, r).keyFramesEncoded || 0)));
  check(`${name}: every key frame request Chromium counted made a key frame (none within its minimum interval)`,
    asked > 0 && made >= asked, `${asked} PLI/FIR, ${made} key frames`);
  log(`${name}: time to first frame (ms): ${times.join(', ')}`);
  await page.evaluate(() => window.stopWhip());
  await page.context().close();
}

try {
  const port = await freePort();
  const pagePort = await freePort(port);
  const base = `http://${HOST}:${port}`;
  relay = spawnRelay(port, log, debugEnv('RELAY_GST_DEBUG'));
  await waitForEndpoint(`${base}/whip`, relay, 10_000, { method: 'OPTIONS' });
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  browser = await launchChromium(chromium, log, FAKE_MEDIA_ARGS);

  await scenario(base, pagePort, 'plain', { canvasWidth: 640, canvasHeight: 360, minVideoKbps: 800 }, ['', '', '']);
  await scenario(base, pagePort, 'sim', {
    canvasWidth: 1280, canvasHeight: 720, minVideoKbps: 2500,
    simulcast: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
  }, ['', 'q', 'h', '']);
} catch (e) {
  check('test ran to completion', false, e.stack || e.message);
} finally {
  const failed = anyFailed();
  await cleanup();
  if (process.env.WISH_TEST_LOGDIR) {  // whole outputs, for a closer look
    if (relay) fs.writeFileSync(path.join(process.env.WISH_TEST_LOGDIR, `keyframes-${codec}-relay.log`), relay.output());
    fs.writeFileSync(path.join(process.env.WISH_TEST_LOGDIR, `keyframes-${codec}-viewers.log`), viewerLogs.join('\n=====\n'));
  }
  if (failed || VERBOSE) {
    if (relay) console.log(`--- relay output (tail) ---\n${relay.output().slice(-15000)}`);
    const told = viewerLogs.join('\n=====\n').split('\n').filter((l) => /wish-|GstIdentity|ERROR|WARNING|error|warning|=====/.test(l) && !/property-notify/.test(l));
    console.log(`--- viewers: messages, errors and decoded caps ---\n${told.join('\n').slice(-10000)}`);
  }
  clearTimeout(watchdog);
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'}`);
  process.exit(failed ? 1 : 0);
}
