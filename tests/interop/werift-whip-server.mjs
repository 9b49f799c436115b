#!/usr/bin/env node
// Independent WHIP server (receiver, RFC 9725) built on werift, a pure TypeScript
// WebRTC stack nobody on this project wrote. It lets the WHIP publisher element
// (whipsink) be tested against a foreign peer: it accepts one sendonly session per
// POST, counts what arrives (RTP packets, complete video frames, keyframes) and can
// send RTCP PLI to the publishers on request.
//
// Usage:
//   node werift-whip-server.mjs [--port N] [--path /whip] [--max-lifetime SECONDS]
//                               [--verbose]
//
//   --port 0 (default) picks a free port. Once the HTTP server listens, the first
//   line on stdout is
//       WHIP_URL=http://127.0.0.1:<port>/whip
//   Nothing else is written to stdout; logs go to stderr. The server runs until
//   SIGINT/SIGTERM (or --max-lifetime, or its parent process goes away) and exits 0.
//
// HTTP API (plain HTTP, 127.0.0.1 only; <path> is /whip by default):
//   POST    <path>                 application/sdp sendonly offer (at most one audio and
//                                  one video m-line; H.264 packetization-mode=1, VP8,
//                                  Opus) -> 201 + recvonly answer (all of werift's ICE
//                                  candidates, 127.0.0.1 only), Location
//                                  <path>/sessions/<id> (relative), ETag "<random>".
//                                  415 wrong Content-Type, 400 unparsable offer,
//                                  422 unsupported codec / more than one m-line per kind
//                                  / other m-line kinds, 503 too many sessions
//   PATCH   <path>/sessions/<id>   application/trickle-ice-sdpfrag, If-Match required
//                                  (428 missing, 412 stale); trickle -> 204; ICE
//                                  restart (new ice-ufrag/ice-pwd, If-Match "*") ->
//                                  200 + sdpfrag + new ETag
//   DELETE  <path>/sessions/<id>   -> 200, closes the peer connection (then 404)
//   OPTIONS any                    -> 204 with Accept-Post: application/sdp and CORS
//   GET     <path>/stats           -> 200 JSON:
//       {"sessions":[{"id","deleted","connectionState","createdMs","deletedMs",
//         "video":{"codec":"video/VP8","payloadType","fmtp","ssrc","packets","bytes",
//                  "frames","keyframes","lastKeyframeMs","plisSent","pliNegotiated"},
//         "audio":{"codec":"audio/opus","payloadType","ssrc","packets","bytes"}}],
//        "active":N,"deleted":K,"plisRequested":P}
//       ("video"/"audio" are null when the offer had no such m-line). Stats of
//       deleted/closed sessions are kept (deleted: true). Times are ms since start.
//   POST    <path>/pli             (no body) -> 204 after an RTCP PLI was sent on
//                                  every video track of every connected session; the
//                                  JSON body-less 204 carries X-Pli-Sent: <count>.
//                                  409 if there is no video track to send it to.
//   DELETE  <path>/stats           -> 204, forgets deleted sessions' stats.
//
// Counting (per session and kind, in werift's MediaStreamTrack.onReceiveRtp, i.e.
// after SRTP decryption and werift's SSRC/payload-type demultiplexing):
//   packets  every RTP packet (padding-only packets included);
//   frames   distinct RTP timestamps of packets with the marker bit set;
//   keyframes distinct RTP timestamps carrying a keyframe start: VP8 = first packet of
//            a partition 0 (S=1, PID=0) whose VP8 payload header has P bit 0; H.264 =
//            a NAL unit of type 5 (IDR), also inside STAP-A and FU-A.
//
// Environment: DEBUG=werift* for werift's own logs.

import {
  HOST, GATHER_TIMEOUT_MS, MAX_BODY_BYTES, configureLog, log, vlog,
  isLoopback, responder, sdpLines, splitSdp, joinSdp, parseCandidate,
  candidateIsUsable, attrValue, describeCodecs, filterAnswer, parseSdpFrag, randomId,
  waitGatheringComplete, disableDefaultStun, withTimeout, restartIce, addTrickleCandidates, mediaType,
  readBody, ifMatchMatches, weriftVersion, parseServerArgs, serveEndpoint, loadWerift, LOOPBACK_PC_CONFIG,
  fmtpParams, answerOffer, superviseConnection, splitOffer, keepOneCodec, requireIceAndDtls, send,
} from './werift-signalling.mjs';

