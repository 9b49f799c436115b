#!/usr/bin/env node
// Independent WHEP server (draft-ietf-wish-whep-03) built on werift, a pure
// TypeScript WebRTC stack nobody on this project wrote. It lets the WHEP player
// element (whepsrc) be tested against a foreign peer.
//
// Usage:
//   node werift-whep-server.mjs [--port N] [--video h264|vp8|none]
//                               [--audio opus|none] [--path /whep]
//                               [--max-lifetime SECONDS] [--verbose]
//
//   --port 0 (default) picks a free port. Once the HTTP server listens and the
//   media source produces RTP, the first line on stdout is
//       WHEP_URL=http://127.0.0.1:<port>/whep
//   Nothing else is written to stdout; logs go to stderr. The server runs until
//   SIGINT/SIGTERM (or --max-lifetime, or its parent process goes away) and then
//   stops its gst-launch-1.0 child and exits 0.
//
// HTTP API (plain HTTP, 127.0.0.1 only):
//   POST    <path>                 application/sdp recvonly offer -> 201 + answer
//                                  (all ICE candidates, 127.0.0.1 only), Location
//                                  <path>/sessions/<id> (relative), ETag
//   PATCH   <path>/sessions/<id>   application/trickle-ice-sdpfrag, If-Match required
//                                  (428 missing, 412 stale); trickle -> 204; ICE
//                                  restart (new ice-ufrag/ice-pwd, If-Match "*") ->
//                                  200 + sdpfrag + new ETag
//   DELETE  <path>/sessions/<id>   -> 200, closes the peer connection (404 unknown)
//   OPTIONS any                    -> 204 with CORS headers
//
// Media: werift does not encode, so one gst-launch-1.0 child (per server, not per
// session) encodes test patterns (videotestsrc/audiotestsrc) to RTP and sends it to
// UDP sockets of this process on 127.0.0.1; every RTP packet is forwarded to each
// connected session's track (werift rewrites SSRC, payload type, sequence numbers).
//
// Environment: DEBUG=werift* for werift's own logs; GST_DEBUG for gst-launch-1.0.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HOST, GATHER_TIMEOUT_MS, MAX_BODY_BYTES, configureLog, log, vlog,
  isLoopback, responder, sdpLines, splitSdp, joinSdp, parseCandidate,
  candidateIsUsable, attrValue, describeCodecs, filterAnswer, parseSdpFrag, randomId,
  waitGatheringComplete, disableDefaultStun, withTimeout, restartIce, addTrickleCandidates, mediaType,
  readBody, ifMatchMatches, weriftVersion,
} from './werift-signalling.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TAG = 'werift-whep-server';

const MEDIA_READY_TIMEOUT_MS = 15_000;  // gst-launch produces its first RTP packets
const CONNECT_TIMEOUT_MS = 30_000;      // session must reach "connected" within this
const DISCONNECTED_GRACE_MS = 15_000;   // "disconnected" longer than this -> close
const MAX_SESSIONS = 16;
const PC_CLOSE_TIMEOUT_MS = 2_000;
const SHUTDOWN_HARD_TIMEOUT_MS = 8_000;

// ---------------------------------------------------------------------------
// arguments

function usage(msg) {
  if (msg) process.stderr.write(`${TAG}: ${msg}\n`);
  process.stderr.write(
    `usage: node ${path.basename(process.argv[1])} [--port N] [--video h264|vp8|none] ` +
    '[--audio opus|none] [--path /whep] [--max-lifetime SECONDS] [--verbose]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, video: 'h264', audio: 'opus', path: '/whep', maxLifetime: 0, verbose: false };
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
      case '--video': opts.video = next().toLowerCase(); break;
      case '--audio': opts.audio = next().toLowerCase(); break;
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
  if (!['h264', 'vp8', 'none'].includes(opts.video)) usage(`bad --video ${opts.video}`);
  if (!['opus', 'none'].includes(opts.audio)) usage(`bad --audio ${opts.audio}`);
  if (opts.video === 'none' && opts.audio === 'none') usage('nothing to serve (--video none --audio none)');
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(opts.path)) usage(`bad --path ${opts.path}`);
  opts.path = opts.path.replace(/\/+$/, '') || '/whep';
  return opts;
}

const OPTS = parseArgs(process.argv.slice(2));
configureLog(TAG, OPTS.verbose);
const SERVE = { video: OPTS.video === 'none' ? null : OPTS.video, audio: OPTS.audio === 'none' ? null : OPTS.audio };


