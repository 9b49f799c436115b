#!/usr/bin/env node
// Interop test: headless Chromium publishes three-layer simulcast (rids q, h, f: 320x180,
// 640x360 and 1280x720 of a 1280x720 canvas) with WHIP to the relay of the README
// (whipserversrc -> whepserversink, stream /whip/cam played at /whep/cam), which serves the
// encodings as video layers without re-encoding:
//   whepsrc players (one gst-launch-1.0) asking for each layer with video-layer decode that
//   size, and one asking for none gets the largest;
//   a Chromium viewer on the player page the server serves at /whep/cam fills its layer
//   selector from the layers event and, picking a layer (POST to the layer URL), shows its
//   size; both change layers without a new session. While the publisher stops sending its
//   largest encoding, the whepsrc player without video-layer gets the largest one still sent.
// Then the same publisher on /whip: the pads of whipserversrc take its largest encoding, which a
// viewer of /whep decodes.
//
// Usage: node chromium-simulcast.mjs <vp8|h264>
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.

import fs from 'node:fs';
import path from 'node:path';

import {
  HOST, VERBOSE, sleep, withTimeout, freePort, reporter, loadChromium, FAKE_MEDIA_ARGS, testPageHtml,
  startPageServer, closePageServer, spawnKept, stopChild, guardRun, waitForEndpoint, PLUGIN_PATH, launchChromium,
  spawnRelay,
} from './driver.mjs';

const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };
const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <vp8|h264>`);
  process.exit(2);
}
const TAG = `chromium-simulcast ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);

const LAYERS = { q: [320, 180], h: [640, 360], f: [1280, 720] };
const SIZE_TIMEOUT_MS = 25_000;
const PAGE_HTML = testPageHtml('wish simulcast interop', ['page-common.js', 'whep-player-page.js', 'whip-publisher-page.js']);
const env = { ...process.env, GST_PLUGIN_PATH: PLUGIN_PATH };

let relay = null, players = null, pageServer = null, browser = null, cleanedUp = false;
async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  await stopChild(players);
  await stopChild(relay);
  await closePageServer(pageServer);
}
const watchdog = guardRun(TAG, 150_000, cleanup, () => [relay, players].filter(Boolean).map((c) => c.output().slice(-10000)).join('\n---\n'));

// The size the identity element `name` of the players' pipeline passed last (gst-launch -v
// prints caps as they are set).
// Whether the decoder inside whepsrc `src_<name>` made pictures (a viewer with nothing on its
// pad may still have decoded: the frames were lost between its decoder and its pad).
const insideOnly = (name) => new RegExp(`src_${name}/GstDecodeBin:[^\\n]*\\.GstPad:src: caps = video/x-raw`).test(players.output());

function lastSize(out, name) {
  const re = new RegExp(`GstIdentity:${name}\\.GstPad:src: caps = video/x-raw[^\\n]*?width=\\(int\\)(\\d+), height=\\(int\\)(\\d+)`, 'g');
  let m, last = null;
  while ((m = re.exec(out))) last = [Number(m[1]), Number(m[2])];
  return last;
}
async function waitFor(pred, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred()) return true;
    await sleep(200);
  }
  return pred();
}