const TAG = 'werift-whip-server';

const CONNECT_TIMEOUT_MS = 30_000;      // session must reach "connected" within this
const DISCONNECTED_GRACE_MS = 15_000;   // "disconnected" longer than this -> close
const MAX_SESSIONS = 16;
const MAX_STATS_KEPT = 256;             // closed sessions whose stats are kept
const PC_CLOSE_TIMEOUT_MS = 2_000;
const SHUTDOWN_HARD_TIMEOUT_MS = 8_000;
const T0 = Date.now();
const nowMs = () => Date.now() - T0;

// ---------------------------------------------------------------------------
// arguments

const OPTS = parseServerArgs(process.argv.slice(2), {
  tag: TAG,
  usageLine: '[--port N] [--path /whip] [--max-lifetime SECONDS] [--verbose]',
  defaults: { path: '/whip' },
});
configureLog(TAG, OPTS.verbose);


const { RTCPeerConnection, useH264, useVP8, useOPUS, useSdesMid } = await loadWerift();

// werift configuration: ICE on 127.0.0.1 only (werift-signalling.mjs), and the codecs.
const PC_CONFIG = {
  ...LOOPBACK_PC_CONFIG,
  // werift matches codecs by MIME type only and answers with the offerer's payload
  // types and fmtp; the offer is reduced to one codec per m-line beforehand.
  codecs: {
    video: [useH264(), useVP8()],
    audio: [useOPUS()],
  },
  headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
};

// ---------------------------------------------------------------------------
// SDP helpers


// What this server accepts, in the publisher's order of preference (m-line order).
function acceptable(kind, c) {
  if (kind === 'video') {
    if (c.name === 'vp8' && c.clock === 90000) return true;
    if (c.name === 'h264' && c.clock === 90000) return fmtpParams(c.fmtp)['packetization-mode'] === '1';
    return false;
  }
  return c.name === 'opus' && c.clock === 48000;
}

const statusError = (status, msg) => Object.assign(new Error(msg), { status });

// Checks the publisher's offer and reduces it to what werift should answer: one codec
// per m-line (the publisher's most preferred acceptable one; werift would otherwise
// accept every payload type of a MIME type, RTX, RED, ...) and only 127.0.0.1 UDP
// candidates. Throws with .status 400 (unparsable) or 422 (unsupported).
function prepareOffer(sdp) {
  const bad = (msg) => statusError(400, msg);
  const unsupported = (msg) => statusError(422, msg);
  const parts = splitOffer(sdp, bad);
  const report = { media: [], candidatesKept: 0, candidatesDropped: 0 };
  const seen = { audio: 0, video: 0 };
  parts.media.forEach((m, index) => {
    const mline = m.lines[0].split(' ');
    if (mline.length < 4 || !/^\d+$/.test(mline[1])) throw bad(`malformed m= line: ${m.lines[0]}`);
    if (m.kind !== 'audio' && m.kind !== 'video') throw unsupported(`m=${m.kind} is not supported (audio and video only)`);
    if (++seen[m.kind] > 1) throw unsupported(`more than one ${m.kind} m-line (at most one audio and one video track)`);
    const mid = attrValue(m.lines, 'mid');
    const dirs = ['sendrecv', 'recvonly', 'sendonly', 'inactive'];
    const dir = (m.lines.find((l) => dirs.includes(l.slice(2))) ?? 'a=sendrecv').slice(2);
    if (dir !== 'sendonly' && dir !== 'sendrecv') throw unsupported(`${m.kind} m-line is ${dir}; a WHIP offer must be sendonly`);
    const codecs = describeCodecs(m.lines, mline.slice(3));
    const codec = codecs.find((c) => acceptable(m.kind, c));
    if (!codec) {
      const offered = codecs.map((c) => `${c.pt} ${c.name}/${c.clock} ${c.fmtp}`.trim()).join(', ');
      throw unsupported(`no supported ${m.kind} codec (${m.kind === 'video' ? 'H264 packetization-mode=1 or VP8' : 'opus/48000'}) offered: ${offered}`);
    }
    report.media.push({ index, kind: m.kind, mid, codec, dir });
    keepOneCodec(m, codec.pt, report, { dropSsrcGroups: true });
    // a=ssrc lines of the RTX/FEC SSRCs of a removed ssrc-group are harmless to werift.
  });
  requireIceAndDtls(parts, bad);
  return { sdp: joinSdp(parts), report };
}