let werift;
try {
  werift = await import('werift');
} catch (e) {
  log(`FATAL cannot load werift (run npm ci in ${HERE}): ${e.message}`);
  process.exit(1);
}
const { RTCPeerConnection, MediaStream, MediaStreamTrack, useH264, useVP8, useVP9, useOPUS, usePCMU, useSdesMid } = werift;

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
    video: [useH264(), useVP8(), useVP9()],
    audio: [useOPUS(), usePCMU()],
  },
  headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
};

// ---------------------------------------------------------------------------
// SDP helpers








const fmtpParams = (fmtp) => Object.fromEntries(fmtp.split(';').map((kv) => kv.trim().split('='))
  .filter((kv) => kv[0]).map(([k, v]) => [k.toLowerCase(), (v ?? '').trim().toLowerCase()]));

// What the RTP source sends can be decoded by: H.264 packetization-mode=1 (FU-A /
// STAP-A), any profile that contains constrained baseline, preferring 42e0xx.
function h264Rank(c) {
  const p = fmtpParams(c.fmtp);
  if (p['packetization-mode'] !== '1') return -1;
  const plid = p['profile-level-id'] || '42001f';
  const idc = plid.slice(0, 2);
  const iop = parseInt(plid.slice(2, 4), 16) || 0;
  if (idc === '42' && (iop & 0x40)) return 0; // constrained baseline
  if (idc === '42') return 1;                 // baseline
  if (idc === '4d') return 2;                 // main
  if (idc === '64') return 3;                 // high
  return 4;
}

function pickCodec(kind, codecs, want) {
  const byName = (n) => codecs.filter((c) => c.name === n);
  if (want === 'h264') {
    return byName('h264').map((c) => [h264Rank(c), c]).filter(([r]) => r >= 0)
      .sort((a, b) => a[0] - b[0])[0]?.[1] ?? null;
  }
  if (want === 'vp8') return byName('vp8')[0] ?? null;
  if (want === 'opus') return codecs.find((c) => c.name === 'opus' && c.clock === 48000) ?? null;
  // kind not served: keep any codec werift knows, the m-line is answered inactive
  const known = kind === 'video' ? ['vp8', 'h264', 'vp9'] : ['opus', 'pcmu'];
  return codecs.find((c) => known.includes(c.name) && (c.name !== 'h264' || h264Rank(c) >= 0)) ?? null;
}

