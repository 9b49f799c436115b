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

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';
const TAG = 'werift-whip-server';

const GATHER_TIMEOUT_MS = 5_000;        // werift ICE gathering for one answer
const CONNECT_TIMEOUT_MS = 30_000;      // session must reach "connected" within this
const DISCONNECTED_GRACE_MS = 15_000;   // "disconnected" longer than this -> close
const MAX_SESSIONS = 16;
const MAX_STATS_KEPT = 256;             // closed sessions whose stats are kept
const MAX_BODY_BYTES = 256 * 1024;
const PC_CLOSE_TIMEOUT_MS = 2_000;
const SHUTDOWN_HARD_TIMEOUT_MS = 8_000;
const T0 = Date.now();
const nowMs = () => Date.now() - T0;

// ---------------------------------------------------------------------------
// arguments

function usage(msg) {
  if (msg) process.stderr.write(`${TAG}: ${msg}\n`);
  process.stderr.write(
    `usage: node ${path.basename(process.argv[1])} [--port N] [--path /whip] [--max-lifetime SECONDS] [--verbose]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, path: '/whip', maxLifetime: 0, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--port': {
        const v = next();
        if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`bad --port ${v}`);
        opts.port = Number(v);
        break;
      }
      case '--path': opts.path = next(); break;
      case '--max-lifetime': {
        const v = next();
        if (!/^\d+(\.\d+)?$/.test(v)) usage(`bad --max-lifetime ${v}`);
        opts.maxLifetime = Number(v);
        break;
      }
      case '--verbose': case '-v': opts.verbose = true; break;
      case '--help': case '-h': usage();
      // falls through (usage exits)
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(opts.path)) usage(`bad --path ${opts.path}`);
  opts.path = opts.path.replace(/\/+$/, '') || '/whip';
  return opts;
}

const OPTS = parseArgs(process.argv.slice(2));

function log(msg) {
  process.stderr.write(`[${TAG} ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}
function vlog(msg) {
  if (OPTS.verbose) log(msg);
}

let werift;
try {
  werift = await import('werift');
} catch (e) {
  log(`FATAL cannot load werift (run npm ci in ${HERE}): ${e.message}`);
  process.exit(1);
}
const { RTCPeerConnection, useH264, useVP8, useOPUS, useSdesMid } = werift;

// werift configuration. ICE is restricted to the loopback interface:
//  - iceUseIpv4/iceUseIpv6 false: do not enumerate the host's interfaces at all
//    (werift's enumeration skips loopback anyway, it would only add e.g. eth0);
//  - iceAdditionalHostAddresses ['127.0.0.1']: the only host candidate address;
//  - iceInterfaceAddresses { udp4: '127.0.0.1' }: the ICE sockets bind to
//    127.0.0.1 instead of 0.0.0.0;
//  - no STUN/TURN servers (werift would otherwise default to a public STUN server), no TCP candidates;
//  - iceFilterCandidatePair / iceFilterStunResponse: only pairs and STUN requests
//    between 127.0.0.1 addresses (belt and braces; remote candidates that are not
//    127.0.0.1 are also stripped from the offer and from PATCH bodies, which keeps
//    werift from starting an mDNS query for ".local" candidates).
const isLoopback = (addr) => addr === HOST;
const PC_CONFIG = {
  iceServers: [],
  iceTransportPolicy: 'all',
  iceUseIpv4: false,
  iceUseIpv6: false,
  iceUseTcp: false,
  iceUseLinkLocalAddress: false,
  iceAdditionalHostAddresses: [HOST],
  iceInterfaceAddresses: { udp4: HOST },
  iceFilterCandidatePair: (pair) =>
    isLoopback(pair.remoteCandidate?.host) && isLoopback(pair.protocol?.localCandidate?.host ?? HOST),
  iceFilterStunResponse: (_msg, addr) => isLoopback(addr?.[0]),
  bundlePolicy: 'max-bundle',
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

function sdpLines(sdp) {
  return sdp.split(/\r?\n/).filter((l) => l.length > 0);
}

// { session: [lines], media: [{ kind, lines }] }
function splitSdp(sdp) {
  const out = { session: [], media: [] };
  for (const line of sdpLines(sdp)) {
    if (line.startsWith('m=')) {
      out.media.push({ kind: line.slice(2).split(' ')[0], lines: [line] });
    } else if (out.media.length) {
      out.media[out.media.length - 1].lines.push(line);
    } else {
      out.session.push(line);
    }
  }
  return out;
}

function joinSdp(parts) {
  return [...parts.session, ...parts.media.flatMap((m) => m.lines)].join('\r\n') + '\r\n';
}

// a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
function parseCandidate(line) {
  const value = line.replace(/^a=/, '').replace(/^candidate:/, '');
  const f = value.split(/\s+/);
  if (f.length < 8 || f[6] !== 'typ') return null;
  return { transport: f[2].toLowerCase(), address: f[4], port: Number(f[5]), type: f[7] };
}

function candidateIsUsable(line) {
  const c = parseCandidate(line);
  return !!c && c.transport === 'udp' && isLoopback(c.address) && c.port > 0 && c.port < 65536;
}

const attrValue = (lines, name) => {
  const l = lines.find((x) => x.startsWith(`a=${name}:`));
  return l ? l.slice(name.length + 3).trim() : null;
};

function describeCodecs(lines, fmts) {
  const codecs = new Map();
  for (const pt of fmts) codecs.set(pt, { pt, name: '', clock: 0, channels: 1, fmtp: '' });
  for (const l of lines) {
    let m = /^a=rtpmap:(\d+) ([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(l);
    if (m && codecs.has(m[1])) {
      Object.assign(codecs.get(m[1]), { name: m[2].toLowerCase(), clock: Number(m[3]), channels: Number(m[4] || 1) });
      continue;
    }
    m = /^a=fmtp:(\d+) (.*)$/.exec(l);
    if (m && codecs.has(m[1])) codecs.get(m[1]).fmtp = m[2].trim();
  }
  return [...codecs.values()];
}


const fmtpParams = (fmtp) => Object.fromEntries(fmtp.split(';').map((kv) => kv.trim().split('='))
  .filter((kv) => kv[0]).map(([k, v]) => [k.toLowerCase(), (v ?? '').trim().toLowerCase()]));

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
  const parts = splitSdp(sdp);
  if (!/^v=0$/.test(parts.session[0] || '')) throw bad('not an SDP (no v=0 line)');
  if (!parts.media.length) throw bad('SDP offer has no m= line');
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
    m.lines[0] = [...mline.slice(0, 3), codec.pt].join(' ');
    m.lines = m.lines.filter((l) => {
      const pt = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[ \s]/.exec(l)?.[1];
      if (pt !== undefined && pt !== '*' && pt !== codec.pt) return false;
      if (l.startsWith('a=ssrc-group:')) return false; // FID/FEC-FR of stripped RTX/FEC
      if (l.startsWith('a=candidate:')) {
        const ok = candidateIsUsable(l);
        report[ok ? 'candidatesKept' : 'candidatesDropped']++;
        return ok;
      }
      return true;
    });
    // a=ssrc lines of the RTX/FEC SSRCs of a removed ssrc-group are harmless to werift.
  });
  const all = [...parts.session, ...parts.media.flatMap((m) => m.lines)];
  if (!all.some((l) => l.startsWith('a=ice-ufrag:')) || !all.some((l) => l.startsWith('a=ice-pwd:'))) {
    throw bad('SDP offer has no ice-ufrag/ice-pwd');
  }
  if (!all.some((l) => l.startsWith('a=fingerprint:'))) throw bad('SDP offer has no DTLS fingerprint');
  return { sdp: joinSdp(parts), report };
}
// Keeps only 127.0.0.1 candidates in werift's answer.
function filterAnswer(sdp) {
  let kept = 0, dropped = 0;
  const lines = sdpLines(sdp).filter((l) => {
    if (!l.startsWith('a=candidate:')) return true;
    const ok = candidateIsUsable(l);
    if (ok) kept++; else dropped++;
    return ok;
  });
  return { sdp: lines.join('\r\n') + '\r\n', kept, dropped };
}

// application/trickle-ice-sdpfrag (RFC 8840): ice-ufrag/ice-pwd (session or media
// level), optional m= lines with a=mid, a=candidate and a=end-of-candidates lines.
function parseSdpFrag(body) {
  const frag = { ufrag: null, pwd: null, candidates: [], endOfCandidates: false };
  let mid = null, mLineIndex = -1;
  for (const line of sdpLines(body)) {
    if (line.startsWith('m=')) { mLineIndex++; mid = null; continue; }
    if (line.startsWith('a=mid:')) { mid = line.slice(6).trim(); continue; }
    if (line.startsWith('a=ice-ufrag:')) { frag.ufrag = line.slice(12).trim(); continue; }
    if (line.startsWith('a=ice-pwd:')) { frag.pwd = line.slice(10).trim(); continue; }
    if (line.startsWith('a=candidate:')) {
      frag.candidates.push({ line, mid, mLineIndex: Math.max(mLineIndex, 0) });
      continue;
    }
    if (line === 'a=end-of-candidates') frag.endOfCandidates = true;
  }
  return frag;
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

const randomId = (bytes) => crypto.randomBytes(bytes).toString('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitGatheringComplete(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { sub.unSubscribe(); resolve(false); }, ms);
    const sub = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') { clearTimeout(timer); sub.unSubscribe(); resolve(true); }
    });
  });
}