// ---------------------------------------------------------------------------
// per-packet inspection

// VP8 (RFC 7741): true if this packet starts a keyframe (S=1, PID=0, P bit 0).
function vp8KeyframeStart(p) {
  if (p.length < 1) return false;
  const b0 = p[0];
  const s = (b0 & 0x10) !== 0, pid = b0 & 0x07;
  let off = 1;
  if (b0 & 0x80) { // X: extended control bits
    if (p.length < 2) return false;
    const x = p[1];
    off = 2;
    if (x & 0x80) { // I: picture id, 7 or 15 bits
      if (p.length <= off) return false;
      off += (p[off] & 0x80) ? 2 : 1;
    }
    if (x & 0x40) off += 1;          // L: TL0PICIDX
    if (x & 0x30) off += 1;          // T or K: TID/Y/KEYIDX
  }
  if (!s || pid !== 0 || p.length <= off) return false;
  return (p[off] & 0x01) === 0;
}

// H.264 (RFC 6184): true if the packet carries (part of) an IDR NAL unit.
function h264HasIdr(p) {
  if (p.length < 1) return false;
  const type = p[0] & 0x1f;
  if (type === 5) return true;
  if (type === 24) { // STAP-A: [hdr] ([size16][nal])*
    let off = 1;
    while (off + 2 < p.length) {
      const size = p.readUInt16BE(off);
      off += 2;
      if (size === 0 || off + size > p.length) break;
      if ((p[off] & 0x1f) === 5) return true;
      off += size;
    }
    return false;
  }
  if (type === 28 || type === 29) return p.length >= 2 && (p[1] & 0x1f) === 5; // FU-A/FU-B
  return false;
}

function newKindStats(kind, codec) {
  const st = {
    codec: `${kind}/${codec.name === 'h264' ? 'H264' : codec.name === 'vp8' ? 'VP8' : codec.name}`,
    payloadType: Number(codec.pt), fmtp: codec.fmtp || null, ssrc: null, packets: 0, bytes: 0,
  };
  if (kind === 'video') {
    Object.assign(st, { frames: 0, keyframes: 0, lastKeyframeMs: null, keyframesSinceLastPli: 0,
      plisSent: 0, lastPliMs: null, pliNegotiated: null });
  }
  return st;
}

function inspectRtp(s, kind, rtp) {
  const st = s.stats[kind];
  const ins = s.inspect[kind];
  const h = rtp.header;
  st.packets++;
  st.bytes += rtp.payload.length;
  st.ssrc = h.ssrc;
  if (kind !== 'video' || rtp.payload.length === 0) return;
  if (h.marker && h.timestamp !== ins.lastMarkerTs) {
    ins.lastMarkerTs = h.timestamp;
    st.frames++;
  }
  const key = st.codec === 'video/VP8' ? vp8KeyframeStart(rtp.payload) : h264HasIdr(rtp.payload);
  if (key && h.timestamp !== ins.lastKeyTs) {
    ins.lastKeyTs = h.timestamp;
    st.keyframes++;
    st.keyframesSinceLastPli++;
    st.lastKeyframeMs = nowMs();
    vlog(`session ${s.id}: keyframe #${st.keyframes} (ts ${h.timestamp})`);
  }
}

// ---------------------------------------------------------------------------
// sessions

