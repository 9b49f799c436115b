#!/usr/bin/env node
// Interop test: whepserversink serves every viewer a picture whatever video codec it takes.
//
// Usage: node chromium-codecs.mjs <h264|vp8>
//
// The argument is the codec of the server's video: h264 feeds whepserversink H.264 already
// encoded (x264enc upstream, so it decodes once and encodes once per extra codec); vp8 feeds
// it raw video with video-codec=vp8 (it encodes once per codec). The picture is a red
// videotestsrc (320x240@30), with an audiotestsrc.
//   1. Server 1 (transcode on, the default): three Chromium pages at once, of another origin
//      than the server (CORS applies), each restricting its video transceiver with
//      setCodecPreferences to one codec: VP8 only, H.264 only, VP9 only. Each must get a
//      201 whose answer's video m-line is not inactive and names its codec, turn red, and
//      report (getStats: inbound-rtp video codecId -> codec mimeType) its codec with more
//      than 30 frames decoded; then DELETE 200.
//   2. Server 2 (transcode=false counter-offer=never): a page taking only a codec other than
//      the server's (VP8 for h264, H.264 for vp8) gets 422 with a problem+json body saying
//      "transcoding is off".
// The pages wait for ICE gathering to complete; non-127.0.0.1 candidates are stripped from
// their offers. Prints POST->201 and first-red timings per page.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.
//
// Environment: GST_PLUGIN_PATH (default ../../build/gst/wish), CHROMIUM, GST_DEBUG (its
// output is printed when the test fails), VERBOSE=1 (page logs, SDPs and the server logs
// also on success).

import path from 'node:path';

import {
  HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, testPageHtml, startPageServer,
  closePageServer, spawnKept, stopChild, guardRun, waitVideoColor, waitForEndpoint, PLUGIN_PATH, launchChromium,
} from './driver.mjs';

const TOTAL_TIMEOUT_MS = 90_000;
const SERVER_READY_TIMEOUT_MS = 10_000;
const PAGE_RUN_TIMEOUT_MS = 25_000;   // offer, gathering and POST (with 409 retries) in a page
const RED_TIMEOUT_MS = 15_000;        // first red frame after the 201
const FRAMES_TIMEOUT_MS = 10_000;     // framesDecoded > MIN_FRAMES after the first red frame
const MIN_FRAMES = 30;
const MAX_POST_TRIES = 20;

// The server's video codec -> the viewer that cannot take it (refused with transcode=false).
const SERVER_CODECS = { h264: { other: 'VP8-only' }, vp8: { other: 'H264-only' } };
const VIEWERS = [
  { name: 'VP8-only', mime: 'video/VP8', encoding: 'VP8' },
  { name: 'H264-only', mime: 'video/H264', encoding: 'H264' },
  { name: 'VP9-only', mime: 'video/VP9', encoding: 'VP9' },
];

const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in SERVER_CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8>`);
  process.exit(2);
}
const TAG = `chromium-codecs ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);
const PAGE_HTML = testPageHtml('wish codecs interop', ['page-common.js', 'whep-player-page.js', 'codecs-page.js']);

const isRed = (c) => c && c.r > 170 && c.g < 90 && c.b < 90;
const onLoopback = (c) => typeof c === 'string' && c.startsWith(`${HOST}:`);

function startServer(port, extra = []) {
  const raw = ['videotestsrc', 'is-live=true', 'pattern=red', '!', 'video/x-raw,width=320,height=240,framerate=30/1'];
  const video = codec === 'h264'
    ? [...raw, '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=30',
      '!', 'video/x-h264,profile=constrained-baseline', '!', 'whep.']
    : [...raw, '!', 'whep.'];
  const args = [
    '-e',
    'whepserversink', 'name=whep', 'path=/whep', `address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`,
    ...(codec === 'vp8' ? ['video-codec=vp8'] : []), ...extra,
    ...video,
    'audiotestsrc', 'is-live=true', '!', 'whep.',
  ];
  log(`GST_PLUGIN_PATH=${PLUGIN_PATH} gst-launch-1.0 ${args.join(' ')}`);
  return spawnKept('gst-launch-1.0', args, { env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_PATH } });
}

const servers = [];     // { what, child, output }
let pageServer = null;
let browser = null;
let cleanedUp = false;

async function stopServer(s) {
  if (!s || s.stopped) return;
  s.stopped = true;
  const exit = await stopChild(s.child);
  s.output = s.child.output();
  log(`${s.what}: gst-launch-1.0 (pid ${s.child.pid}) stopped: ${JSON.stringify(exit)}`);
}

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  for (const s of servers) await stopServer(s);
  await closePageServer(pageServer);
}

