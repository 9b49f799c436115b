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
import dgram from 'node:dgram';
import {
  HOST, GATHER_TIMEOUT_MS, MAX_BODY_BYTES, configureLog, log, vlog,
  isLoopback, responder, sdpLines, splitSdp, joinSdp, parseCandidate,
  candidateIsUsable, attrValue, describeCodecs, filterAnswer, parseSdpFrag, randomId,
  waitGatheringComplete, disableDefaultStun, withTimeout, restartIce, addTrickleCandidates, mediaType,
  readBody, ifMatchMatches, weriftVersion, parseServerArgs, serveEndpoint, loadWerift, LOOPBACK_PC_CONFIG,
  fmtpParams, answerOffer, superviseConnection, splitOffer, keepOneCodec, requireIceAndDtls,
} from './werift-signalling.mjs';

const TAG = 'werift-whep-server';

const MEDIA_READY_TIMEOUT_MS = 15_000;  // gst-launch produces its first RTP packets
const CONNECT_TIMEOUT_MS = 30_000;      // session must reach "connected" within this
const DISCONNECTED_GRACE_MS = 15_000;   // "disconnected" longer than this -> close
const MAX_SESSIONS = 16;
const PC_CLOSE_TIMEOUT_MS = 2_000;
const SHUTDOWN_HARD_TIMEOUT_MS = 8_000;

// ---------------------------------------------------------------------------
// arguments

const OPTS = parseServerArgs(process.argv.slice(2), {
  tag: TAG,
  usageLine: '[--port N] [--video h264|vp8|none] [--audio opus|none] [--path /whep] [--max-lifetime SECONDS] [--verbose]',
  defaults: { video: 'h264', audio: 'opus', path: '/whep' },
  extra: {
    '--video': (opts, v) => {
      opts.video = v.toLowerCase();
      return ['h264', 'vp8', 'none'].includes(opts.video) ? '' : `bad --video ${v}`;
    },
    '--audio': (opts, v) => {
      opts.audio = v.toLowerCase();
      return ['opus', 'none'].includes(opts.audio) ? '' : `bad --audio ${v}`;
    },
  },
});
if (OPTS.video === 'none' && OPTS.audio === 'none') {
  process.stderr.write(`${TAG}: nothing to serve (--video none --audio none)\n`);
  process.exit(2);
}
configureLog(TAG, OPTS.verbose);
const SERVE = { video: OPTS.video === 'none' ? null : OPTS.video, audio: OPTS.audio === 'none' ? null : OPTS.audio };


const { RTCPeerConnection, MediaStream, MediaStreamTrack, useH264, useVP8, useVP9, useOPUS, usePCMU, useSdesMid } = await loadWerift();

// werift configuration: ICE on 127.0.0.1 only (werift-signalling.mjs), and the codecs.
const PC_CONFIG = {
  ...LOOPBACK_PC_CONFIG,
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
  const parts = splitOffer(sdp, bad);
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
    keepOneCodec(m, codec.pt, report);
  });
  // Session-level requirements werift (and WHEP) rely on.
  requireIceAndDtls(parts, bad);
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
    await answerOffer(s, pc, prepared);
  } catch (e) {
    await withTimeout(pc.close(), PC_CLOSE_TIMEOUT_MS, 'close').catch(() => {});
    throw e;
  }

  superviseConnection(s, pc, closeSession, { connectMs: CONNECT_TIMEOUT_MS, graceMs: DISCONNECTED_GRACE_MS });
  sessions.set(s.id, s);
  return s;
}

function killGstNow() {
  if (gst && gst.pid && gst.isRunning()) {
    try { process.kill(gst.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killGstNow);

// ---------------------------------------------------------------------------
// HTTP and lifecycle

serveEndpoint({
  opts: OPTS,
  urlVar: 'WHEP_URL',
  sessions,
  maxSessions: MAX_SESSIONS,
  createSession,
  closeSession,
  describeSession: (s) => s.report.media.filter((m) => m.serve)
    .map((m) => `${m.kind}=${m.codec.name}/pt${m.codec.pt}${m.codec.fmtp ? ` (${m.codec.fmtp})` : ''}`).join(', '),
  describeTrickle: (s) => {
    const remote = [...new Set(s.pc.iceTransports)].flatMap((t) => t.connection.remoteCandidates || [])
      .map((c) => `${c.host}:${c.port}/${c.type}`);
    return `; werift remote candidates now: ${remote.join(' ') || 'none'}`;
  },
  beforeListen: async () => {
    for (const kind of ['video', 'audio']) if (SERVE[kind]) await bindRtpSocket(kind);
    gst = startGst();
    const ready = Object.entries(rtpIn).map(([kind, e]) => e.firstPacket.then(() => log(`first ${kind} RTP packet received on ${HOST}:${e.port}`)));
    await withTimeout(Promise.all(ready), MEDIA_READY_TIMEOUT_MS, 'first RTP packets from gst-launch-1.0');
  },
  afterSessions: async () => {
    for (const e of Object.values(rtpIn)) { try { e.socket.close(); } catch { /* ignore */ } }
    await stopGst();
  },
  forcedExit: killGstNow,
  hardTimeoutMs: SHUTDOWN_HARD_TIMEOUT_MS,
  describeListening: () => `video ${OPTS.video}, audio ${OPTS.audio}`,
  onStartupFailure: () => { if (gst) log(`gst-launch-1.0 output tail:\n${gst.output().slice(-4000)}`); },
});
