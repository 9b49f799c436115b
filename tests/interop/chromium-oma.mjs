#!/usr/bin/env node
// Interop test: the OMA RESTful Network API for WebRTC Signaling 1.0 (oma-path) driven from
// Chromium pages, against a gst-launch-1.0 server.
//
// Usage: node chromium-oma.mjs <h264|vp8>
//
// The server (one HTTP server on 127.0.0.1): whepserversink /cam (a red test pattern encoded
// to the codec asked for, the OMA API on /webrtcsignaling/v1) and whipserversrc /whip (named
// streams). Headless Chromium, from pages of another origin (so CORS preflights apply), with
// plain RTCPeerConnection + fetch and no trickle ICE (offers carry their candidates):
//   playback: a recvonly offer POSTed to .../{userId}/sessions for sip:cam@127.0.0.1: 201
//     with Location = resourceURL and the answer, applied: the video turns red; GET .../answer
//     equals the 201's answer, .../status is Connected, .../ice/status reaches
//     Connected/Completed, PUT .../ice/status Completed is echoed with 200;
//   ICE restart: PUT .../update with a restart offer (200 wrtcsOffer), GET .../answer gives
//     other ICE credentials, applied: frames keep coming and the video is still red;
//   renegotiation: PUT .../update with a new offer of the same media (no restart): 200, the
//     answer stays, GET .../offer is the update; applied: frames keep coming, still red;
//   publishing: a green canvas (the codec asked for preferred) POSTed with a sendonly offer
//     for sip:studio@127.0.0.1 (GET .../answer equals the 201's, .../ice/status reaches
//     Connected/Completed, PUT .../ice/status 200); a third page plays /cam/studio with WHEP:
//     green, in the publisher's codec;
//   errors: sip:nope@127.0.0.1 gives 404 SVC0004; GET on .../sessions 405 with Allow: POST;
//   DELETE of both sessions 204, then GET on them 404.
// The pages wait for ICE gathering to complete before they send an offer; non-127.0.0.1
// candidates are stripped from it (with FAKE_MEDIA_ARGS Chromium gathers no host candidate at
// all: its checks to the answer's 127.0.0.1 candidates are learnt as peer-reflexive).
// Prints POST->201 and first-red-frame timings.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.
//
// Environment: GST_PLUGIN_PATH (default ../../build/gst/wish), CHROMIUM, GST_DEBUG (its
// output is printed when the test fails), VERBOSE=1 (page logs, SDPs and the server log
// also on success).

import path from 'node:path';

import {
  HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, FAKE_MEDIA_ARGS, testPageHtml,
  startPageServer, closePageServer, spawnKept, stopChild, guardRun, waitVideoColor, waitForEndpoint, PLUGIN_PATH,
  launchChromium,
} from './driver.mjs';

const TOTAL_TIMEOUT_MS = 90_000;
const COLOR_TIMEOUT_MS = 10_000;     // first red / green frame
const ICE_TIMEOUT_MS = 8_000;        // ICE (again) connected
const PUB_FLOW_TIMEOUT_MS = 15_000;  // publisher connected and sending
const OMA_PATH = '/webrtcsignaling/v1';
const CODECS = { h264: 'video/H264', vp8: 'video/VP8' };

const codec = (process.argv[2] || '').toLowerCase();
if (!(codec in CODECS)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8>`);
  process.exit(2);
}
const TAG = `chromium-oma ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);
const PAGE_HTML = testPageHtml('wish OMA WebRTC Signaling interop',
  ['page-common.js', 'whep-player-page.js', 'whip-publisher-page.js', 'oma-page.js']);

const isRed = (c) => c && c.r > 170 && c.g < 90 && c.b < 90;
const isGreen = (c) => c && c.g > 170 && c.r < 90 && c.b < 90;
const ufragOf = (sdp) => ((sdp || '').match(/a=ice-ufrag:([^\r\n]+)/) || [])[1] || null;
const candidatesOf = (sdp) => (sdp || '').split('\r\n').filter((l) => l.startsWith('a=candidate:'));
const allLoopback = (lines) => lines.length > 0 && lines.every((l) => l.split(' ')[4] === HOST);
const onLoopback = (c) => typeof c === 'string' && c.startsWith(`${HOST}:`);
const brief = (r) => (r ? `${r.status}${r.error ? ` ${r.error}` : ''} ${(r.body || '').slice(0, 300)}` : 'no request');

