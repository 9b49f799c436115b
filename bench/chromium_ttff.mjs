// Chromium's time to first frame from whepserversink against a libwebrtc WHEP server, in one
// run. The libwebrtc server is a second headless Chromium page (its RTCPeerConnection answers
// every POST, sending a 640x360@30 canvas) behind a small WHEP front in this script; ours is
// whepserversink with a 640x360@30 test pattern, both VP8. A viewer page joins each in turn:
// a new RTCPeerConnection, its offer with every candidate (non-trickle), POST, answer, first
// frame on a <video> (requestVideoFrameCallback); then DELETE. Prints medians and p95 for the
// whole join and from the POST, and the ratio ours / libwebrtc. The viewer page has no camera
// access, so its offers carry no candidate once the non-loopback ones are stripped: both
// servers learn it as peer-reflexive from its checks to their 127.0.0.1 candidates.
//
// Usage: node bench/chromium_ttff.mjs [joins per server, default 20]
// (run through bench/chromium_ttff, which installs the node modules and sets GST_PLUGIN_PATH).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const interop = path.join(here, '..', 'tests', 'interop');
const {
  HOST, chromiumArgs, closePageServer, freePort, guardRun, loadChromium, sleep, spawnKept, startPageServer, stopChild,
  waitForEndpoint, withTimeout,
} = await import(path.join(interop, 'driver.mjs'));

const TAG = 'chromium-ttff';
const joins = Number.parseInt(process.argv[2] || '20', 10);
const common = fs.readFileSync(path.join(interop, 'page-common.js'), 'utf8');

// The libwebrtc server page: the fake camera, one RTCPeerConnection per WHEP session.
const serverScript = `
let track = null;
const pcs = new Map();
let nextId = 0;
// Chromium's fake camera: a 640x360@30 picture that changes every frame. Camera access also
// makes this page gather on every interface, 127.0.0.1 included, which its answer keeps.
window.startSource = async () => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 } });
  track = media.getVideoTracks()[0];
  return track.getSettings();
};
window.answerOffer = async (offer) => {
  const pc = new RTCPeerConnection();
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  pc.addTrack(track);  // takes the offer's video transceiver
  for (const t of pc.getTransceivers()) t.direction = 'sendonly';
  await pc.setLocalDescription(await pc.createAnswer());
  await waitIceGatheringComplete(pc, 3000);
  const id = String(nextId++);
  pcs.set(id, pc);
  return { id, sdp: keepLoopbackCandidates(pc.localDescription.sdp).sdp };
};
window.debugSession = async (id) => {
  const pc = pcs.get(id);
  if (!pc) return null;
  const out = { state: pc.connectionState, ice: pc.iceConnectionState, sent: [] };
  (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') out.sent.push([s.packetsSent, s.framesEncoded]); });
  out.trackState = track.readyState;
  return out;
};
window.closeSession = (id) => {
  const pc = pcs.get(id);
  if (pc) pc.close();
  return pcs.delete(id);
};
`;

// The viewer page: one WHEP join, timed.
const viewerScript = `
window.join = async (endpoint) => {
  const t0 = performance.now();
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  const firstFrame = new Promise((resolve) => {
    pc.ontrack = (ev) => {
      video.srcObject = new MediaStream([ev.track]);
      video.requestVideoFrameCallback((now, meta) => resolve({ at: performance.now(), width: meta.width }));
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitIceGatheringComplete(pc, 3000);
  const offer = keepLoopbackCandidates(pc.localDescription.sdp).sdp;
  const tPost = performance.now();
  const r = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
  const answer = await r.text();
  const tAnswer = performance.now();
  const out = { status: r.status, total: null, fromPost: null, answerMs: tAnswer - tPost, width: null };
  if (r.status === 201) {
    const where = new URL(r.headers.get('Location'), endpoint).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: keepLoopbackCandidates(answer).sdp });
    const frame = await Promise.race([firstFrame, sleep(10000).then(() => null)]);
    if (frame) {
      out.total = frame.at - t0;
      out.fromPost = frame.at - tPost;
      out.width = frame.width;
    }
    await fetch(where, { method: 'DELETE' }).catch(() => null);
  }
  pc.close();
  video.remove();
  return out;
};
`;

const page = (title, script) =>
  '<!doctype html><html><head><meta charset="utf-8"><title>' + title + '</title></head><body><pre id="log"></pre>' +
  '<script>' + common + '\n' + script + '</script></body></html>';

// The WHEP front of the libwebrtc server: POST -> the page's answer, DELETE -> close, CORS.
function startLibwebrtcFront(port, serverPage) {
  const cors = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type',
    'Access-Control-Expose-Headers': 'Location',
  };
  return new Promise((resolve, reject) => {
    const srv = http.createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      try {
        if (req.method === 'OPTIONS') {
          res.writeHead(204, cors);
        } else if (req.method === 'POST' && req.url === '/whep') {
          const { id, sdp } = await serverPage.evaluate((o) => window.answerOffer(o), Buffer.concat(chunks).toString());
          res.writeHead(201, { ...cors, 'Content-Type': 'application/sdp', Location: '/whep/sessions/' + id });
          res.write(sdp);
        } else if (req.method === 'DELETE' && req.url.startsWith('/whep/sessions/')) {
          if (process.env.VERBOSE) console.log(JSON.stringify(await serverPage.evaluate((i) => window.debugSession(i), req.url.split('/').pop())));
          const ok = await serverPage.evaluate((i) => window.closeSession(i), req.url.split('/').pop());
          res.writeHead(ok ? 200 : 404, cors);
        } else {
          res.writeHead(404, cors);
        }
      } catch (e) {
        res.writeHead(500, cors);
        res.write(String(e.message));
      }
      res.end();
    });
    srv.on('error', reject);
    srv.listen(port, HOST, () => resolve(srv));
  });
}