// werift's ICE agent falls back to a hard-coded public STUN server when none is
// configured (in ice/src/ice.js), i.e. every gathering would start a DNS lookup and
// a STUN request off the loopback interface. Clear it on every ICE agent before
// gathering (gathering happens in setLocalDescription); fail if the internals moved.
function disableDefaultStun(pc) {
  const transports = pc.iceTransports;
  if (!transports.length) throw new Error('werift internals changed: no ICE transport before setLocalDescription');
  for (const t of transports) {
    const conn = t.connection;
    if (!conn || !('stunServer' in conn)) throw new Error('werift internals changed: ICE connection has no stunServer');
    conn.stunServer = undefined;
    conn.turnServer = undefined;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

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
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    const gathered = await waitGatheringComplete(pc, GATHER_TIMEOUT_MS);
    const filtered = filterAnswer(pc.localDescription.sdp);
    if (!filtered.kept) throw new Error(`werift gathered no 127.0.0.1 candidate (gathering complete: ${gathered})`);
    const ice = splitSdp(prepared.sdp);
    const allLines = [...ice.session, ...ice.media.flatMap((m) => m.lines)];
    s.remoteUfrag = attrValue(allLines, 'ice-ufrag');
    s.remotePwd = attrValue(allLines, 'ice-pwd');
    s.answer = filtered.sdp;
    s.report = prepared.report;
    s.answerCandidates = { kept: filtered.kept, dropped: filtered.dropped };
  } catch (e) {
    await withTimeout(pc.close(), PC_CLOSE_TIMEOUT_MS, 'close').catch(() => {});
    throw e;
  }

  s.subs.push(pc.connectionStateChange.subscribe((state) => {
    log(`session ${s.id}: connection ${state}`);
    if (!s.closed) stats.connectionState = state;
    if (state === 'connected') {
      clearTimeout(s.connectTimer);
      clearTimeout(s.disconnectTimer);
    } else if (state === 'failed' || state === 'closed') {
      closeSession(s, `connection ${state}`);
    } else if (state === 'disconnected') {
      clearTimeout(s.disconnectTimer);
      s.disconnectTimer = setTimeout(() => closeSession(s, `disconnected for ${DISCONNECTED_GRACE_MS} ms`), DISCONNECTED_GRACE_MS);
    }
  }));
  s.subs.push(pc.iceConnectionStateChange.subscribe((state) => vlog(`session ${s.id}: ice ${state}`)));
  s.connectTimer = setTimeout(() => {
    if (pc.connectionState !== 'connected') closeSession(s, `not connected within ${CONNECT_TIMEOUT_MS} ms`);
  }, CONNECT_TIMEOUT_MS);
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

// ICE restart requested through PATCH (new ice-ufrag / ice-pwd): werift restarts ICE
// when a new remote offer carries new credentials, so the original (reduced) offer is
// re-applied with the new credentials and candidates, and the new local credentials
// and candidates of werift's answer are returned as an sdpfrag.
async function restartIce(s, frag) {
  const parts = splitSdp(s.offer);
  const rewrite = (lines) => lines
    .filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates')
    .map((l) => (l.startsWith('a=ice-ufrag:') ? `a=ice-ufrag:${frag.ufrag}`
      : l.startsWith('a=ice-pwd:') ? `a=ice-pwd:${frag.pwd}` : l));
  parts.session = rewrite(parts.session);
  parts.media.forEach((m, i) => {
    m.lines = rewrite(m.lines);
    const mid = attrValue(m.lines, 'mid');
    for (const c of frag.candidates) {
      if ((c.mid !== null ? c.mid === mid : c.mLineIndex === i) && candidateIsUsable(c.line)) m.lines.push(c.line);
    }
  });
  const offer = joinSdp(parts);
  await s.pc.setRemoteDescription({ type: 'offer', sdp: offer });
  disableDefaultStun(s.pc);
  vlog(`session ${s.id}: ICE restart: after SRD transports ${s.pc.iceTransports.map((t) => `${t.state}/${t.connection.state}/nominated=${!!t.connection.nominated}`).join(' ')}`);
  const answer = await s.pc.createAnswer();
  await s.pc.setLocalDescription(answer);
  await waitGatheringComplete(s.pc, GATHER_TIMEOUT_MS);
  // werift 0.24 restarts the ICE agent (new credentials, nominated pair dropped) but
  // RTCPeerConnection.connect() skips transports whose DTLS is already connected, so
  // the agent would never run again: queued incoming checks are not processed, no pair
  // is nominated and media stops. Start the restarted ICE transports explicitly.
  vlog(`session ${s.id}: ICE restart: after SLD transports ${s.pc.iceTransports.map((t) => `${t.state}/${t.connection.state}/nominated=${!!t.connection.nominated}`).join(' ')}`);
  for (const t of new Set(s.pc.iceTransports)) {
    if (!t.connection.nominated) {
      t.start().catch((e) => log(`session ${s.id}: ICE start after restart failed: ${e.message}`));
    }
  }
  const local = splitSdp(filterAnswer(s.pc.localDescription.sdp).sdp);
  const localAll = [...local.session, ...local.media.flatMap((m) => m.lines)];
  const first = local.media[0];
  const fragOut = [
    `a=ice-ufrag:${attrValue(localAll, 'ice-ufrag')}`,
    `a=ice-pwd:${attrValue(localAll, 'ice-pwd')}`,
    first.lines[0],
    `a=mid:${attrValue(first.lines, 'mid')}`,
    ...first.lines.filter((l) => l.startsWith('a=candidate:')),
    'a=end-of-candidates',
  ];
  s.offer = offer;
  s.remoteUfrag = frag.ufrag;
  s.remotePwd = frag.pwd;
  s.etag = `"${randomId(8)}"`;
  return fragOut.join('\r\n') + '\r\n';
}

async function addTrickleCandidates(s, frag) {
  let added = 0, ignored = 0;
  for (const c of frag.candidates) {
    if (!candidateIsUsable(c.line)) { ignored++; continue; }
    const init = { candidate: c.line.slice(2), usernameFragment: s.remoteUfrag };
    if (c.mid !== null) init.sdpMid = c.mid; else init.sdpMLineIndex = c.mLineIndex;
    try {
      await s.pc.addIceCandidate(init);
      added++;
    } catch (e) {
      // an unknown mid etc.: fall back to the first (bundled) m-line
      try {
        await s.pc.addIceCandidate({ candidate: init.candidate, sdpMLineIndex: 0 });
        added++;
      } catch (e2) {
        ignored++;
        log(`session ${s.id}: addIceCandidate failed: ${e2.message} (${c.line})`);
      }
    }
  }
  if (frag.endOfCandidates) {
    await s.pc.addIceCandidate({ candidate: '', sdpMLineIndex: 0 }).catch((e) => vlog(`end-of-candidates: ${e.message}`));
  }
  return { added, ignored };
}

// ---------------------------------------------------------------------------
// HTTP

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PATCH, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, If-Match, Authorization',
  'Access-Control-Expose-Headers': 'Location, ETag, Accept-Patch, Accept-Post, Link',
  'Access-Control-Max-Age': '600',
};