function startServer(port) {
  const common = [`address=${HOST}`, `port=${port}`, `ice-local-addresses=${HOST}`];
  const args = [
    '-m',
    'whepserversink', 'name=cam', 'path=/cam', `oma-path=${OMA_PATH}`, `video-codec=${codec}`, ...common,
    'whipserversrc', 'name=in', 'path=/whip', ...common,
    'videotestsrc', 'is-live=true', 'pattern=red', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 'cam.',
    'audiotestsrc', 'is-live=true', '!', 'cam.',
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

// A request of the API from a page (cross-origin fetch).
const oma = (page, method, url, body) =>
  withTimeout(page.evaluate(({ method, url, body }) => window.omaFetch(method, url, body), { method, url, body }),
    10_000, `${method} ${url}`);

async function openPage(ctx, pageUrl, who) {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (VERBOSE) console.log(`[${who}] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[${who} error] ${e.message}`));
  await page.goto(pageUrl, { timeout: 10_000 });
  return page;
}

// Polls the playback page until its ICE is connected on a pair with the local ICE ufrag
// `ufrag` and, when given, the server's ufrag `remoteUfrag` (a pair kept from before a restart
// has the server's old one).
async function waitPlayIce(page, ufrag, ms, remoteUfrag = null) {
  const deadline = Date.now() + ms;
  let st = null;
  while (Date.now() < deadline) {
    st = await page.evaluate(() => window.omaPlayState());
    if ((st.ice === 'connected' || st.ice === 'completed') && st.pairUfrag === ufrag
        && (!remoteUfrag || !st.pairRemoteUfrag || st.pairRemoteUfrag === remoteUfrag)) return { ok: true, st };
    await sleep(100);
  }
  return { ok: false, st };
}

let play = null, restart = null, reneg = null, pub = null, view = null;
const timings = {};
try {
  const port = await freePort();
  const pagePort = await freePort(port);
  const base = `http://${HOST}:${port}`;
  const pageUrl = `http://${HOST}:${pagePort}/`;
  const viewer = `${base}${OMA_PATH}/${encodeURIComponent('sip:viewer@example.com')}`;
  const studio = `${base}${OMA_PATH}/${encodeURIComponent('sip:studio-app@example.com')}`;
  server = startServer(port);
  await waitForEndpoint(`${base}/cam`, server, 10_000, { method: 'OPTIONS' });
  await waitForEndpoint(`${viewer}/sessions`, server, 5_000, { method: 'OPTIONS' });
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  log(`pages at ${pageUrl} (another origin than the server's: CORS applies)`);
  browser = await launchChromium(chromium, log, FAKE_MEDIA_ARGS);

  // 1. Playback of the server's own stream.
  const playPage = await openPage(await browser.newContext({ permissions: [] }), pageUrl, 'player');
  play = await withTimeout(playPage.evaluate((cfg) => window.runOmaPlay(cfg), {
    sessions: `${viewer}/sessions`, participant: `sip:cam@${HOST}`, correlator: 'c1',
  }), 20_000, 'OMA playback session in the page');
  const playBack = Date.now();
  log(`player offer candidates: ${play.offerCandidatesKept.length} kept (127.0.0.1), ${play.offerCandidatesDropped.length} stripped`);
  timings.post = play.postMs;
  if (!check('playback POST sessions 201', play.post?.status === 201 && !play.error,
    `${timings.post} ms, ${play.error || brief(play.post)}`)) throw new Error('no playback session');
  const s = play.session;
  check('Location absolute and equal to resourceURL', /^http:\/\//.test(play.post.location || '')
    && play.post.location === s.resourceURL, `Location ${play.post.location}, resourceURL ${s.resourceURL}`);
  check('201 body: status Connected, clientCorrelator c1, tParticipantAddress echoed',
    s.status === 'Connected' && s.clientCorrelator === 'c1' && s.tParticipantAddress === `sip:cam@${HOST}`,
    JSON.stringify({ status: s.status, clientCorrelator: s.clientCorrelator, tParticipantAddress: s.tParticipantAddress,
      originatorAddress: s.originatorAddress }));
  check('201 body: answer Remote, not provisional, with 127.0.0.1 candidates only, CRLF',
    s.answer.type === 'Remote' && s.answer.isProvisional === 'false' && allLoopback(candidatesOf(s.answer.sdp))
      && !/[^\r]\n/.test(s.answer.sdp),
    `type ${s.answer.type}, isProvisional ${JSON.stringify(s.answer.isProvisional)}, ${candidatesOf(s.answer.sdp).length} candidate(s)`);
  const red = await waitVideoColor(playPage, isRed, COLOR_TIMEOUT_MS);
  timings.red = Date.now() - playBack + (play.answerApplied ?? 0);
  check('the player shows the red test pattern', red.ok, `first red frame ${timings.red} ms after the POST, ${JSON.stringify(red.sample)}`);
  const st = await playPage.evaluate(() => window.omaPlayState());
  check(`the player decodes ${codec}`, (st.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(), st.mimeType);
  check('player media between 127.0.0.1 addresses only', onLoopback(st.pair?.local) && onLoopback(st.pair?.remote),
    `selected pair ${st.pair?.local} <-> ${st.pair?.remote}`);
  const session = play.sessionUrl;
  const answer = await oma(playPage, 'GET', `${session}/answer`);
  const wa = answer.json?.wrtcsAnswer;
  check('GET answer 200 equals the answer of the 201', answer.status === 200 && wa?.sdp === s.answer.sdp
    && wa.type === 'Remote' && wa.isProvisional === 'false', brief(answer).slice(0, 120));
  const status = await oma(playPage, 'GET', `${session}/status`);
  check('GET status: Connected', status.status === 200 && status.json?.wrtcsSessionStatus?.status === 'Connected', brief(status));
  let ice = null;
  for (let i = 0; i < 50; i++) {
    ice = await oma(playPage, 'GET', `${session}/ice/status`);
    if (['Connected', 'Completed'].includes(ice.json?.wrtcsIceStatus?.status)) break;
    await sleep(100);
  }
  check('GET ice/status reaches Connected or Completed', ['Connected', 'Completed'].includes(ice.json?.wrtcsIceStatus?.status), brief(ice));
  const put = await oma(playPage, 'PUT', `${session}/ice/status`, { wrtcsIceStatus: { status: 'Completed' } });
  check('PUT ice/status Completed: 200 echoing it', put.status === 200 && put.json?.wrtcsIceStatus?.status === 'Completed', brief(put));

  // 2. ICE restart through .../update while playing.
  const before = await playPage.evaluate(() => window.omaPlayState());
  const tRestart = Date.now();
  restart = await withTimeout(playPage.evaluate(() => window.omaIceRestart()), 20_000, 'ICE restart in the page');
  check('PUT update (ICE restart) 200 with wrtcsOffer', restart.update?.status === 200 && !!restart.update.json?.wrtcsOffer,
    brief(restart.update).slice(0, 200));
  check('GET answer after the update: new ice-ufrag, with candidates',
    !restart.error && !!ufragOf(restart.answerSdp) && ufragOf(restart.answerSdp) !== ufragOf(s.answer.sdp)
      && allLoopback(restart.answerCandidates),
    restart.error || `ufrag ${ufragOf(s.answer.sdp)} -> ${ufragOf(restart.answerSdp)}, ${restart.answerCandidates.length} candidate(s), applied after ${restart.ms} ms`);
  const again = await waitPlayIce(playPage, ufragOf(restart.offerSdp), ICE_TIMEOUT_MS, ufragOf(restart.answerSdp));
  check('player ICE connected again on a pair of the new credentials', again.ok,
    `${Date.now() - tRestart} ms, ${again.st?.ice}, local ufrag of the selected pair ${before.pairUfrag} -> ${again.st?.pairUfrag} `
    + `(remote ${before.pairRemoteUfrag} -> ${again.st?.pairRemoteUfrag}, answer ${ufragOf(restart.answerSdp)}) `
    + `(offer ${ufragOf(restart.offerSdp)}), pair changes ${before.pairChanges} -> ${again.st?.pairChanges}, `
    + `pair ${again.st?.pair?.local} <-> ${again.st?.pair?.remote}`);
  if (!again.ok || VERBOSE) log(`player candidate pairs: ${JSON.stringify(again.st?.pairs)}`);
  await sleep(1500);
  const after = await playPage.evaluate(() => window.omaPlayState());
  check('frames keep coming after the restart', after.framesDecoded > before.framesDecoded + 20 && after.currentTime > before.currentTime,
    `framesDecoded ${before.framesDecoded} -> ${after.framesDecoded}, currentTime ${before.currentTime.toFixed(2)} -> ${after.currentTime.toFixed(2)}`);
  const red2 = await waitVideoColor(playPage, isRed, 3000);
  check('still red after the restart', red2.ok, JSON.stringify(red2.sample));
  const seen = [];
  let ice2 = null;
  for (let i = 0; i < 30; i++) {
    ice2 = await oma(playPage, 'GET', `${session}/ice/status`);
    const v = ice2.json?.wrtcsIceStatus?.status ?? ice2.status;
    if (seen[seen.length - 1] !== v) seen.push(v);
    if (['Connected', 'Completed'].includes(v)) break;
    await sleep(100);
  }
  check('GET ice/status after the restart: Connected or Completed', ['Connected', 'Completed'].includes(ice2.json?.wrtcsIceStatus?.status),
    `${brief(ice2)}, seen ${seen.join(' -> ')}`);

  // 2b. A renegotiation through .../update without an ICE restart; the media goes on.
  const beforeReneg = await playPage.evaluate(() => window.omaPlayState());
  const answerBefore = (await oma(playPage, 'GET', `${session}/answer`)).json?.wrtcsAnswer?.sdp;
  reneg = await withTimeout(playPage.evaluate(() => window.omaRenegotiate()), 20_000, 'renegotiation in the page');
  check('PUT update (renegotiation, same ICE) 200; the answer stays, the update is the offer',
    !reneg.error && reneg.update?.status === 200 && reneg.answerSdp === answerBefore && reneg.offerBack === reneg.offerSdp,
    reneg.error || `answer applied after ${reneg.ms} ms`);
  await sleep(1500);
  const afterReneg = await playPage.evaluate(() => window.omaPlayState());
  check('frames keep coming after the renegotiation', ['connected', 'completed'].includes(afterReneg.ice)
    && afterReneg.framesDecoded > beforeReneg.framesDecoded + 20,
    `ICE ${afterReneg.ice}, framesDecoded ${beforeReneg.framesDecoded} -> ${afterReneg.framesDecoded}`);
  check('still red after the renegotiation', (await waitVideoColor(playPage, isRed, 3000)).ok);

  // 3. Publishing a green canvas as stream studio, played with WHEP at /cam/studio.
  const pubPage = await openPage(await browser.newContext({ permissions: ['microphone'] }), pageUrl, 'publisher');
  pub = await withTimeout(pubPage.evaluate((cfg) => window.runOmaPublish(cfg), {
    sessions: `${studio}/sessions`, participant: `sip:studio@${HOST}`, correlator: 'c2',
    videoMime: CODECS[codec], canvasColor: '#00ff00', flowTimeoutMs: PUB_FLOW_TIMEOUT_MS,
  }), PUB_FLOW_TIMEOUT_MS + 15_000, 'OMA publishing session in the page');
  log(`publisher offer candidates: ${pub.offerCandidatesKept.length} kept (127.0.0.1), ${pub.offerCandidatesDropped.length} stripped`);
  timings.pubPost = pub.postMs;
  if (!check('publishing POST sessions 201', pub.post?.status === 201 && !pub.error && pub.session?.status === 'Connected',
    `${timings.pubPost} ms, ${pub.error || brief(pub.post).slice(0, 120)}`)) throw new Error('no publishing session');
  check(`the publisher sends ${codec}`, (pub.video?.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(),
    `${pub.video?.mimeType}, framesEncoded ${pub.video?.framesEncoded}, audio packets ${pub.audio?.packetsSent}`);
  check('publisher media between 127.0.0.1 addresses only', onLoopback(pub.pair?.local) && onLoopback(pub.pair?.remote),
    `selected pair ${pub.pair?.local} <-> ${pub.pair?.remote}`);
  const pubAnswer = await oma(pubPage, 'GET', `${pub.sessionUrl}/answer`);
  check('publishing: GET answer 200 equals the answer of the 201',
    pubAnswer.status === 200 && pubAnswer.json?.wrtcsAnswer?.sdp === pub.session.answer.sdp, brief(pubAnswer).slice(0, 120));
  let pubIce = null;
  for (let i = 0; i < 50; i++) {
    pubIce = await oma(pubPage, 'GET', `${pub.sessionUrl}/ice/status`);
    if (['Connected', 'Completed'].includes(pubIce.json?.wrtcsIceStatus?.status)) break;
    await sleep(100);
  }
  check('publishing: GET ice/status reaches Connected or Completed',
    ['Connected', 'Completed'].includes(pubIce.json?.wrtcsIceStatus?.status), brief(pubIce));
  const pubPut = await oma(pubPage, 'PUT', `${pub.sessionUrl}/ice/status`, { wrtcsIceStatus: { status: 'Completed' } });
  check('publishing: PUT ice/status Completed 200', pubPut.status === 200
    && pubPut.json?.wrtcsIceStatus?.status === 'Completed', brief(pubPut));
  const viewPage = await openPage(await browser.newContext({ permissions: [] }), pageUrl, 'viewer');
  view = await withTimeout(viewPage.evaluate((cfg) => window.runWhep(cfg), {
    endpoint: `${base}/cam/studio`, minFrames: 10, framesTimeoutMs: 20_000, maxTries: 20, hold: true,
  }), 30_000, 'WHEP session of /cam/studio in the viewer page');
  if (view.error) throw new Error(`viewer: ${view.error}`);
  const t0 = Date.now();
  const green = await waitVideoColor(viewPage, isGreen, COLOR_TIMEOUT_MS);
  check('the WHEP viewer of /cam/studio shows the green publisher', green.ok, `${Date.now() - t0} ms after ${view.framesDecoded} frames, ${JSON.stringify(green.sample)}`);
  check('the viewer gets the publisher\'s codec', (view.mimeType || '').toLowerCase() === CODECS[codec].toLowerCase(), view.mimeType);
  const viewDel = await viewPage.evaluate(() => window.endWhep());
  check('WHEP viewer DELETE 200', viewDel === 200, String(viewDel));

  // 4. Errors, seen from the page.
  const offer = await playPage.evaluate(() => window.omaRecvOffer());
  const nope = await oma(playPage, 'POST', `${viewer}/sessions`,
    { wrtcsSession: { tParticipantAddress: `sip:nope@${HOST}`, offer: { sdp: offer }, clientCorrelator: 'c3' } });
  check('an unknown stream: 404 SVC0004', nope.status === 404
    && nope.json?.requestError?.serviceException?.messageId === 'SVC0004', brief(nope));
  const get = await oma(playPage, 'GET', `${viewer}/sessions`);
  check('GET on sessions: 405 with Allow: POST', get.status === 405 && get.allow === 'POST', `${brief(get)} Allow: ${get.allow}`);

  // 5. DELETE both sessions, then they are gone.
  const iceLast = await oma(playPage, 'GET', `${session}/ice/status`);
  const last = await playPage.evaluate(() => window.omaPlayState());
  check('the player is still connected and decoding at the end', ['connected', 'completed'].includes(last.ice)
    && last.framesDecoded > after.framesDecoded + 30,
    `${((Date.now() - tRestart) / 1000).toFixed(1)} s after the restart: player ICE ${last.ice}, framesDecoded ${after.framesDecoded} -> ${last.framesDecoded}, `
    + `server ice/status ${iceLast.json?.wrtcsIceStatus?.status ?? iceLast.status}`);
  const playDel = await withTimeout(playPage.evaluate(() => window.omaEnd('play')), 10_000, 'DELETE of the playback session');
  const pubDel = await withTimeout(pubPage.evaluate(() => window.omaEnd('pub')), 10_000, 'DELETE of the publishing session');
  check('DELETE of both sessions 204', playDel.status === 204 && pubDel.status === 204, `${brief(playDel)} / ${brief(pubDel)}`);
  const gone1 = await oma(playPage, 'GET', session);
  const gone2 = await oma(playPage, 'GET', pub.sessionUrl);
  check('GET on the deleted sessions 404', gone1.status === 404 && gone2.status === 404, `${brief(gone1)} / ${brief(gone2)}`);
  log(`timings: playback POST->201 ${timings.post} ms, first red frame ${timings.red} ms after the POST, `
    + `publishing POST->201 ${timings.pubPost} ms, ICE restart ${restart.ms} ms`);
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  const failed = anyFailed();
  if (failed || VERBOSE) {
    for (const [who, r] of [['player', play], ['ICE restart', restart], ['renegotiation', reneg], ['publisher', pub], ['viewer', view]]) {
      if (!r) continue;
      if (r.offerSdp) console.log(`--- ${who} SDP offer (filtered) ---\n${r.offerSdp.trim()}`);
      if (r.answerSdp) console.log(`--- ${who} SDP answer ---\n${r.answerSdp.trim()}`);
      if (r.states) console.log(`--- ${who} peer connection states ---\n${r.states.map((x) => JSON.stringify(x)).join('\n')}`);
    }
  }
  const out = server ? server.output() : '';
  await cleanup();
  if (failed || VERBOSE) console.log(`--- gst-launch-1.0 output (tail) ---\n${out.slice(-20000)}`);
  clearTimeout(watchdog);
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'} post=${timings.post ?? '-'}ms red=${timings.red ?? '-'}ms`);
  process.exit(failed ? 1 : 0);
}