const sessions = new Map(); // id -> live session
const statsById = new Map(); // id -> stats record (kept after the session ends)
let plisRequested = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


function pruneStats() {
  let closed = [...statsById.values()].filter((r) => r.deleted || r.closed);
  while (closed.length > MAX_STATS_KEPT) statsById.delete(closed.shift().id);
}

async function closeSession(s, why) {
  if (s.closed) return;
  s.closed = true;
  sessions.delete(s.id);
  clearTimeout(s.connectTimer);
  clearTimeout(s.disconnectTimer);
  const rec = s.stats;
  rec.closed = true;
  rec.closedReason = why;
  rec.deleted = why === 'DELETE';
  rec.deletedMs = nowMs();
  rec.connectionState = 'closed';
  const v = rec.video, a = rec.audio;
  log(`session ${s.id}: closing (${why}); video ${v ? `${v.codec} packets=${v.packets} frames=${v.frames} keyframes=${v.keyframes}` : 'none'}; ` +
    `audio ${a ? `${a.codec} packets=${a.packets}` : 'none'}`);
  for (const sub of s.subs) { try { sub.unSubscribe(); } catch { /* ignore */ } }
  await withTimeout(s.pc.close(), PC_CLOSE_TIMEOUT_MS, 'RTCPeerConnection.close').catch((e) => log(`session ${s.id}: ${e.message}`));
  pruneStats();
}

function attachTrack(s, kind, track, transceiver) {
  if (s.tracks[kind]) {
    vlog(`session ${s.id}: ignoring a further ${kind} track (ssrc ${track.ssrc})`);
    return;
  }
  s.tracks[kind] = { track, receiver: transceiver.receiver };
  log(`session ${s.id}: ${kind} track (ssrc ${track.ssrc ?? '?'}, codec ${track.codec?.mimeType ?? s.stats[kind]?.codec})`);
  s.subs.push(track.onReceiveRtp.subscribe((rtp) => {
    try { inspectRtp(s, kind, rtp); } catch (e) { vlog(`session ${s.id}: inspect ${kind}: ${e.message}`); }
  }));
  if (kind === 'video') s.stats.video.pliNegotiated = !!transceiver.receiver.pliEnabled;
}

// Sends one RTCP PLI for the session's video track; returns true if sent.
async function sendPli(s) {
  const v = s.tracks.video;
  if (!v || s.closed || s.pc.connectionState !== 'connected') return false;
  const ssrc = v.track.ssrc ?? s.stats.video.ssrc;
  if (ssrc == null) return false;
  if (v.receiver.pliEnabled) {
    await v.receiver.sendRtcpPLI(ssrc);
  } else {
    // "nack pli" not negotiated: werift's sendRtcpPLI would silently do nothing. Send
    // it anyway (this is a test peer; the publisher's reaction is what is tested).
    const { RtcpPayloadSpecificFeedback, PictureLossIndication } = werift;
    await v.receiver.dtlsTransport.sendRtcp([new RtcpPayloadSpecificFeedback({
      feedback: new PictureLossIndication({ senderSsrc: v.receiver.rtcpSsrc, mediaSsrc: ssrc }),
    })]);
  }
  const st = s.stats.video;
  st.plisSent++;
  st.lastPliMs = nowMs();
  st.keyframesSinceLastPli = 0;
  log(`session ${s.id}: PLI sent for ssrc ${ssrc} (#${st.plisSent}${v.receiver.pliEnabled ? '' : ', nack pli not negotiated'})`);
  return true;
}

