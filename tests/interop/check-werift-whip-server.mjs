#!/usr/bin/env node
// Self-check of werift-whip-server.mjs against an independent publisher: headless
// Chromium publishes its fake camera + microphone with WHIP (VP8, then H.264).
//
// Usage: node check-werift-whip-server.mjs [vp8|h264 ...]   (default: vp8 h264)
//
// Starts the server through run-werift-whip-server.sh (first stdout line WHIP_URL=...),
// serves a publisher page from another 127.0.0.1 port (cross-origin: CORS applies) and
// drives headless Chromium (playwright-core, /usr/bin/chromium, fake devices, only
// 127.0.0.1 candidates in the offer). Per codec it checks:
//   POST 201 + relative Location + quoted ETag; the answer is recvonly with only
//   127.0.0.1 candidates; GET /whip/stats shows the session with the negotiated codec,
//   >= 30 complete video frames, >= 1 keyframe and audio/opus packets; PATCH without
//   If-Match -> 428, stale ETag -> 412, trickle with the ETag -> 204; POST /whip/pli ->
//   204 and a new keyframe is counted afterwards; DELETE -> 200 (then 404) and the
//   stats mark the session deleted (counts kept).
// Plus offer checks without a browser: OPTIONS (Accept-Post), 415, 400, 422 (unsupported
// codec, two video m-lines).
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium/node tools missing), 2 usage error.
// Environment: CHROMIUM (default /usr/bin/chromium), VERBOSE=1 (server log on success too).

import path from 'node:path';
import readline from 'node:readline';

import {
  HERE, HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, chromiumArgs, FAKE_MEDIA_ARGS,
  testPageHtml, startPageServer, closePageServer, spawnKept, stopChild, guardRun,
} from './driver.mjs';

const TAG = 'check-werift-whip-server';
const MIN_FRAMES = 30;
const TOTAL_TIMEOUT_MS = 150_000;
const SERVER_READY_TIMEOUT_MS = 60_000; // includes a possible npm ci
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const PUB_FLOW_TIMEOUT_MS = 15_000;
const STATS_TIMEOUT_MS = 20_000;
const PLI_KEYFRAME_TIMEOUT_MS = 10_000;
const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };

const codecs = process.argv.slice(2).map((c) => c.toLowerCase());
if (!codecs.length) codecs.push('vp8', 'h264');
if (codecs.some((c) => !(c in CODECS))) {
  console.error(`usage: node ${path.basename(process.argv[1])} [vp8|h264 ...]`);
  process.exit(2);
}

const { log, check, checks } = reporter(TAG);
const chromium = await loadChromium(TAG);

// The publisher page (served from another origin than the server).
const PAGE_HTML = testPageHtml('werift WHIP server check', ['page-common.js', 'whip-publisher-page.js']);

// ---------------------------------------------------------------------------
// the server under test

function startServer() {
  const child = spawnKept(path.join(HERE, 'run-werift-whip-server.sh'), ['--verbose'], { keepStdout: false });
  child.url = new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      const m = /^WHIP_URL=(http:\/\/127\.0\.0\.1:\d+\/\S*)$/.exec(line);
      if (m) resolve(m[1]); else reject(new Error(`unexpected first stdout line: ${line}`));
    });
    child.exited.then(({ code, signal }) => reject(Object.assign(new Error(`server exited early (${signal ?? code})`), { code })));
  });
  return child;
}

const stopServer = (child) => stopChild(child, [['SIGTERM', 5000], ['SIGKILL', 2000]]);

async function req(url, init = {}) {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const body = await r.text();
  return { status: r.status, headers: r.headers, body };
}

const getStats = async (whipUrl) => JSON.parse((await req(`${whipUrl}/stats`)).body);

// minimal offers for the negative checks (never reach ICE)
const fakeOffer = (media) => ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':'), 'a=setup:actpass',
  ...media.flatMap(([kind, pt, rtpmap, fmtp], i) => [`m=${kind} 9 UDP/TLS/RTP/SAVPF ${pt}`, 'c=IN IP4 0.0.0.0',
    `a=mid:${i}`, 'a=sendonly', 'a=rtcp-mux', `a=rtpmap:${pt} ${rtpmap}`, ...(fmtp ? [`a=fmtp:${pt} ${fmtp}`] : [])]),
].join('\r\n') + '\r\n';

const CHROMIUM_ARGS = chromiumArgs(FAKE_MEDIA_ARGS);

let server = null, pageServer = null, browser = null, cleanedUp = false;
async function cleanup() {
  if (cleanedUp) return null;
  cleanedUp = true;
  if (browser) await withTimeout(browser.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  await closePageServer(pageServer);
  return stopServer(server);
}
const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup,
  () => (server ? `--- server log (tail) ---\n${server.output().slice(-20000)}` : ''));

async function pollStats(whipUrl, id, ms, done) {
  const deadline = Date.now() + ms;
  let rec = null;
  for (;;) { // at least once, also with ms 0
    rec = (await getStats(whipUrl)).sessions.find((s) => s.id === id) ?? null;
    if ((rec && done(rec)) || Date.now() >= deadline) return rec;
    await sleep(250);
  }
}

