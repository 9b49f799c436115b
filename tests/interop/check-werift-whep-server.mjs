#!/usr/bin/env node
// Proves that the werift WHEP server (werift-whep-server.mjs, started through
// run-werift-whep-server.sh exactly like the C++ tests start it) works with an
// independent player: headless Chromium plays it with RTCPeerConnection + fetch.
//
// Usage: node check-werift-whep-server.mjs [h264] [vp8]     (default: both)
//
// Per codec it asserts: WHEP_URL is the first stdout line; OPTIONS/415/400/404
// answers; POST 201 with application/sdp, relative Location and ETag readable
// cross-origin; an answer with only 127.0.0.1 candidates; >= 30 decoded video
// frames with the requested codec; audio (opus) packets arrive; the selected
// candidate pair is 127.0.0.1 <-> 127.0.0.1; PATCH trickle answers 204 / 428 / 412;
// an ICE restart through PATCH (If-Match "*") answers 200 with a new ETag and
// video keeps being decoded afterwards; DELETE 200, then 404; SIGTERM stops the
// server and its gst-launch-1.0 child.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.
// Environment: CHROMIUM (default /usr/bin/chromium), VERBOSE=1 (server log and
// SDPs also on success).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import {
  HERE, HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, chromiumArgs,
  startPageServer, closePageServer, spawnKept, guardRun,
} from './driver.mjs';

const TAG = 'check-werift-whep-server';
const MIN_FRAMES = 30;
const TOTAL_TIMEOUT_MS = 150_000;        // whole run (all codecs)
const SERVER_URL_TIMEOUT_MS = 60_000;    // WHEP_URL line (includes a possible npm ci)
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const PAGE_RUN_TIMEOUT_MS = 45_000;      // whole in-page session
const FRAMES_TIMEOUT_MS = 20_000;
const SERVER_STOP_TIMEOUT_MS = 10_000;

const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };
// trickled in the first PATCH; nothing listens on 127.0.0.1:9 (discard), 192.0.2.0/24
// is TEST-NET-1 and must be dropped by the server
const SYNTHETIC_CANDIDATES = [
  'a=candidate:3735928559 1 udp 2122260223 127.0.0.1 9 typ host generation 0',
  'a=candidate:3735928560 1 udp 2122260222 192.0.2.77 9 typ host generation 0',
];
const codecs = process.argv.slice(2).map((c) => c.toLowerCase());
if (!codecs.length) codecs.push('h264', 'vp8');
for (const c of codecs) {
  if (!(c in CODECS)) {
    console.error(`usage: node ${path.basename(process.argv[1])} [h264] [vp8]`);
    process.exit(2);
  }
}

const rep = reporter(TAG, { prefixChecks: true });  // rep.tag follows the codec
const { log, check, checks } = rep;
const chromium = await loadChromium(TAG);

const pidAlive = (pid) => {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
};

function childPids(pid) {
  const out = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const c = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}

const procName = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return null; }
};

// ---------------------------------------------------------------------------
// the WHEP server under test, started through the wrapper the C++ tests use

function startServer(codec) {
  const args = [path.join(HERE, 'run-werift-whep-server.sh'), '--port', '0', '--video', codec, '--audio', 'opus'];
  if (VERBOSE) args.push('--verbose');
  log(`starting: bash ${args.map((a) => path.basename(a)).join(' ')}`);
  const child = spawnKept('bash', args, { keepStdout: false, limit: 2_000_000 });
  child.log = child.output;
  const lines = [];
  const rl = readline.createInterface({ input: child.stdout });
  child.firstLine = new Promise((resolve, reject) => {
    rl.on('line', (l) => { lines.push(l); if (lines.length === 1) resolve(l); });
    child.exited.then(({ code, signal }) => reject(new Error(`server exited before printing a line (${signal ?? `exit ${code}`})`)));
  });
  child.stdoutLines = lines;
  return child;
}