const serverLogs = () => servers.map((s) => `--- ${s.what}: gst-launch-1.0 output (tail) ---\n${(s.output ?? s.child.output()).slice(-20000)}`).join('\n');
const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup, serverLogs);

async function openPage(ctx, pageUrl, who) {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (VERBOSE) console.log(`[${who}] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[${who} error] ${e.message}`));
  await page.goto(pageUrl, { timeout: 10_000 });
  return page;
}

// One viewer taking only v.mime: POST, first red frame, then its stats with > MIN_FRAMES
// frames decoded (the session stays held for the DELETE). Never throws.
async function playOne(ctx, pageUrl, endpoint, v) {
  const out = { v, page: null, res: null, red: null, redMs: null, stats: null, error: null };
  try {
    out.page = await openPage(ctx, pageUrl, v.name);
    out.res = await withTimeout(out.page.evaluate((cfg) => window.runWhepCodec(cfg), {
      endpoint, videoMime: v.mime, maxTries: MAX_POST_TRIES,
    }), PAGE_RUN_TIMEOUT_MS, `WHEP session of the ${v.name} page`);
    if (out.res.postStatus !== 201 || out.res.error) return out;
    out.red = await waitVideoColor(out.page, isRed, RED_TIMEOUT_MS);
    if (out.red.ok) out.redMs = Date.now() - out.res.postedAt;
    const deadline = Date.now() + FRAMES_TIMEOUT_MS;
    do {
      out.stats = await out.page.evaluate(() => window.codecStats());
      if ((out.stats.video?.framesDecoded ?? 0) > MIN_FRAMES && out.stats.video?.mimeType) break;
      await sleep(200);
    } while (Date.now() < deadline);
  } catch (e) {
    out.error = e.message;
  }
  return out;
}

function describePosts(res) {
  return res ? res.posts.map((p) => `${p.status}${p.retryAfter ? `(Retry-After ${p.retryAfter})` : ''}`).join(' ') : '-';
}