async function runCodec(whipUrl, pageUrl, codec) {
  const expected = CODECS[codec];
  console.log(`--- ${codec}: Chromium publishes ${expected} + opus`);
  const ctx = await browser.newContext({ permissions: ['camera', 'microphone'] });
  try {
    const page = await ctx.newPage();
    page.on('console', (m) => { if (VERBOSE) console.log(`[publisher] ${m.text()}`); });
    page.on('pageerror', (e) => console.log(`[publisher error] ${e.message}`));
    await page.goto(pageUrl, { timeout: 10_000 });
    const pub = await withTimeout(page.evaluate((cfg) => window.runWhip(cfg), {
      endpoint: whipUrl, videoMime: expected, flowTimeoutMs: PUB_FLOW_TIMEOUT_MS,
    }), PUB_FLOW_TIMEOUT_MS + 15_000, 'WHIP publish in the page');
    if (pub.error) log(`publisher page error: ${pub.error}`);
    check(`${codec}: POST 201`, pub.postStatus === 201, `status ${pub.postStatus}`);
    check(`${codec}: relative Location /whip/sessions/<id>`, /^\/whip\/sessions\/[0-9a-f]+$/.test(pub.location || ''), `Location: ${pub.location}`);
    check(`${codec}: quoted ETag`, /^"[^"]+"$/.test(pub.etag || ''), `ETag: ${pub.etag}`);
    const ans = pub.answerSdp || '';
    const cands = ans.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
    check(`${codec}: answer recvonly with 127.0.0.1 candidates only`,
      /a=recvonly/.test(ans) && !/a=send(only|recv)/.test(ans) && cands.length > 0 && cands.every((l) => l.split(' ')[4] === HOST),
      `${cands.length} candidate(s): ${cands.map((l) => l.split(' ').slice(4, 6).join(':')).join(' ')}`);
    check(`${codec}: publisher sends ${expected}`, (pub.video?.mimeType || '').toLowerCase() === expected.toLowerCase(),
      `mimeType=${pub.video?.mimeType}, framesEncoded=${pub.video?.framesEncoded}`);
    check(`${codec}: selected pair 127.0.0.1 <-> 127.0.0.1`,
      !!pub.pair && pub.pair.local?.startsWith(`${HOST}:`) && pub.pair.remote?.startsWith(`${HOST}:`),
      pub.pair ? `${pub.pair.local} <-> ${pub.pair.remote}` : 'no selected pair');
    if (pub.postStatus !== 201 || !pub.location) return;
    const id = pub.location.split('/').pop();
    const sessionUrl = new URL(pub.location, whipUrl).href;

    const rec = await pollStats(whipUrl, id, STATS_TIMEOUT_MS,
      (r) => r.video?.frames >= MIN_FRAMES && r.audio?.packets > 0 && r.video?.keyframes >= 1);
    console.log(`info stats: ${JSON.stringify(rec)}`);
    check(`${codec}: stats codec ${expected}`, rec?.video?.codec === expected, `codec ${rec?.video?.codec}`);
    check(`${codec}: stats video frames >= ${MIN_FRAMES}`, rec?.video?.frames >= MIN_FRAMES,
      `frames=${rec?.video?.frames}, packets=${rec?.video?.packets}`);
    check(`${codec}: stats keyframes >= 1`, rec?.video?.keyframes >= 1, `keyframes=${rec?.video?.keyframes}`);
    check(`${codec}: stats audio/opus packets > 0`, rec?.audio?.codec === 'audio/opus' && rec?.audio?.packets > 0,
      `codec=${rec?.audio?.codec}, packets=${rec?.audio?.packets}`);

    // PATCH: If-Match rules (a trickle fragment with a 127.0.0.1 host candidate)
    const frag = 'a=ice-ufrag:' + (pub.offerSdp.match(/a=ice-ufrag:(\S+)/) || [])[1] + '\r\na=ice-pwd:' +
      (pub.offerSdp.match(/a=ice-pwd:(\S+)/) || [])[1] + '\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n' +
      'a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n';
    const H = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    const p428 = await req(sessionUrl, { method: 'PATCH', headers: H, body: frag });
    const p412 = await req(sessionUrl, { method: 'PATCH', headers: { ...H, 'If-Match': '"stale"' }, body: frag });
    const p204 = await req(sessionUrl, { method: 'PATCH', headers: { ...H, 'If-Match': pub.etag }, body: frag });
    check(`${codec}: PATCH without If-Match 428, stale 412, matching 204`,
      p428.status === 428 && p412.status === 412 && p204.status === 204, `${p428.status}/${p412.status}/${p204.status}`);

    // PLI -> a new keyframe
    const before = (await pollStats(whipUrl, id, 0, () => true)) ?? rec;
    const pli = await req(`${whipUrl}/pli`, { method: 'POST' });
    check(`${codec}: POST /whip/pli 204`, pli.status === 204, `status ${pli.status}, X-Pli-Sent ${pli.headers.get('x-pli-sent')}`);
    const after = await pollStats(whipUrl, id, PLI_KEYFRAME_TIMEOUT_MS,
      (r) => r.video?.plisSent > (before?.video?.plisSent ?? 0) && r.video?.keyframesSinceLastPli >= 1);
    check(`${codec}: new keyframe counted after the PLI`,
      after?.video?.keyframesSinceLastPli >= 1 && after.video.keyframes > before.video.keyframes,
      `keyframes ${before?.video?.keyframes} -> ${after?.video?.keyframes}, plisSent ${after?.video?.plisSent}, ` +
      `pliNegotiated ${after?.video?.pliNegotiated}, keyframe ${after?.video?.lastKeyframeMs - after?.video?.lastPliMs} ms after the PLI`);

    // DELETE through the page (CORS), then 404, then the stats
    const end = await withTimeout(page.evaluate(() => window.stopWhip()), 10_000, 'WHIP DELETE in the page');
    check(`${codec}: DELETE 200`, end.deleteStatus === 200, `status ${end.deleteStatus}`);
    const again = await req(sessionUrl, { method: 'DELETE' });
    check(`${codec}: second DELETE 404`, again.status === 404, `status ${again.status}`);
    const gone = await pollStats(whipUrl, id, 0, () => true);
    const all = await getStats(whipUrl);
    check(`${codec}: stats keep the session, marked deleted`,
      gone?.deleted === true && gone.video?.frames >= MIN_FRAMES && all.deleted >= 1,
      `deleted=${gone?.deleted}, frames=${gone?.video?.frames}, audio packets=${gone?.audio?.packets}, total deleted ${all.deleted}`);
  } finally {
    await ctx.close().catch(() => {});
  }
}