async function stopServer(child, { expectClean }) {
  if (!child || !child.pid) return;
  const kids = childPids(child.pid).filter((p) => procName(p) === 'gst-launch-1.0');
  if (!child.isRunning()) {
    if (expectClean) check('server still running before SIGTERM', false, `exited ${child.exitCode ?? child.signalCode}`);
    return;
  }
  const t0 = Date.now();
  process.kill(child.pid, 'SIGTERM');
  const done = await Promise.race([child.exited.then(() => true), sleep(SERVER_STOP_TIMEOUT_MS).then(() => false)]);
  if (!done) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([child.exited, sleep(2000)]);
  }
  for (const k of kids) if (pidAlive(k)) { try { process.kill(k, 'SIGKILL'); } catch { /* gone */ } }
  if (expectClean) {
    const { code, signal } = await Promise.race([child.exited, sleep(100).then(() => ({}))]);
    check('SIGTERM stops the server', done && code === 0, `${signal ?? `exit ${code}`} after ${Date.now() - t0} ms`);
    await sleep(200);
    check('its gst-launch-1.0 child is gone', kids.length > 0 && kids.every((k) => !pidAlive(k)),
      `gst-launch-1.0 pid(s) ${kids.join(', ') || 'none found'}`);
  }
}

// ---------------------------------------------------------------------------
// test page (served from another origin than the WHEP endpoint: CORS applies)