function send(res, status, headers = {}, body = '') {
  if (res.headersSent) return;
  const h = { ...CORS, 'Cache-Control': 'no-store', ...headers };
  if (body && !h['Content-Type']) h['Content-Type'] = 'text/plain; charset=utf-8';
  h['Content-Length'] = Buffer.byteLength(body);
  res.writeHead(status, h);
  res.end(body);
}

const mediaType = (req) => (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let len = 0;
    const timer = setTimeout(() => reject(Object.assign(new Error('request body timeout'), { status: 408 })), 10_000);
    req.on('data', (c) => {
      len += c.length;
      if (len > MAX_BODY_BYTES) {
        clearTimeout(timer);
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('utf8')); });
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// If-Match: "*", "etag", W/"etag" or a list; an unquoted value is accepted as well.
function ifMatchMatches(header, etag) {
  const bare = etag.replace(/^"|"$/g, '');
  return header.split(',').map((v) => v.trim().replace(/^W\//, '').replace(/^"|"$/g, ''))
    .some((v) => v === '*' || v === bare);
}


const sessionPrefix = `${OPTS.path}/sessions/`;
const statsPath = `${OPTS.path}/stats`;
const pliPath = `${OPTS.path}/pli`;

async function handle(req, res) {
  const url = new URL(req.url, `http://${HOST}`);
  const p = url.pathname;
  vlog(`${req.method} ${p} (${req.headers['content-type'] || '-'})`);

  if (p === OPTS.path) {
    if (req.method === 'OPTIONS') return send(res, 204, { 'Accept-Post': 'application/sdp', Allow: 'POST, OPTIONS' });
    if (req.method !== 'POST') return send(res, 405, { Allow: 'POST, OPTIONS' }, 'method not allowed\n');
    if (mediaType(req) !== 'application/sdp') {
      await readBody(req).catch(() => '');
      return send(res, 415, { 'Accept-Post': 'application/sdp' }, 'Content-Type must be application/sdp\n');
    }
    const offer = await readBody(req);
    if (sessions.size >= MAX_SESSIONS) return send(res, 503, { 'Retry-After': '2' }, 'too many sessions\n');
    let s;
    try {
      s = await createSession(offer);
    } catch (e) {
      const status = e.status || 500; // 400 unparsable, 422 unsupported (set above)
      log(`POST ${p}: ${status} ${e.message}`);
      return send(res, status, {}, `${e.message}\n`);
    }
    const got = s.report.media.map((m) => `${m.kind}=${m.codec.name}/pt${m.codec.pt}${m.codec.fmtp ? ` (${m.codec.fmtp})` : ''}`);
    log(`session ${s.id}: created; ${got.join(', ')}; offer candidates kept ${s.report.candidatesKept}, ` +
      `dropped ${s.report.candidatesDropped}; answer candidates ${s.answerCandidates.kept} (dropped ${s.answerCandidates.dropped})`);
    vlog(`offer (reduced):\n${s.offer}answer:\n${s.answer}`);
    return send(res, 201, {
      'Content-Type': 'application/sdp',
      Location: `${sessionPrefix}${s.id}`,
      ETag: s.etag,
      'Accept-Patch': 'application/trickle-ice-sdpfrag',
    }, s.answer);
  }

  if (p === statsPath) {
    await readBody(req).catch(() => '');
    if (req.method === 'OPTIONS') return send(res, 204, { Allow: 'GET, DELETE, OPTIONS' });
    if (req.method === 'GET') return send(res, 200, { 'Content-Type': 'application/json' }, statsJson());
    if (req.method === 'DELETE') {
      for (const [id, r] of statsById) if (r.closed) statsById.delete(id);
      return send(res, 204);
    }
    return send(res, 405, { Allow: 'GET, DELETE, OPTIONS' }, 'method not allowed\n');
  }

  if (p === pliPath) {
    await readBody(req).catch(() => '');
    if (req.method === 'OPTIONS') return send(res, 204, { Allow: 'POST, OPTIONS' });
    if (req.method !== 'POST') return send(res, 405, { Allow: 'POST, OPTIONS' }, 'method not allowed\n');
    plisRequested++;
    const results = await Promise.allSettled([...sessions.values()].map((s) => sendPli(s)));
    const sent = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    for (const r of results) if (r.status === 'rejected') log(`PLI failed: ${r.reason?.message ?? r.reason}`);
    if (!sent) return send(res, 409, {}, 'no connected session with a video track\n');
    return send(res, 204, { 'X-Pli-Sent': String(sent) });
  }

  if (p.startsWith(sessionPrefix)) {
    const id = p.slice(sessionPrefix.length);
    const s = sessions.get(id);
    if (req.method === 'OPTIONS') {
      return send(res, 204, { 'Accept-Patch': 'application/trickle-ice-sdpfrag', Allow: 'PATCH, DELETE, OPTIONS' });
    }
    if (req.method !== 'PATCH' && req.method !== 'DELETE') {
      return send(res, 405, { Allow: 'PATCH, DELETE, OPTIONS' }, 'method not allowed\n');
    }
    if (!s) {
      await readBody(req).catch(() => '');
      return send(res, 404, {}, 'no such session\n');
    }
    if (req.method === 'DELETE') {
      await readBody(req).catch(() => '');
      await closeSession(s, 'DELETE');
      return send(res, 200, {}, '');
    }
    // PATCH
    const body = await readBody(req);
    if (mediaType(req) !== 'application/trickle-ice-sdpfrag') {
      return send(res, 415, { 'Accept-Patch': 'application/trickle-ice-sdpfrag' }, 'Content-Type must be application/trickle-ice-sdpfrag\n');
    }
    const ifMatch = req.headers['if-match'];
    if (ifMatch === undefined) return send(res, 428, {}, 'If-Match required\n');
    if (!ifMatchMatches(ifMatch, s.etag)) return send(res, 412, { ETag: s.etag }, 'If-Match does not match the ICE session\n');
    const frag = parseSdpFrag(body);
    const restart = (frag.ufrag && frag.ufrag !== s.remoteUfrag) || (frag.pwd && frag.pwd !== s.remotePwd);
    if (restart) {
      if (!frag.ufrag || !frag.pwd) return send(res, 400, {}, 'ICE restart needs both ice-ufrag and ice-pwd\n');
      try {
        const out = await restartIce(s, frag);
        log(`session ${s.id}: ICE restart (remote ufrag ${frag.ufrag}), new ETag ${s.etag}`);
        vlog(`restart answer sdpfrag:\n${out}`);
        return send(res, 200, { 'Content-Type': 'application/trickle-ice-sdpfrag', ETag: s.etag }, out);
      } catch (e) {
        log(`session ${s.id}: ICE restart failed: ${e.message}`);
        return send(res, 422, {}, `ICE restart failed: ${e.message}\n`);
      }
    }
    const r = await addTrickleCandidates(s, frag);
    log(`session ${s.id}: PATCH trickle: ${r.added} candidate(s) added, ${r.ignored} ignored` +
      `${frag.endOfCandidates ? ', end-of-candidates' : ''}`);
    return send(res, 204);
  }

  if (req.method === 'OPTIONS') return send(res, 204, { 'Accept-Post': 'application/sdp' });
  return send(res, 404, {}, 'not found\n');
}

// ---------------------------------------------------------------------------
// lifecycle

let httpServer = null;
let shuttingDown = false;

async function shutdown(code, why) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${why})`);
  setTimeout(() => {
    log(`shutdown took longer than ${SHUTDOWN_HARD_TIMEOUT_MS} ms, forcing exit`);
    process.exit(code || 1);
  }, SHUTDOWN_HARD_TIMEOUT_MS).unref();
  if (httpServer) {
    httpServer.close();
    httpServer.closeAllConnections?.();
  }
  await Promise.allSettled([...sessions.values()].map((s) => closeSession(s, 'server shutdown')));
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => shutdown(0, sig));
process.on('uncaughtException', (e) => { log(`uncaught exception: ${e.stack || e}`); shutdown(1, 'uncaught exception'); });
process.on('unhandledRejection', (e) => { log(`unhandled rejection: ${e?.stack || e}`); });
// stdout closed by the reader (EPIPE) is not a reason to die
process.stdout.on('error', () => {});

// If whoever started us goes away without stopping us, stop as well.
const initialPpid = process.ppid;
setInterval(() => {
  if (process.ppid !== initialPpid) shutdown(0, `parent process ${initialPpid} went away`);
}, 1000).unref();
if (OPTS.maxLifetime > 0) {
  setTimeout(() => shutdown(0, `--max-lifetime ${OPTS.maxLifetime} s reached`), OPTS.maxLifetime * 1000).unref();
}

function weriftVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/werift/package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

try {
  httpServer = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      log(`${req.method} ${req.url}: ${e.status || 500} ${e.message}`);
      send(res, e.status || 500, {}, `${e.message}\n`);
    });
  });
  httpServer.requestTimeout = 30_000;
  httpServer.headersTimeout = 10_000;
  httpServer.keepAliveTimeout = 5_000;
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(OPTS.port, HOST, resolve);
  });
  httpServer.on('error', (e) => log(`HTTP server error: ${e.message}`));
  const { port } = httpServer.address();
  const whipUrl = `http://${HOST}:${port}${OPTS.path}`;
  await new Promise((resolve) => process.stdout.write(`WHIP_URL=${whipUrl}\n`, resolve));
  log(`listening: ${whipUrl} (stats ${statsPath}, pli ${pliPath}; werift ${weriftVersion()})`);
} catch (e) {
  log(`FATAL ${e.message}`);
  await shutdown(1, 'startup failed');
}