let exitServer = null;
try {
  server = startServer();
  const whipUrl = await withTimeout(server.url, SERVER_READY_TIMEOUT_MS, 'WHIP_URL line');
  log(`server pid ${server.pid}: ${whipUrl}`);

  // protocol checks without a browser
  const opt = await req(whipUrl, { method: 'OPTIONS' });
  check('OPTIONS 200/204 with Accept-Post: application/sdp', [200, 204].includes(opt.status) &&
    opt.headers.get('accept-post') === 'application/sdp', `${opt.status} Accept-Post: ${opt.headers.get('accept-post')}`);
  const r415 = await req(whipUrl, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'v=0\r\n' });
  check('POST text/plain -> 415', r415.status === 415, `status ${r415.status}`);
  const r400 = await req(whipUrl, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'garbage' });
  check('POST unparsable SDP -> 400', r400.status === 400, `status ${r400.status}`);
  const r422a = await req(whipUrl, { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
    body: fakeOffer([['video', 98, 'VP9/90000'], ['audio', 111, 'opus/48000/2']]) });
  check('POST VP9-only offer -> 422', r422a.status === 422, `status ${r422a.status}: ${r422a.body.trim()}`);
  const r422b = await req(whipUrl, { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
    body: fakeOffer([['video', 96, 'VP8/90000'], ['video', 97, 'VP8/90000']]) });
  check('POST two video m-lines -> 422', r422b.status === 422, `status ${r422b.status}: ${r422b.body.trim()}`);
  const r422c = await req(whipUrl, { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
    body: fakeOffer([['video', 102, 'H264/90000', 'packetization-mode=0;profile-level-id=42e01f']]) });
  check('POST H.264 packetization-mode=0 only -> 422', r422c.status === 422, `status ${r422c.status}`);

  const pagePort = await freePort();
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  const pageUrl = `http://${HOST}:${pagePort}/`;
  browser = await withTimeout(chromium.launch({
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  }), BROWSER_LAUNCH_TIMEOUT_MS + 2000, 'launching chromium');
  log(`chromium ${browser.version()} launched; page ${pageUrl}`);
  for (const c of codecs) await runCodec(whipUrl, pageUrl, c);
  const final = await getStats(whipUrl);
  check('stats: all sessions deleted, none active', final.active === 0 && final.deleted === codecs.length,
    `active ${final.active}, deleted ${final.deleted}`);
} catch (e) {
  check('test ran to completion', false, e.stack || e.message);
} finally {
  exitServer = await cleanup();
  check('server exits 0 after SIGTERM', exitServer?.code === 0, exitServer ? `exit ${exitServer.code ?? exitServer.signal}` : 'did not exit');
  clearTimeout(watchdog);
  const failed = checks.some((c) => !c.ok);
  if (failed || VERBOSE) console.log(`--- server log (tail) ---\n${server?.output().slice(-30000) ?? ''}`);
  console.log(`${TAG} ${codecs.join(',')}: ${failed ? 'FAIL' : 'PASS'} (${checks.filter((c) => c.ok).length}/${checks.length} checks)`);
  process.exit(failed ? 1 : 0);
}