let pub = null;
try {
  const port = await freePort();
  const pagePort = await freePort(port);
  const base = `http://${HOST}:${port}`;
  relay = spawnRelay(port, log);
  await waitForEndpoint(`${base}/whip`, relay, 10_000, { method: 'OPTIONS' });
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  browser = await launchChromium(chromium, log, FAKE_MEDIA_ARGS);

  const pubPage = await (await browser.newContext({ permissions: ['camera', 'microphone'] })).newPage();
  pubPage.on('pageerror', (e) => log(`publisher page error: ${e.message}`));
  if (VERBOSE) pubPage.on('console', (m) => console.log(`[publisher] ${m.text()}`));
  await pubPage.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });
  pub = await withTimeout(pubPage.evaluate((cfg) => window.runWhip(cfg), {
    endpoint: `${base}/whip/cam`, videoMime: CODECS[codec], flowTimeoutMs: 15_000,
    canvasColor: '#3366cc', canvasWidth: 1280, canvasHeight: 720, minVideoKbps: 2500,
    simulcast: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
  }), 30_000, 'WHIP publish in the page');
  check('publisher POST answered 201', pub.postStatus === 201, `status ${pub.postStatus} ${pub.error || ''}`);
  const answer = pub.answerSdp || '';
  check('the answer takes the simulcast (a=simulcast:recv q;h;f, a=rid:<id> recv)',
    /a=simulcast:recv q;h;f/.test(answer) && ['q', 'h', 'f'].every((r) => answer.includes(`a=rid:${r} recv`)), answer);
  // Every encoding sent, at its size.
  let layers = [];
  for (let i = 0; i < 40; i++) {
    layers = (await pubPage.evaluate(() => outboundStats(window.whipPc))).videoLayers;
    if (Object.keys(LAYERS).every((rid) => layers.some((l) => l.rid === rid && l.framesEncoded > 10))) break;
    await sleep(250);
  }
  log(`publisher encodings: ${layers.map((l) => `${l.rid} ${l.frameWidth}x${l.frameHeight} ${l.mimeType} ${l.framesEncoded} frames`).join(', ')}`);
  for (const [rid, [w, h]] of Object.entries(LAYERS)) {
    const l = layers.find((x) => x.rid === rid);
    check(`publisher sends ${rid} at ${w}x${h} in ${CODECS[codec]}`,
      !!l && l.frameWidth === w && l.frameHeight === h && (l.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(),
      l ? `${l.frameWidth}x${l.frameHeight} ${l.mimeType}` : 'not sent');
  }

  // whepsrc players, one per layer and one leaving the choice to the server.
  const player = (name, layer) => [
    'whepsrc', `name=src_${name}`, `whep-endpoint=${base}/whep/cam`, `ice-local-addresses=${HOST}`, 'audio-codecs=none', ...(layer ? [`video-layer=${layer}`] : []),
    '!', 'videoconvert', '!', 'identity', `name=${name}`, 'silent=true', '!', 'fakesink', 'sync=false',
  ];
  players = spawnKept('gst-launch-1.0', ['-v', '-m', ...player('auto', ''), ...player('q', 'q'), ...player('h', 'h'), ...player('f', 'f')],
    { env: process.env.PLAYERS_GST_DEBUG ? { ...env, GST_DEBUG: process.env.PLAYERS_GST_DEBUG } : env });
  const expected = { auto: LAYERS.f, q: LAYERS.q, h: LAYERS.h, f: LAYERS.f };
  const sizeOk = (name) => {
    const s = lastSize(players.output(), name);
    return !!s && s[0] === expected[name][0] && s[1] === expected[name][1];
  };
  await waitFor(() => Object.keys(expected).every(sizeOk), SIZE_TIMEOUT_MS);
  for (const name of Object.keys(expected)) {
    const s = lastSize(players.output(), name);
    check(`whepsrc ${name === 'auto' ? 'without video-layer decodes the largest' : `video-layer=${name} decodes`} ${expected[name].join('x')}`,
      sizeOk(name), s ? `last decoded ${s.join('x')}` : insideOnly(name) ? 'decoded in whepsrc, nothing on its pad' : 'nothing decoded');
  }
  const answered = ['q', 'h', 'f'].every((r) => new RegExp(`wish-layer, rid=\\(string\\)${r}, status=\\(uint\\)200`).test(players.output()));
  check('the layer requests were answered 200 (wish-layer)', answered,
    (players.output().match(/wish-layer[^\n]*/g) || []).join(' | '));
  check('the relay encoded nothing (no encoder in its pipeline)', !/(vp8enc|x264enc|openh264enc)/.test(relay.output()));
  // The key frames the relay asked for (FIR, or PLI), per encoding.
  layers = (await pubPage.evaluate(() => outboundStats(window.whipPc))).videoLayers;
  log(`publisher after the players: ${layers.map((l) => `${l.rid} ${l.firCount} FIR ${l.pliCount} PLI ${l.keyFramesEncoded} key frames`).join(', ')}`);

  // The publisher stops sending its largest encoding for a while, as a browser does when its
  // bandwidth estimate or CPU falls short: the player that leaves the choice to the server
  // goes on with the largest one still sent, and gets the largest again once it is back.
  const setActive = (rid, active) => pubPage.evaluate(async ([r, a]) => {
    const sender = window.whipPc.getSenders().find((x) => x.track && x.track.kind === 'video');
    const params = sender.getParameters();
    params.encodings.find((e) => e.rid === r).active = a;
    await sender.setParameters(params);
  }, [rid, active]);
  const autoIs = ([w, h]) => { const s = lastSize(players.output(), 'auto'); return !!s && s[0] === w && s[1] === h; };
  await setActive('f', false);
  await waitFor(() => autoIs(LAYERS.h), 10_000);
  check(`while f is not sent, whepsrc without video-layer decodes h (${LAYERS.h.join('x')})`, autoIs(LAYERS.h),
    `last decoded ${lastSize(players.output(), 'auto')}`);
  await setActive('f', true);
  await waitFor(() => autoIs(LAYERS.f), 15_000);
  check(`once f is sent again, it decodes f (${LAYERS.f.join('x')})`, autoIs(LAYERS.f),
    `last decoded ${lastSize(players.output(), 'auto')}`);

  // A Chromium viewer on the server's player page: the layer selector and the layer URL.
  const viewPage = await (await browser.newContext({ permissions: [] })).newPage();
  viewPage.on('pageerror', (e) => log(`viewer page error: ${e.message}`));
  const whep = `${base}/whep/cam`;
  await viewPage.route(whep, async (route) => {  // only its 127.0.0.1 candidates reach the server
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    const sdp = (req.postData() || '').split('\r\n').filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === HOST).join('\r\n');
    return route.continue({ postData: sdp });
  });
  await viewPage.goto(whep, { timeout: 10_000 });
  const stats = () => viewPage.evaluate(() => document.getElementById('stats').textContent);
  const overlay = (w, h, ms) => viewPage.waitForFunction((want) => document.getElementById('stats').textContent.startsWith(want),
    `${w}x${h} `, { timeout: ms }).then(() => true, () => false);
  check('the Chromium viewer plays the largest layer (1280x720)', await overlay(1280, 720, SIZE_TIMEOUT_MS), await stats());
  await viewPage.waitForFunction(() => document.querySelectorAll('#layer option').length > 1, null, { timeout: 10_000 })
    .catch(() => {});  // the layers event may come after the first frames
  const options = await viewPage.evaluate(() => Array.from(document.querySelectorAll('#layer option')).map((o) => o.value));
  check('its layer selector lists the encodings from the layers event, largest first', options.join(',') === ',f,h,q',
    `options: ${options.join(',')}`);
  for (const rid of ['q', 'h']) {
    if (!options.includes(rid)) continue;
    await viewPage.selectOption('#layer', rid);
    check(`picking ${rid} shows ${LAYERS[rid].join('x')}`, await overlay(...LAYERS[rid], 15_000), await stats());
  }
  const gone = await pubPage.evaluate(() => window.stopWhip());
  check('publisher DELETE returned 200', gone.deleteStatus === 200, `${gone.deleteStatus}`);

  // The same publisher on /whip itself: its largest encoding feeds the element's pads, played
  // at /whep.
  const padsPage = await (await browser.newContext({ permissions: ['camera', 'microphone'] })).newPage();
  await padsPage.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });
  const padsPub = await withTimeout(padsPage.evaluate((cfg) => window.runWhip(cfg), {
    endpoint: `${base}/whip`, videoMime: CODECS[codec], flowTimeoutMs: 15_000,
    canvasColor: '#3366cc', canvasWidth: 1280, canvasHeight: 720, minVideoKbps: 2500,
    simulcast: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
  }), 30_000, 'WHIP publish to /whip');
  check('publisher on /whip answered 201', padsPub.postStatus === 201, `status ${padsPub.postStatus} ${padsPub.error || ''}`);
  const padsViewPage = await (await browser.newContext({ permissions: [] })).newPage();
  await padsViewPage.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });
  const padsView = await withTimeout(padsViewPage.evaluate((cfg) => window.runWhep(cfg), {
    endpoint: `${base}/whep`, minFrames: 20, framesTimeoutMs: 15_000, maxTries: 20,
  }), 30_000, 'WHEP session on /whep');
  check('a viewer of the pads decodes the largest encoding (1280x720)',
    padsView.framesDecoded >= 20 && padsView.video?.frameWidth === 1280 && padsView.video?.frameHeight === 720,
    `${padsView.framesDecoded} frames, ${padsView.video?.frameWidth}x${padsView.video?.frameHeight} ${padsView.error || ''}`);
  await padsPage.evaluate(() => window.stopWhip());
} catch (e) {
  check('test ran to completion', false, e.stack || e.message);
} finally {
  const failed = anyFailed();
  if (failed || VERBOSE) {
    if (pub?.offerSdp) console.log(`--- publisher offer ---\n${pub.offerSdp}`);
    if (pub?.answerSdp) console.log(`--- publisher answer ---\n${pub.answerSdp}`);
  }
  await cleanup();
  if (process.env.WISH_TEST_LOGDIR) {  // whole outputs, for a closer look
    for (const [what, c] of [['relay', relay], ['players', players]])
      if (c) fs.writeFileSync(path.join(process.env.WISH_TEST_LOGDIR, `simulcast-${codec}-${what}.log`), c.output());
  }
  if (failed || VERBOSE) {
    if (relay) console.log(`--- relay output (tail) ---\n${relay.output().slice(-15000)}`);
    if (players) {
      const told = players.output().split('\n').filter((l) => /wish-|GstIdentity|ERROR|WARNING|error|warning/.test(l) && !/property-notify/.test(l));
      console.log(`--- players: messages, errors and decoded caps ---\n${told.join('\n').slice(-20000)}`);
    }
  }
  clearTimeout(watchdog);
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'}`);
  process.exit(failed ? 1 : 0);
}