// Reduces the player's offer to what werift should answer: one codec per audio /
// video m-line (werift would otherwise accept every payload type of a MIME type,
// e.g. H.264 packetization-mode=0 or RTX) and only 127.0.0.1 UDP candidates.
// Throws an Error with .status = 400 for unusable offers.
function prepareOffer(sdp) {
  const bad = (msg) => Object.assign(new Error(msg), { status: 400 });
  const parts = splitSdp(sdp);
  if (!/^v=0$/.test(parts.session[0] || '')) throw bad('not an SDP (no v=0 line)');
  if (!parts.media.length) throw bad('SDP offer has no m= line');
  const report = { media: [], candidatesKept: 0, candidatesDropped: 0 };
  const servedKinds = new Set();
  parts.media.forEach((m, index) => {
    const mline = m.lines[0].split(' ');
    if (mline.length < 4) throw bad(`malformed m= line: ${m.lines[0]}`);
    const mid = attrValue(m.lines, 'mid');
    const entry = { index, kind: m.kind, mid, codec: null, serve: false };
    report.media.push(entry);
    if (m.kind !== 'audio' && m.kind !== 'video') return;
    if (mline[1] === '0') return; // rejected by the offerer
    const dirs = ['sendrecv', 'recvonly', 'sendonly', 'inactive'];
    const dir = m.lines.find((l) => dirs.includes(l.slice(2))) ?? 'a=sendrecv';
    const want = SERVE[m.kind];
    const wantHere = want && !servedKinds.has(m.kind) && ['a=recvonly', 'a=sendrecv'].includes(dir);
    const codecs = describeCodecs(m.lines, mline.slice(3));
    const codec = pickCodec(m.kind, codecs, wantHere ? want : null);
    if (!codec) {
      const offered = codecs.map((c) => `${c.pt} ${c.name} ${c.fmtp}`.trim()).join(', ');
      throw bad(`no usable ${wantHere ? want : m.kind} codec in the ${m.kind} m-line (offered: ${offered})`);
    }
    if (wantHere) servedKinds.add(m.kind);
    Object.assign(entry, { codec, serve: !!wantHere });
    m.lines[0] = [...mline.slice(0, 3), codec.pt].join(' ');
    m.lines = m.lines.filter((l) => {
      const pt = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[ \s]/.exec(l)?.[1];
      if (pt !== undefined && pt !== '*' && pt !== codec.pt) return false;
      if (l.startsWith('a=candidate:')) {
        const ok = candidateIsUsable(l);
        report[ok ? 'candidatesKept' : 'candidatesDropped']++;
        return ok;
      }
      return true;
    });
  });
  // Session-level requirements werift (and WHEP) rely on.
  const all = [...parts.session, ...parts.media.flatMap((m) => m.lines)];
  if (!all.some((l) => l.startsWith('a=ice-ufrag:')) || !all.some((l) => l.startsWith('a=ice-pwd:'))) {
    throw bad('SDP offer has no ice-ufrag/ice-pwd');
  }
  if (!all.some((l) => l.startsWith('a=fingerprint:'))) throw bad('SDP offer has no DTLS fingerprint');
  if (!report.media.some((e) => e.serve)) {
    throw bad(`SDP offer has no recvonly/sendrecv m-line for what this server sends (${
      Object.entries(SERVE).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }
  return { sdp: joinSdp(parts), report, parts };
}



// ---------------------------------------------------------------------------
// RTP source: one gst-launch-1.0 per server

let gst = null;
const rtpIn = {}; // kind -> { socket, port, packets, firstPacket: Promise }

function bindRtpSocket(kind) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    let firstResolve;
    const entry = { socket, port: 0, packets: 0, firstPacket: new Promise((r) => { firstResolve = r; }) };
    socket.on('error', (e) => {
      if (!entry.port) reject(e);
      else log(`${kind} RTP socket error: ${e.message}`);
    });
    socket.on('message', (msg, rinfo) => {
      if (!isLoopback(rinfo.address) || msg.length < 12 || (msg[0] >> 6) !== 2) return;
      if (entry.packets++ === 0) firstResolve();
      forwardRtp(kind, msg);
    });
    socket.bind(0, HOST, () => {
      entry.port = socket.address().port;
      rtpIn[kind] = entry;
      resolve(entry);
    });
  });
}

function gstArgs() {
  const a = ['-q', '-e'];
  const udp = (port) => ['udpsink', `host=${HOST}`, `port=${port}`, `bind-address=${HOST}`, 'sync=false', 'async=false'];
  if (SERVE.video) {
    a.push('videotestsrc', 'is-live=true', 'pattern=smpte', '!',
      'video/x-raw,format=I420,width=320,height=240,framerate=30/1', '!');
    if (SERVE.video === 'h264') {
      a.push('x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=30', 'bframes=0', 'bitrate=600', '!',
        'video/x-h264,profile=constrained-baseline,stream-format=byte-stream', '!',
        'rtph264pay', 'pt=96', 'config-interval=-1', 'aggregate-mode=zero-latency', 'mtu=1200', '!');
    } else {
      a.push('vp8enc', 'deadline=1', 'keyframe-max-dist=30', 'target-bitrate=600000', 'error-resilient=partitions', '!',
        'rtpvp8pay', 'pt=96', 'mtu=1200', 'picture-id-mode=15-bit', '!');
    }
    a.push(...udp(rtpIn.video.port));
  }
  if (SERVE.audio) {
    a.push('audiotestsrc', 'is-live=true', 'wave=sine', 'freq=440', 'volume=0.3', '!',
      'audioconvert', '!', 'audioresample', '!', 'audio/x-raw,rate=48000,channels=2', '!',
      'opusenc', 'bitrate=64000', 'frame-size=20', '!', 'rtpopuspay', 'pt=111', 'mtu=1200', '!', ...udp(rtpIn.audio.port));
  }
  return a;
}

function startGst() {
  const args = gstArgs();
  // setpriv --pdeathsig: the kernel kills gst-launch-1.0 should this process die
  // without running its handlers (e.g. SIGKILL). Same PID (setpriv execs).
  const havePdeath = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  const [cmd, cargs] = havePdeath
    ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'gst-launch-1.0', ...args]]
    : ['gst-launch-1.0', args];
  log(`starting: gst-launch-1.0 ${args.join(' ')}`);
  const child = spawn(cmd, cargs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  let tailLen = 0;
  const keep = (chunk) => {
    tail.push(chunk);
    tailLen += chunk.length;
    while (tailLen > 64 * 1024 && tail.length > 1) tailLen -= tail.shift().length;
    if (OPTS.verbose) process.stderr.write(chunk);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.output = () => Buffer.concat(tail).toString('utf8');
  child.isRunning = () => child.exitCode === null && child.signalCode === null;
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  child.exited.then(({ code, signal }) => {
    if (!shuttingDown) {
      log(`gst-launch-1.0 (pid ${child.pid}) exited unexpectedly (${signal ?? `exit ${code}`}); output tail:\n${child.output().slice(-4000)}`);
      shutdown(1, 'media source died');
    }
  });
  log(`gst-launch-1.0 pid ${child.pid}${havePdeath ? ' (pdeathsig KILL)' : ''}`);
  return child;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopGst() {
  const child = gst;
  if (!child || !child.pid || !child.isRunning()) return;
  for (const [sig, ms] of [['SIGINT', 1500], ['SIGTERM', 1500], ['SIGKILL', 1500]]) {
    try { process.kill(child.pid, sig); } catch { return; }
    const done = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
    if (done) {
      log(`gst-launch-1.0 (pid ${child.pid}) stopped by ${sig}`);
      return;
    }
  }
  log(`gst-launch-1.0 (pid ${child.pid}) did not exit after SIGKILL`);
}

// ---------------------------------------------------------------------------
// sessions

const sessions = new Map(); // id -> session

function forwardRtp(kind, buf) {
  for (const s of sessions.values()) {
    const track = s.tracks[kind];
    if (!track || s.pc.connectionState !== 'connected') continue;
    try {
      track.writeRtp(buf); // parsed per session: werift mutates the header while sending
      s.forwarded[kind]++;
    } catch (e) {
      if (!s.writeErrorLogged) {
        s.writeErrorLogged = true;
        log(`session ${s.id}: writeRtp(${kind}) failed: ${e.message}`);
      }
    }
  }
}





async function closeSession(s, why) {
  if (s.closed) return;
  s.closed = true;
  sessions.delete(s.id);
  clearTimeout(s.connectTimer);
  clearTimeout(s.disconnectTimer);
  log(`session ${s.id}: closing (${why}); forwarded video=${s.forwarded.video} audio=${s.forwarded.audio} packets`);
  for (const t of Object.values(s.tracks)) { try { t.stop(); } catch { /* ignore */ } }
  await withTimeout(s.pc.close(), PC_CLOSE_TIMEOUT_MS, 'RTCPeerConnection.close').catch((e) => log(`session ${s.id}: ${e.message}`));
}

async function createSession(offerSdp) {
  const prepared = prepareOffer(offerSdp);
  const pc = new RTCPeerConnection(PC_CONFIG);
  const s = {
    id: randomId(12), etag: `"${randomId(8)}"`, pc, tracks: {}, forwarded: { video: 0, audio: 0 },
    offer: prepared.sdp, remoteUfrag: null, remotePwd: null, closed: false, connectTimer: null, disconnectTimer: null,
  };
  try {
    const stream = new MediaStream();
    stream.id = `werift-whep-${s.id.slice(0, 8)}`;
    // Transceivers added before setRemoteDescription are matched to the offer's
    // first m-line of the same kind.
    for (const kind of ['video', 'audio']) {
      if (!prepared.report.media.some((e) => e.serve && e.kind === kind)) continue;
      const track = new MediaStreamTrack({ kind });
      stream.addTrack(track);
      pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      s.tracks[kind] = track;
    }
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: prepared.sdp });
    } catch (e) {
      throw Object.assign(new Error(`werift rejected the offer: ${e.message}`), { status: 400 });
    }
    disableDefaultStun(pc);
    // m-lines we do not serve (a second video, or a kind not configured) -> inactive
    for (const t of pc.getTransceivers()) {
      if (!Object.values(s.tracks).includes(t.sender.track) && t.direction !== 'inactive') t.setDirection('inactive');
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

  pc.connectionStateChange.subscribe((state) => {
    log(`session ${s.id}: connection ${state}`);
    if (state === 'connected') {
      clearTimeout(s.connectTimer);
      clearTimeout(s.disconnectTimer);
    } else if (state === 'failed' || state === 'closed') {
      closeSession(s, `connection ${state}`);
    } else if (state === 'disconnected') {
      clearTimeout(s.disconnectTimer);
      s.disconnectTimer = setTimeout(() => closeSession(s, `disconnected for ${DISCONNECTED_GRACE_MS} ms`), DISCONNECTED_GRACE_MS);
    }
  });
  pc.iceConnectionStateChange.subscribe((state) => vlog(`session ${s.id}: ice ${state}`));
  s.connectTimer = setTimeout(() => {
    if (pc.connectionState !== 'connected') closeSession(s, `not connected within ${CONNECT_TIMEOUT_MS} ms`);
  }, CONNECT_TIMEOUT_MS);
  sessions.set(s.id, s);
  return s;
}



// ---------------------------------------------------------------------------
// HTTP

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, PATCH, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, If-Match, Authorization',
  'Access-Control-Expose-Headers': 'Location, ETag, Accept-Patch, Accept-Post, Link',
  'Access-Control-Max-Age': '600',
};
const send = responder(CORS);





const sessionPrefix = `${OPTS.path}/sessions/`;

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
      const status = e.status || 500; // 400 (set above) for offers werift cannot use
      log(`POST ${p}: ${status} ${e.message}`);
      return send(res, status, {}, `${e.message}\n`);
    }
    const served = s.report.media.filter((m) => m.serve).map((m) => `${m.kind}=${m.codec.name}/pt${m.codec.pt}${m.codec.fmtp ? ` (${m.codec.fmtp})` : ''}`);
    log(`session ${s.id}: created; ${served.join(', ')}; offer candidates kept ${s.report.candidatesKept}, ` +
      `dropped ${s.report.candidatesDropped}; answer candidates ${s.answerCandidates.kept} (dropped ${s.answerCandidates.dropped})`);
    vlog(`offer (reduced):\n${s.offer}answer:\n${s.answer}`);
    return send(res, 201, {
      'Content-Type': 'application/sdp',
      Location: `${sessionPrefix}${s.id}`,
      ETag: s.etag,
      'Accept-Patch': 'application/trickle-ice-sdpfrag',
    }, s.answer);
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
    const remote = [...new Set(s.pc.iceTransports)].flatMap((t) => t.connection.remoteCandidates || [])
      .map((c) => `${c.host}:${c.port}/${c.type}`);
    log(`session ${s.id}: PATCH trickle: ${r.added} candidate(s) added, ${r.ignored} ignored` +
      `${frag.endOfCandidates ? ', end-of-candidates' : ''}; werift remote candidates now: ${remote.join(' ') || 'none'}`);
    return send(res, 204);
  }

  if (req.method === 'OPTIONS') return send(res, 204);
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
    killGstNow();
    process.exit(code || 1);
  }, SHUTDOWN_HARD_TIMEOUT_MS);
  if (httpServer) {
    httpServer.close();
    httpServer.closeAllConnections?.();
  }
  await Promise.allSettled([...sessions.values()].map((s) => closeSession(s, 'server shutdown')));
  for (const e of Object.values(rtpIn)) { try { e.socket.close(); } catch { /* ignore */ } }
  await stopGst();
  process.exit(code);
}

function killGstNow() {
  if (gst && gst.pid && gst.isRunning()) {
    try { process.kill(gst.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

process.on('exit', killGstNow);
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

try {
  for (const kind of ['video', 'audio']) if (SERVE[kind]) await bindRtpSocket(kind);
  gst = startGst();
  const ready = Object.entries(rtpIn).map(([kind, e]) => e.firstPacket.then(() => log(`first ${kind} RTP packet received on ${HOST}:${e.port}`)));
  await withTimeout(Promise.all(ready), MEDIA_READY_TIMEOUT_MS, 'first RTP packets from gst-launch-1.0');

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
  const whepUrl = `http://${HOST}:${port}${OPTS.path}`;
  await new Promise((resolve) => process.stdout.write(`WHEP_URL=${whepUrl}\n`, resolve));
  log(`listening: ${whepUrl} (video ${OPTS.video}, audio ${OPTS.audio}, werift ${weriftVersion()})`);
} catch (e) {
  log(`FATAL ${e.message}`);
  if (gst) log(`gst-launch-1.0 output tail:\n${gst.output().slice(-4000)}`);
  await shutdown(1, 'startup failed');
}