const PAGE_HTML = String.raw`<!doctype html>
<html><head><meta charset="utf-8"><title>werift WHEP check</title></head>
<body><video id="v" autoplay muted playsinline width="320" height="240"></video>
<script>
'use strict';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function plog(...a) { console.log(a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ')); }

function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { pc.removeEventListener('icegatheringstatechange', f); resolve(false); }, ms);
    function f() { if (pc.iceGatheringState === 'complete') { clearTimeout(t); pc.removeEventListener('icegatheringstatechange', f); resolve(true); } }
    pc.addEventListener('icegatheringstatechange', f);
  });
}
const isLoopbackCand = (line) => line.split(' ')[4] === '127.0.0.1';
function keepLoopback(sdp) {
  let kept = 0, dropped = 0;
  const out = sdp.split('\r\n').filter((l) => {
    if (!l.startsWith('a=candidate:')) return true;
    if (isLoopbackCand(l)) { kept++; return true; }
    dropped++; return false;
  });
  return { sdp: out.join('\r\n'), kept, dropped };
}
const attr = (sdp, name) => (sdp.split('\r\n').find((l) => l.startsWith('a=' + name + ':')) || '').slice(name.length + 3) || null;
function fragOf(sdp, extra) {
  // ICE credentials + the first m-line's mid and (127.0.0.1) candidates, RFC 8840 style
  const lines = sdp.split('\r\n');
  const m = lines.findIndex((l) => l.startsWith('m='));
  const next = lines.findIndex((l, i) => i > m && l.startsWith('m='));
  const sect = lines.slice(m, next < 0 ? undefined : next);
  return ['a=ice-ufrag:' + attr(sdp, 'ice-ufrag'), 'a=ice-pwd:' + attr(sdp, 'ice-pwd'), lines[m],
    'a=mid:' + (sect.find((l) => l.startsWith('a=mid:')) || 'a=mid:0').slice(6),
    ...sect.filter((l) => l.startsWith('a=candidate:') && isLoopbackCand(l)), ...(extra || []),
    'a=end-of-candidates'].join('\r\n') + '\r\n';
}

async function stats(pc) {
  const rep = await pc.getStats();
  const byId = new Map(); rep.forEach((s) => byId.set(s.id, s));
  const out = { video: null, audio: null, pair: null };
  rep.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      const c = s.codecId ? byId.get(s.codecId) : null;
      out[s.kind] = { packetsReceived: s.packetsReceived || 0, framesDecoded: s.framesDecoded || 0,
        keyFramesDecoded: s.keyFramesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        packetsLost: s.packetsLost, pliCount: s.pliCount, nackCount: s.nackCount,
        decoderImplementation: s.decoderImplementation,
        mimeType: c ? c.mimeType : null, payloadType: c ? c.payloadType : null, sdpFmtpLine: c ? c.sdpFmtpLine : null };
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const p = byId.get(s.selectedCandidatePairId);
      const l = p && byId.get(p.localCandidateId), r = p && byId.get(p.remoteCandidateId);
      out.pair = { local: l ? l.address + ':' + l.port : null, remote: r ? r.address + ':' + r.port : null,
        localType: l && l.candidateType, remoteType: r && r.candidateType, dtlsState: s.dtlsState };
    }
  });
  return out;
}

async function waitFrames(pc, res, atLeast, ms, key) {
  const deadline = performance.now() + ms;
  let last = 0, st = null;
  while (performance.now() < deadline) {
    st = await stats(pc);
    const f = st.video ? st.video.framesDecoded : 0;
    if (performance.now() - last > 2000) {
      last = performance.now();
      plog('[stats]', key, 'framesDecoded', f, 'video pkts', st.video && st.video.packetsReceived,
        'audio pkts', st.audio && st.audio.packetsReceived, 'conn', pc.connectionState);
    }
    if (f >= atLeast && st.audio && st.audio.packetsReceived > 0) break;
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') break;
    await sleep(200);
  }
  res[key] = st;
  return st;
}

window.runWhep = async function runWhep(cfg) {
  const res = { states: [], error: null };
  const pc = new RTCPeerConnection({ iceServers: [] });
  const t0 = performance.now();
  pc.addEventListener('connectionstatechange', () => {
    res.states.push({ t: Math.round(performance.now() - t0), conn: pc.connectionState, ice: pc.iceConnectionState });
    plog('[state]', pc.connectionState, pc.iceConnectionState);
  });
  pc.addEventListener('track', (ev) => {
    if (ev.track.kind === 'video') { const v = document.getElementById('v'); v.srcObject = ev.streams[0] || new MediaStream([ev.track]); v.play().catch(() => {}); }
  });
  try {
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc, 5000);
    const offer = keepLoopback(pc.localDescription.sdp);
    res.offer = offer.sdp; res.offerKept = offer.kept; res.offerDropped = offer.dropped;

    const r = await fetch(cfg.endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer.sdp, signal: AbortSignal.timeout(10000) });
    res.postStatus = r.status; res.contentType = r.headers.get('Content-Type');
    res.location = r.headers.get('Location'); res.etag = r.headers.get('ETag');
    res.answer = await r.text();
    if (r.status !== 201) { res.error = 'POST ' + r.status + ': ' + res.answer; return res; }
    res.sessionUrl = new URL(res.location, cfg.endpoint).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: res.answer });

    await waitFrames(pc, res, cfg.minFrames, cfg.framesTimeoutMs, 'first');

    // Trickle PATCH: the offer's (127.0.0.1) candidates again, plus error cases.
    const patch = (ifMatch, body, type) => fetch(res.sessionUrl, { method: 'PATCH',
      headers: Object.assign({ 'Content-Type': type || 'application/trickle-ice-sdpfrag' }, ifMatch ? { 'If-Match': ifMatch } : {}),
      body, signal: AbortSignal.timeout(10000) }).then(async (x) => ({ status: x.status, etag: x.headers.get('ETag'), body: await x.text() }));
    // Chromium has no 127.0.0.1 candidate of its own (the server learns it as
    // peer-reflexive), so two synthetic ones are trickled as well: the server must
    // hand the 127.0.0.1 one to werift and ignore the other.
    const trickle = fragOf(pc.localDescription.sdp, cfg.syntheticCandidates);
    res.trickleSent = trickle;
    res.patchOk = await patch(res.etag, trickle);
    res.patchNoIfMatch = await patch(null, trickle);
    res.patchWrongIfMatch = await patch('"not-the-etag"', trickle);
    res.patchWrongType = await patch(res.etag, trickle, 'text/plain');

    // ICE restart through PATCH (If-Match "*"), as a browser WHEP client does it.
    if (cfg.iceRestart) {
      const before = res.first && res.first.video ? res.first.video.framesDecoded : 0;
      pc.restartIce();
      await pc.setLocalDescription(await pc.createOffer());
      await waitGathering(pc, 5000);
      const frag = fragOf(pc.localDescription.sdp);
      res.restartFragSent = frag;
      const rr = await patch('*', frag);
      res.restart = { status: rr.status, etag: rr.etag, body: rr.body };
      if (rr.status === 200) {
        const ufrag = attr(rr.body, 'ice-ufrag'), pwd = attr(rr.body, 'ice-pwd');
        const cands = rr.body.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
        const ans = [];
        for (const l of res.answer.split('\r\n')) {
          if (l.startsWith('a=candidate:') || l === 'a=end-of-candidates') continue;
          if (l.startsWith('a=ice-ufrag:')) { ans.push('a=ice-ufrag:' + ufrag); continue; }
          if (l.startsWith('a=ice-pwd:')) { ans.push('a=ice-pwd:' + pwd); continue; }
          ans.push(l);
          if (l.startsWith('m=')) { ans.push(...cands); }
        }
        // a=candidate lines belong after the c= line; put them right after the m= line's c=
        const fixed = [];
        let pending = [];
        for (const l of ans) {
          if (l.startsWith('a=candidate:')) { pending.push(l); continue; }
          fixed.push(l);
          if (l.startsWith('c=') && pending.length) { fixed.push(...pending); pending = []; }
        }
        res.restartAnswer = fixed.join('\r\n');
        await pc.setRemoteDescription({ type: 'answer', sdp: res.restartAnswer });
        const st = await waitFrames(pc, res, before + cfg.minFrames, cfg.framesTimeoutMs, 'afterRestart');
        res.framesAfterRestart = (st && st.video ? st.video.framesDecoded : 0) - before;
        if (rr.etag) res.patchAfterRestart = await patch(rr.etag, fragOf(pc.localDescription.sdp));
      }
    }
    res.final = await stats(pc);
  } catch (e) {
    res.error = String((e && e.stack) || e);
  } finally {
    if (res.sessionUrl) {
      const del = async () => { try { const d = await fetch(res.sessionUrl, { method: 'DELETE', signal: AbortSignal.timeout(5000) }); await d.text(); return d.status; } catch (e) { return 'error: ' + e; } };
      res.deleteStatus = await del();
      res.deleteAgainStatus = await del();
    }
    pc.close();
  }
  return res;
};
</script></body></html>
`;