const played = [];
let refused = null;
try {
  const port1 = await freePort();
  const pagePort = await freePort(port1);
  const port2 = await freePort(port1, pagePort);
  const pageUrl = `http://${HOST}:${pagePort}/`;

  // 1. Transcoding on: three single-codec viewers at once.
  const s1 = { what: 'server 1 (transcode on)', child: startServer(port1) };
  servers.push(s1);
  const endpoint1 = `http://${HOST}:${port1}/whep`;
  await waitForEndpoint(endpoint1, s1.child, SERVER_READY_TIMEOUT_MS, { method: 'OPTIONS' });
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  log(`pages at ${pageUrl} (another origin than the server's: CORS applies)`);
  browser = await launchChromium(chromium, log);
  // No camera/microphone permission: Chromium's checks to the server's 127.0.0.1
  // candidates leave from 127.0.0.1 (see chromium-whep.mjs).
  const ctx = await browser.newContext({ permissions: [] });
  played.push(...await Promise.all(VIEWERS.map((v) => playOne(ctx, pageUrl, endpoint1, v))));

  for (const p of played) {
    const { v, res } = p;
    const r = res || { posts: [] };
    if (res) {
      log(`${v.name}: preferred ${JSON.stringify(res.preferred)}; offer candidates ${res.offerCandidatesKept.length} kept, `
        + `${res.offerCandidatesDropped.length} stripped; POSTs ${describePosts(res)}`);
    }
    const offerVideo = r.offerVideo?.[0];
    check(`${v.name}: the offer's video takes ${v.encoding} only`,
      !!offerVideo && offerVideo.codecs.length === 1 && offerVideo.codecs[0].toUpperCase() === v.encoding,
      p.error || r.error || `offer video codecs ${JSON.stringify(offerVideo?.codecs)}`);
    check(`${v.name}: POST 201`, r.postStatus === 201 && !r.error,
      `${r.postStatus}${r.postStatus === 201 ? '' : ` ${(r.body || '').slice(0, 300)}`}, POST->201 ${r.postMs} ms, ${r.posts.length} POST(s)`);
    const av = r.answerVideo?.[0];
    check(`${v.name}: answer's video m-line active and naming ${v.encoding}`,
      !!av && av.port !== 0 && av.direction !== 'inactive' && av.codecs.map((c) => c.toUpperCase()).includes(v.encoding),
      av ? `direction ${av.direction}, port ${av.port}, codecs ${JSON.stringify(av.codecs)}` : 'no video m-line in the answer');
    check(`${v.name}: turns red`, !!p.red?.ok,
      p.red ? `first red ${p.redMs ?? '-'} ms after the POST, ${JSON.stringify(p.red.sample)}` : (p.error || 'not played'));
    const sv = p.stats?.video;
    check(`${v.name}: getStats inbound video codec is ${v.mime}`, (sv?.mimeType || '').toLowerCase() === v.mime.toLowerCase(),
      `mimeType ${sv?.mimeType}, fmtp ${sv?.sdpFmtpLine}, decoder ${sv?.decoderImplementation}`);
    check(`${v.name}: framesDecoded > ${MIN_FRAMES}`, (sv?.framesDecoded ?? 0) > MIN_FRAMES,
      `framesDecoded ${sv?.framesDecoded}, ${sv?.frameWidth}x${sv?.frameHeight}, keyframes ${sv?.keyFramesDecoded}, `
      + `packets ${sv?.packetsReceived}, lost ${sv?.packetsLost}, PLIs ${sv?.pliCount}, NACKs ${sv?.nackCount}`);
    console.log(`info ${v.name}: audio packets ${p.stats?.audio?.packetsReceived ?? 0} (${p.stats?.audio?.mimeType ?? 'n/a'}), `
      + `selected pair ${p.stats?.pair?.local} <-> ${p.stats?.pair?.remote}`
      + `${onLoopback(p.stats?.pair?.local) && onLoopback(p.stats?.pair?.remote) ? '' : ' (NOT loopback only)'}`);
  }
  for (const p of played) {
    if (!p.res?.sessionUrl || !p.page) continue;
    const del = await withTimeout(p.page.evaluate(() => window.endWhep()), 10_000, `DELETE of the ${p.v.name} session`);
    check(`${p.v.name}: DELETE 200`, del === 200, String(del));
  }
  log(`timings (server ${codec}): ${played.map((p) => `${p.v.name} POST->201 ${p.res?.postMs ?? '-'} ms (${p.res?.posts.length ?? 0} POST(s)), `
    + `first red ${p.redMs ?? '-'} ms after the POST`).join('; ')}`);
  await stopServer(s1);

  // 2. transcode=false counter-offer=never: a viewer in another codec is refused with 422.
  const s2 = { what: 'server 2 (transcode=false counter-offer=never)', child: startServer(port2, ['transcode=false', 'counter-offer=never']) };
  servers.push(s2);
  const endpoint2 = `http://${HOST}:${port2}/whep`;
  await waitForEndpoint(endpoint2, s2.child, SERVER_READY_TIMEOUT_MS, { method: 'OPTIONS' });
  const v = VIEWERS.find((x) => x.name === SERVER_CODECS[codec].other);
  const page = await openPage(ctx, pageUrl, `${v.name} (no transcoding)`);
  refused = await withTimeout(page.evaluate((cfg) => window.runWhepCodec(cfg), {
    endpoint: endpoint2, videoMime: v.mime, maxTries: MAX_POST_TRIES,
  }), PAGE_RUN_TIMEOUT_MS, `WHEP session of the ${v.name} page (no transcoding)`);
  log(`${v.name} on server 2: POSTs ${describePosts(refused)}, ${refused.postMs} ms`);
  check(`transcode=false: a ${v.name} viewer gets 422 with a problem+json body saying "transcoding is off"`,
    refused.postStatus === 422 && /application\/problem\+json/.test(refused.contentType || '')
      && (refused.body || '').includes('transcoding is off'),
    `${refused.error || ''}${refused.postStatus} ${refused.contentType} ${(refused.body || '').slice(0, 400)}`);
  await stopServer(s2);
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  const failed = anyFailed();
  if (failed || VERBOSE) {
    for (const [who, r] of [...played.map((p) => [p.v.name, p.res]), ['no-transcoding viewer', refused]]) {
      if (!r) continue;
      if (r.offerSdp) console.log(`--- ${who} SDP offer (filtered) ---\n${r.offerSdp.trim()}`);
      if (r.answerSdp) console.log(`--- ${who} SDP answer ---\n${r.answerSdp.trim()}`);
      if (r.states?.length) console.log(`--- ${who} peer connection states ---\n${r.states.map((x) => JSON.stringify(x)).join('\n')}`);
    }
  }
  await cleanup();
  if (failed || VERBOSE) console.log(serverLogs());
  clearTimeout(watchdog);
  const t = played.map((p) => `${p.v.name.replace('-only', '')}:post=${p.res?.postMs ?? '-'}ms,red=${p.redMs ?? '-'}ms`).join(' ');
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'} ${t}`);
  process.exit(failed ? 1 : 0);
}