async function createSession(offerSdp) {
  const prepared = prepareOffer(offerSdp);
  const pc = new RTCPeerConnection(PC_CONFIG);
  const id = randomId(12);
  const stats = {
    id, deleted: false, closed: false, closedReason: null, connectionState: 'new', createdMs: nowMs(), deletedMs: null,
    video: null, audio: null,
  };
  const s = {
    id, etag: `"${randomId(8)}"`, pc, tracks: {}, subs: [], stats,
    inspect: { video: { lastMarkerTs: null, lastKeyTs: null }, audio: {} },
    offer: prepared.sdp, remoteUfrag: null, remotePwd: null, closed: false, connectTimer: null, disconnectTimer: null,
  };
  for (const m of prepared.report.media) stats[m.kind] = newKindStats(m.kind, m.codec);
  try {
    // recvonly transceivers added before setRemoteDescription are matched to the
    // offer's m-lines of the same kind.
    for (const m of prepared.report.media) {
      const tr = pc.addTransceiver(m.kind, { direction: 'recvonly' });
      s.subs.push(tr.onTrack.subscribe((track, t) => attachTrack(s, m.kind, track, t ?? tr)));
    }
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: prepared.sdp });
    } catch (e) {
      throw statusError(400, `werift rejected the offer: ${e.message}`);
    }
    disableDefaultStun(pc);
    for (const t of pc.getTransceivers()) {
      if (t.direction !== 'recvonly' && t.direction !== 'inactive') t.setDirection('recvonly');
    }
    await answerOffer(s, pc, prepared);
  } catch (e) {
    await withTimeout(pc.close(), PC_CLOSE_TIMEOUT_MS, 'close').catch(() => {});
    throw e;
  }

  s.subs.push(...superviseConnection(s, pc, closeSession, {
    connectMs: CONNECT_TIMEOUT_MS,
    graceMs: DISCONNECTED_GRACE_MS,
    onState: (state) => { if (!s.closed) stats.connectionState = state; },
  }));
  sessions.set(s.id, s);
  statsById.set(s.id, stats);
  return s;
}

function statsJson() {
  const list = [...statsById.values()];
  return JSON.stringify({
    sessions: list,
    active: list.filter((r) => !r.closed).length,
    deleted: list.filter((r) => r.deleted).length,
    closed: list.filter((r) => r.closed).length,
    plisRequested,
    uptimeMs: nowMs(),
  }, null, 1) + '\n';
}

// ---------------------------------------------------------------------------
// HTTP

const statsPath = `${OPTS.path}/stats`;
const pliPath = `${OPTS.path}/pli`;

// GET/DELETE <path>/stats and POST <path>/pli.
async function statsAndPli(req, res, p) {
  if (p === statsPath) {
    await readBody(req).catch(() => '');
    if (req.method === 'OPTIONS') send(res, 204, { Allow: 'GET, DELETE, OPTIONS' });
    else if (req.method === 'GET') send(res, 200, { 'Content-Type': 'application/json' }, statsJson());
    else if (req.method === 'DELETE') {
      for (const [id, r] of statsById) if (r.closed) statsById.delete(id);
      send(res, 204);
    } else send(res, 405, { Allow: 'GET, DELETE, OPTIONS' }, 'method not allowed\n');
    return true;
  }
  if (p === pliPath) {
    await readBody(req).catch(() => '');
    if (req.method === 'OPTIONS') {
      send(res, 204, { Allow: 'POST, OPTIONS' });
      return true;
    }
    if (req.method !== 'POST') {
      send(res, 405, { Allow: 'POST, OPTIONS' }, 'method not allowed\n');
      return true;
    }
    plisRequested++;
    const results = await Promise.allSettled([...sessions.values()].map((s) => sendPli(s)));
    const sent = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    for (const r of results) if (r.status === 'rejected') log(`PLI failed: ${r.reason?.message ?? r.reason}`);
    if (!sent) send(res, 409, {}, 'no connected session with a video track\n');
    else send(res, 204, { 'X-Pli-Sent': String(sent) });
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// HTTP and lifecycle

serveEndpoint({
  opts: OPTS,
  urlVar: 'WHIP_URL',
  sessions,
  maxSessions: MAX_SESSIONS,
  createSession,
  closeSession,
  describeSession: (s) => s.report.media
    .map((m) => `${m.kind}=${m.codec.name}/pt${m.codec.pt}${m.codec.fmtp ? ` (${m.codec.fmtp})` : ''}`).join(', '),
  extraRoute: statsAndPli,
  hardTimeoutMs: SHUTDOWN_HARD_TIMEOUT_MS,
  describeListening: () => `stats ${statsPath}, pli ${pliPath}`,
});