// ---------------------------------------------------------------------------
// plain-HTTP protocol checks from node

async function protocolChecks(endpoint) {
  const o = await fetch(endpoint, { method: 'OPTIONS', signal: AbortSignal.timeout(5000) });
  await o.text();
  check('OPTIONS answers 204 with CORS headers', o.status === 204 && o.headers.get('access-control-allow-origin') === '*'
    && /PATCH/.test(o.headers.get('access-control-allow-methods') || ''), `status ${o.status}`);
  const t = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'v=0', signal: AbortSignal.timeout(5000) });
  await t.text();
  check('POST text/plain answers 415', t.status === 415, `status ${t.status}`);
  const g = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'this is not SDP', signal: AbortSignal.timeout(5000) });
  await g.text();
  check('POST unparsable SDP answers 400', g.status === 400, `status ${g.status}`);
  const u = await fetch(`${endpoint}/sessions/doesnotexist`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
  await u.text();
  check('DELETE unknown session answers 404', u.status === 404, `status ${u.status}`);
}

// ---------------------------------------------------------------------------
// main

const CHROMIUM_ARGS = chromiumArgs();

let context = null;
let userDataDir = null;
let pageServer = null;
let server = null;
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (context) await withTimeout(context.close(), 10_000, 'closing chromium').catch((e) => log(e.message));
  if (server) await stopServer(server, { expectClean: false });
  await closePageServer(pageServer);
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup,
  () => (server ? `--- server log (tail) ---\n${server.log().slice(-20000)}` : ''));