function stats(values) {
  const v = values.filter((x) => x !== null).sort((a, b) => a - b);
  if (!v.length) return { n: 0, median: NaN, p95: NaN };
  const at = (q) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)];
  const median = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  return { n: v.length, median, p95: at(0.95), min: v[0], max: v[v.length - 1] };
}

const chromium = await loadChromium(TAG);
let browser = null, server = null, pageSrv = null, front = null;
const cleanup = async () => {
  await stopChild(server);
  await browser?.close().catch(() => {});
  await closePageServer(pageSrv);
  await closePageServer(front);
};
const watchdog = guardRun(TAG, 120_000 + joins * 2 * 15_000, cleanup);

try {
  const ourPort = await freePort();
  const gst = process.env.GST_LAUNCH || 'gst-launch-1.0';
  server = spawnKept(gst, ['-q', 'whepserversink', 'name=s', `port=${ourPort}`, 'address=127.0.0.1',
    'ice-local-addresses=127.0.0.1', 'video-codec=vp8', 'videotestsrc', 'is-live=true', 'pattern=ball', '!',
    'video/x-raw,width=640,height=360,framerate=30/1', '!', 's.']);
  const ours = `http://${HOST}:${ourPort}/whep`;
  await waitForEndpoint(`http://${HOST}:${ourPort}/whep`, server, 15000, { headers: { Accept: 'text/html' } });

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: chromiumArgs(['--autoplay-policy=no-user-gesture-required', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream']) });
  const serverPage = await (await browser.newContext()).newPage();
  const viewerPage = await (await browser.newContext()).newPage();
  const fp = await freePort(ourPort);
  pageSrv = await startPageServer(fp, page('server', serverScript));
  await serverPage.goto(`http://${HOST}:${fp}/`);
  const camera = await serverPage.evaluate(() => window.startSource());
  console.log(`[${TAG}] libwebrtc server sends the fake camera: ${camera.width}x${camera.height}@${camera.frameRate}`);
  const frontPortFree = await freePort(ourPort, fp);
  front = await startLibwebrtcFront(frontPortFree, serverPage);
  const theirs = `http://${HOST}:${frontPortFree}/whep`;
  // The viewer's page on the front's origin serves nothing: a page of its own origin.
  const vp = await freePort(ourPort, fp, frontPortFree);
  const viewerSrv = await startPageServer(vp, page('viewer', viewerScript));
  await viewerPage.goto(`http://${HOST}:${vp}/`);

  const results = { ours: [], libwebrtc: [] };
  const targets = [['ours', ours], ['libwebrtc', theirs]];
  // Two warm-up joins each (Chromium's and the servers' first sessions load code), then
  // alternating, so both meet the same machine load.
  for (let i = -2; i < joins; i++) {
    for (const [name, url] of i % 2 ? targets : [...targets].reverse()) {
      const r = await withTimeout(viewerPage.evaluate((u) => window.join(u), url), 20000, `${name} join`);
      if (i >= 0) results[name].push(r);
      if (r.status !== 201 || r.total === null)
        console.log(`[${TAG}] ${name}: join ${i} got ${r.status}${r.total === null ? ', no frame in 10 s' : ''}`);
      await sleep(100);
    }
  }
  await closePageServer(viewerSrv);
  const table = {};
  for (const [name] of targets) {
    const rs = results[name];
    table[name] = { total: stats(rs.map((r) => r.total)), fromPost: stats(rs.map((r) => r.fromPost)),
      answer: stats(rs.map((r) => r.answerMs)), widths: [...new Set(rs.map((r) => r.width))].join(',') };
  }
  const f = (x) => (Number.isFinite(x) ? x.toFixed(0).padStart(6) : '     -');
  console.log(`\nChromium joins of a 640x360@30 VP8 stream on 127.0.0.1, ${joins} each, alternating (ms)`);
  console.log('server      frames  join median   p95 | from POST median   p95 | answer median');
  for (const [name] of targets) {
    const t = table[name];
    console.log(`${name.padEnd(10)} ${String(t.total.n).padStart(7)} ${f(t.total.median)}      ${f(t.total.p95)} |` +
      ` ${f(t.fromPost.median)}           ${f(t.fromPost.p95)} | ${f(t.answer.median)}   (width ${t.widths})`);
  }
  const ratio = table.ours.total.median / table.libwebrtc.total.median;
  console.log(`ours / libwebrtc, join median: ${ratio.toFixed(2)}x ` +
    `(${ratio <= 1 ? 'PASS' : 'MISS'}: no slower than the libwebrtc server)`);
  clearTimeout(watchdog);
  await cleanup();
  process.exit(table.ours.total.n && table.libwebrtc.total.n ? 0 : 1);
} catch (e) {
  console.log(`${TAG}: FAIL ${e.stack || e.message}`);
  if (server) console.log(server.output().slice(-3000));
  clearTimeout(watchdog);
  await cleanup();
  process.exit(1);
}