const summary = {};
try {
  const pagePort = await freePort();
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'werift-whep-chromium-'));
  context = await withTimeout(chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, permissions: [], timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  }), BROWSER_LAUNCH_TIMEOUT_MS + 2000, 'launching chromium');
  log(`chromium ${context.browser()?.version() ?? ''} launched, profile ${userDataDir}`);

  for (const codec of codecs) {
    rep.tag = `${TAG} ${codec}`;
    const failedBefore = checks.filter((c) => !c.ok).length;
    server = startServer(codec);
    let first;
    try {
      first = await withTimeout(server.firstLine, SERVER_URL_TIMEOUT_MS, 'WHEP_URL line from the server');
    } catch (e) {
      check('server printed WHEP_URL', false, e.message);
      console.log(`--- server log ---\n${server.log().slice(-20000)}`);
      await stopServer(server, { expectClean: false });
      server = null;
      continue;
    }
    const m = /^WHEP_URL=(http:\/\/127\.0\.0\.1:\d+\/whep)$/.exec(first);
    check('first stdout line is WHEP_URL=http://127.0.0.1:<port>/whep', !!m, first);
    if (!m) { await stopServer(server, { expectClean: false }); server = null; continue; }
    const endpoint = m[1];

    await protocolChecks(endpoint);

    const page = await context.newPage();
    page.on('console', (msg) => { if (VERBOSE || /\[state\]|\[stats\]/.test(msg.text())) console.log(`[page] ${msg.text()}`); });
    await page.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });
    const r = await withTimeout(page.evaluate((cfg) => window.runWhep(cfg), {
      endpoint, minFrames: MIN_FRAMES, framesTimeoutMs: FRAMES_TIMEOUT_MS, iceRestart: true,
      syntheticCandidates: SYNTHETIC_CANDIDATES,
    }), PAGE_RUN_TIMEOUT_MS, 'WHEP session in the page');
    await page.close().catch(() => {});

    if (r.error) log(`page error: ${r.error}`);
    const v = r.first?.video, a = r.first?.audio;
    log(`offer candidates: ${r.offerKept} kept (127.0.0.1), ${r.offerDropped} stripped by the page`);
    if (v) log(`video: ${JSON.stringify(v)}`);
    if (a) log(`audio: ${JSON.stringify(a)}`);
    if (r.first?.pair) log(`selected pair: ${JSON.stringify(r.first.pair)}`);
    const answerCands = (r.answer || '').split(/\r\n/).filter((l) => l.startsWith('a=candidate:'));

    check('POST answers 201 application/sdp', r.postStatus === 201 && /^application\/sdp/.test(r.contentType || ''),
      `status ${r.postStatus}, Content-Type ${r.contentType}`);
    check('Location is relative /whep/sessions/<id>', /^\/whep\/sessions\/[0-9a-f]{8,}$/.test(r.location || ''), `Location: ${r.location}`);
    check('ETag is a quoted string', /^"[^"]+"$/.test(r.etag || ''), `ETag: ${r.etag}`);
    check('answer candidates are all 127.0.0.1', answerCands.length > 0 && answerCands.every((l) => l.split(' ')[4] === '127.0.0.1'),
      answerCands.map((l) => l.split(' ').slice(4, 6).join(':')).join(', '));
    check('answer is sendonly', /a=sendonly/.test(r.answer || '') && !/a=sendrecv/.test(r.answer || ''));
    check(`framesDecoded >= ${MIN_FRAMES}`, (v?.framesDecoded ?? 0) >= MIN_FRAMES, `framesDecoded=${v?.framesDecoded ?? 0}`);
    check(`video codec is ${CODECS[codec]}`, (v?.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(),
      `mimeType=${v?.mimeType} pt=${v?.payloadType} ${v?.sdpFmtpLine ?? ''}`);
    check('audio packets arrive (audio/opus)', (a?.packetsReceived ?? 0) > 0 && (a?.mimeType || '').toLowerCase() === 'audio/opus',
      `packetsReceived=${a?.packetsReceived ?? 0} mimeType=${a?.mimeType}`);
    const lo = (x) => typeof x === 'string' && x.startsWith('127.0.0.1:');
    check('selected pair is 127.0.0.1 <-> 127.0.0.1', lo(r.first?.pair?.local) && lo(r.first?.pair?.remote),
      r.first?.pair ? `${r.first.pair.local} (${r.first.pair.localType}) <-> ${r.first.pair.remote} (${r.first.pair.remoteType})` : 'none');
    check('PATCH trickle with If-Match answers 204', r.patchOk?.status === 204, `status ${r.patchOk?.status}`);
    const trickleLog = /PATCH trickle: (\d+) candidate\(s\) added, (\d+) ignored[^\n]*werift remote candidates now: ([^\n]*)/.exec(server.log());
    check('trickled 127.0.0.1 candidate reaches werift, the other one is dropped',
      !!trickleLog && trickleLog[1] === '1' && trickleLog[2] === '1' && trickleLog[3].includes('127.0.0.1:9/host')
      && !trickleLog[3].includes('192.0.2.77'), trickleLog ? trickleLog[0].replace(/^PATCH trickle: /, '') : 'no server log line');
    check('PATCH without If-Match answers 428', r.patchNoIfMatch?.status === 428, `status ${r.patchNoIfMatch?.status}`);
    check('PATCH with a stale If-Match answers 412', r.patchWrongIfMatch?.status === 412, `status ${r.patchWrongIfMatch?.status}`);
    check('PATCH with another Content-Type answers 415', r.patchWrongType?.status === 415, `status ${r.patchWrongType?.status}`);
    check('ICE restart PATCH (If-Match "*") answers 200 with a new ETag',
      r.restart?.status === 200 && !!r.restart.etag && r.restart.etag !== r.etag,
      `status ${r.restart?.status}, ETag ${r.etag} -> ${r.restart?.etag}${r.restart?.status !== 200 ? `, ${(r.restart?.body || '').trim()}` : ''}`);
    check(`>= ${MIN_FRAMES} more frames decoded after the ICE restart`, (r.framesAfterRestart ?? 0) >= MIN_FRAMES,
      `+${r.framesAfterRestart ?? 0} frames, pair ${r.afterRestart?.pair?.local} <-> ${r.afterRestart?.pair?.remote}`);
    check('trickle PATCH with the new ETag answers 204', r.patchAfterRestart?.status === 204, `status ${r.patchAfterRestart?.status}`);
    check('DELETE answers 200, then 404', r.deleteStatus === 200 && r.deleteAgainStatus === 404,
      `${r.deleteStatus}, ${r.deleteAgainStatus}`);
    if (r.error) check('no error in the page', false, r.error.split('\n')[0]);

    await stopServer(server, { expectClean: true });
    const failedNow = checks.filter((c) => !c.ok).length > failedBefore;
    if (failedNow || VERBOSE) {
      if (r.offer) console.log(`--- offer (as sent) ---\n${r.offer.trim()}`);
      if (r.answer) console.log(`--- answer ---\n${r.answer.trim()}`);
      if (r.restartFragSent) console.log(`--- ICE restart sdpfrag sent ---\n${r.restartFragSent.trim()}`);
      if (r.restart?.body) console.log(`--- ICE restart sdpfrag received ---\n${r.restart.body.trim()}`);
      console.log(`--- peer connection states ---\n${(r.states || []).map((s) => JSON.stringify(s)).join('\n')}`);
      console.log(`--- server log ---\n${server.log().slice(-30000)}`);
    }
    summary[codec] = { frames: v?.framesDecoded ?? 0, framesAfterRestart: r.framesAfterRestart ?? 0, audioPackets: a?.packetsReceived ?? 0, ok: !failedNow };
    server = null;
  }
} catch (e) {
  check('check ran to completion', false, e.stack || e.message);
  if (server) console.log(`--- server log (tail) ---\n${server.log().slice(-20000)}`);
} finally {
  rep.tag = TAG;
  await cleanup();
  clearTimeout(watchdog);
}

const failed = checks.length === 0 || checks.some((c) => !c.ok);
const sum = Object.entries(summary).map(([c, s]) =>
  `${c}: ${s.ok ? 'ok' : 'FAIL'} frames=${s.frames} +${s.framesAfterRestart} after ICE restart, audio packets=${s.audioPackets}`).join('; ');
console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'} ${sum}`);
process.exit(failed ? 1 : 0);
