// Signalling helpers shared by the werift WHEP and WHIP test servers: SDP and
// sdpfrag handling, loopback-only candidates, ICE restart and trickle on a werift
// RTCPeerConnection, HTTP helpers, the command line and the HTTP endpoint with its
// lifecycle (serveEndpoint). Each server calls configureLog() first.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const HOST = '127.0.0.1';
export const GATHER_TIMEOUT_MS = 5_000;  // werift ICE gathering for one answer
export const MAX_BODY_BYTES = 256 * 1024;

let logTag = 'werift';
let verbose = false;
export function configureLog(tag, isVerbose) {
  logTag = tag;
  verbose = !!isVerbose;
}
export function log(msg) {
  process.stderr.write(`[${logTag} ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}
export function vlog(msg) {
  if (verbose) log(msg);
}

export const isLoopback = (addr) => addr === HOST;

// Returns send(res, status, headers, body) answering with the given CORS headers.
export function responder(cors) {
  return function send(res, status, headers = {}, body = '') {
    if (res.headersSent) return;
    const h = { ...cors, 'Cache-Control': 'no-store', ...headers };
    if (body && !h['Content-Type']) h['Content-Type'] = 'text/plain; charset=utf-8';
    h['Content-Length'] = Buffer.byteLength(body);
    res.writeHead(status, h);
    res.end(body);
  };
}

export function sdpLines(sdp) {
  return sdp.split(/\r?\n/).filter((l) => l.length > 0);
}

// { session: [lines], media: [{ kind, lines }] }
export function splitSdp(sdp) {
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

export function joinSdp(parts) {
  return [...parts.session, ...parts.media.flatMap((m) => m.lines)].join('\r\n') + '\r\n';
}

// a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
export function parseCandidate(line) {
  const value = line.replace(/^a=/, '').replace(/^candidate:/, '');
  const f = value.split(/\s+/);
  if (f.length < 8 || f[6] !== 'typ') return null;
  return { transport: f[2].toLowerCase(), address: f[4], port: Number(f[5]), type: f[7] };
}

export function candidateIsUsable(line) {
  const c = parseCandidate(line);
  return !!c && c.transport === 'udp' && isLoopback(c.address) && c.port > 0 && c.port < 65536;
}

export const attrValue = (lines, name) => {
  const l = lines.find((x) => x.startsWith(`a=${name}:`));
  return l ? l.slice(name.length + 3).trim() : null;
};

export function describeCodecs(lines, fmts) {
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

// Keeps only 127.0.0.1 candidates in werift's answer.
export function filterAnswer(sdp) {
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
export function parseSdpFrag(body) {
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

export const randomId = (bytes) => crypto.randomBytes(bytes).toString('hex');

export function waitGatheringComplete(pc, ms) {
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
export function disableDefaultStun(pc) {
  const transports = pc.iceTransports;
  if (!transports.length) throw new Error('werift internals changed: no ICE transport before setLocalDescription');
  for (const t of transports) {
    const conn = t.connection;
    if (!conn || !('stunServer' in conn)) throw new Error('werift internals changed: ICE connection has no stunServer');
    conn.stunServer = undefined;
    conn.turnServer = undefined;
  }
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// ICE restart requested through PATCH (new ice-ufrag / ice-pwd): werift restarts ICE
// when a new remote offer carries new credentials, so the original (reduced) offer is
// re-applied with the new credentials and candidates, and the new local credentials
// and candidates of werift's answer are returned as an sdpfrag.
export async function restartIce(s, frag) {
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

export async function addTrickleCandidates(s, frag) {
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

export const mediaType = (req) => (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();

export function readBody(req) {
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
export function ifMatchMatches(header, etag) {
  const bare = etag.replace(/^"|"$/g, '');
  return header.split(',').map((v) => v.trim().replace(/^W\//, '').replace(/^"|"$/g, ''))
    .some((v) => v === '*' || v === bare);
}

export function weriftVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/werift/package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------
// werift itself

// The werift module; exits 1 when it is not installed.
export async function loadWerift() {
  try {
    return await import('werift');
  } catch (e) {
    log(`FATAL cannot load werift (run npm ci in ${HERE}): ${e.message}`);
    process.exit(1);
  }
}

// RTCPeerConnection configuration with ICE restricted to the loopback interface; the
// caller adds codecs and header extensions.
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
export const LOOPBACK_PC_CONFIG = {
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
};

// Answers the offer already set on pc: creates and sets the answer, waits for gathering
// and keeps the 127.0.0.1 candidates; records on s the remote ICE credentials, the answer,
// the offer's report and the candidate counts.
export async function answerOffer(s, pc, prepared) {
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
}

// Closes the session (closeSession(s, why)) when its connection fails or is closed, stays
// disconnected longer than graceMs, or is not connected within connectMs. onState sees
// every connection state. Returns the subscriptions.
export function superviseConnection(s, pc, closeSession, { connectMs, graceMs, onState = () => {} }) {
  const subs = [
    pc.connectionStateChange.subscribe((state) => {
      log(`session ${s.id}: connection ${state}`);
      onState(state);
      if (state === 'connected') {
        clearTimeout(s.connectTimer);
        clearTimeout(s.disconnectTimer);
      } else if (state === 'failed' || state === 'closed') {
        closeSession(s, `connection ${state}`);
      } else if (state === 'disconnected') {
        clearTimeout(s.disconnectTimer);
        s.disconnectTimer = setTimeout(() => closeSession(s, `disconnected for ${graceMs} ms`), graceMs);
      }
    }),
    pc.iceConnectionStateChange.subscribe((state) => vlog(`session ${s.id}: ice ${state}`)),
  ];
  s.connectTimer = setTimeout(() => {
    if (pc.connectionState !== 'connected') closeSession(s, `not connected within ${connectMs} ms`);
  }, connectMs);
  return subs;
}

// The offer split into session and media parts (splitSdp); throws bad(message) when it is
// not an SDP with at least one m= line.
export function splitOffer(sdp, bad) {
  const parts = splitSdp(sdp);
  if (!/^v=0$/.test(parts.session[0] || '')) throw bad('not an SDP (no v=0 line)');
  if (!parts.media.length) throw bad('SDP offer has no m= line');
  return parts;
}

// Reduces an m-line to one payload type (its rtpmap/fmtp/rtcp-fb lines stay, the others'
// go) and to usable candidates, counted in report.candidatesKept / candidatesDropped.
// dropSsrcGroups also removes a=ssrc-group lines (FID/FEC-FR of stripped RTX/FEC).
export function keepOneCodec(m, pt, report, { dropSsrcGroups = false } = {}) {
  m.lines[0] = [...m.lines[0].split(' ').slice(0, 3), pt].join(' ');
  m.lines = m.lines.filter((l) => {
    const linePt = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[ \s]/.exec(l)?.[1];
    if (linePt !== undefined && linePt !== '*' && linePt !== pt) return false;
    if (dropSsrcGroups && l.startsWith('a=ssrc-group:')) return false;
    if (l.startsWith('a=candidate:')) {
      const ok = candidateIsUsable(l);
      report[ok ? 'candidatesKept' : 'candidatesDropped']++;
      return ok;
    }
    return true;
  });
}

// Throws bad(message) unless the offer carries ICE credentials and a DTLS fingerprint.
export function requireIceAndDtls(parts, bad) {
  const all = [...parts.session, ...parts.media.flatMap((m) => m.lines)];
  if (!all.some((l) => l.startsWith('a=ice-ufrag:')) || !all.some((l) => l.startsWith('a=ice-pwd:'))) {
    throw bad('SDP offer has no ice-ufrag/ice-pwd');
  }
  if (!all.some((l) => l.startsWith('a=fingerprint:'))) throw bad('SDP offer has no DTLS fingerprint');
}

// Parameters of an a=fmtp value, names and values in lower case.
export const fmtpParams = (fmtp) => Object.fromEntries(fmtp.split(';').map((kv) => kv.trim().split('='))
  .filter((kv) => kv[0]).map(([k, v]) => [k.toLowerCase(), (v ?? '').trim().toLowerCase()]));

// ---------------------------------------------------------------------------
// command line and HTTP endpoint shared by the two servers

// Parses [--port N] [--path P] [--max-lifetime SECONDS] [--verbose] plus the server's own
// options: `extra` maps an option to (opts, value) => void, `defaults` gives the initial
// opts (path included). Bad arguments print usage and exit 2.
export function parseServerArgs(argv, { tag, usageLine, defaults, extra = {} }) {
  const usage = (msg) => {
    if (msg) process.stderr.write(`${tag}: ${msg}\n`);
    process.stderr.write(`usage: node ${path.basename(process.argv[1])} ${usageLine}\n`);
    process.exit(2);
  };
  const opts = { port: 0, maxLifetime: 0, verbose: false, ...defaults };
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
    if (arg === '--port') {
      const v = next();
      if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`bad --port ${v}`);
      opts.port = Number(v);
    } else if (arg === '--path') {
      opts.path = next();
    } else if (arg === '--max-lifetime') {
      const v = next();
      if (!/^\d+(\.\d+)?$/.test(v)) usage(`bad --max-lifetime ${v}`);
      opts.maxLifetime = Number(v);
    } else if (arg === '--verbose' || arg === '-v') {
      opts.verbose = true;
    } else if (arg in extra) {
      const problem = extra[arg](opts, next());
      if (problem) usage(problem);
    } else {
      usage(arg === '--help' || arg === '-h' ? '' : `unknown argument ${arg}`);
    }
  }
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(opts.path)) usage(`bad --path ${opts.path}`);
  opts.path = opts.path.replace(/\/+$/, '') || defaults.path;
  return opts;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PATCH, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, If-Match, Authorization',
  'Access-Control-Expose-Headers': 'Location, ETag, Accept-Patch, Accept-Post, Link',
  'Access-Control-Max-Age': '600',
};
export const send = responder(CORS);

// Runs the HTTP endpoint of a werift server until SIGINT/SIGTERM/SIGHUP, --max-lifetime,
// or the parent process going away:
//   POST <path>: offer -> createSession(offer) -> 201 + answer, Location, ETag (errors
//     carry .status: 400, 422, ...); 415 other Content-Types, 503 beyond maxSessions;
//   PATCH <path>/sessions/<id>: trickle-ice-sdpfrag with If-Match (428, 412, 415): trickle
//     -> 204, ICE restart -> 200 + sdpfrag + new ETag (422 when it fails);
//   DELETE <path>/sessions/<id> -> closeSession, 200 (404 unknown);
//   OPTIONS -> 204 with Accept-Post and CORS; extraRoute(req, res, pathname) first gets
//   every other path and returns true when it answered.
// beforeListen() runs first; once listening, `<urlVar>=<url>` is the first stdout line.
// On shutdown the sessions are closed, then afterSessions() runs; forcedExit() runs when
// that takes longer than hardTimeoutMs.
export async function serveEndpoint({
  opts, urlVar, sessions, maxSessions, createSession, closeSession, describeSession,
  describeTrickle = () => '', extraRoute = async () => false, beforeListen = async () => {},
  afterSessions = async () => {}, forcedExit = () => {}, hardTimeoutMs, describeListening, onStartupFailure = () => {},
}) {
  const sessionPrefix = `${opts.path}/sessions/`;

  async function handle(req, res) {
    const p = new URL(req.url, `http://${HOST}`).pathname;
    vlog(`${req.method} ${p} (${req.headers['content-type'] || '-'})`);

    if (p === opts.path) {
      if (req.method === 'OPTIONS') return send(res, 204, { 'Accept-Post': 'application/sdp', Allow: 'POST, OPTIONS' });
      if (req.method !== 'POST') return send(res, 405, { Allow: 'POST, OPTIONS' }, 'method not allowed\n');
      if (mediaType(req) !== 'application/sdp') {
        await readBody(req).catch(() => '');
        return send(res, 415, { 'Accept-Post': 'application/sdp' }, 'Content-Type must be application/sdp\n');
      }
      const offer = await readBody(req);
      if (sessions.size >= maxSessions) return send(res, 503, { 'Retry-After': '2' }, 'too many sessions\n');
      let s;
      try {
        s = await createSession(offer);
      } catch (e) {
        const status = e.status || 500; // 400 unparsable, 422 unsupported (set by createSession)
        log(`POST ${p}: ${status} ${e.message}`);
        return send(res, status, {}, `${e.message}\n`);
      }
      log(`session ${s.id}: created; ${describeSession(s)}; offer candidates kept ${s.report.candidatesKept}, ` +
        `dropped ${s.report.candidatesDropped}; answer candidates ${s.answerCandidates.kept} (dropped ${s.answerCandidates.dropped})`);
      vlog(`offer (reduced):\n${s.offer}answer:\n${s.answer}`);
      return send(res, 201, {
        'Content-Type': 'application/sdp',
        Location: `${sessionPrefix}${s.id}`,
        ETag: s.etag,
        'Accept-Patch': 'application/trickle-ice-sdpfrag',
      }, s.answer);
    }

    if (await extraRoute(req, res, p)) return undefined;

    if (p.startsWith(sessionPrefix)) {
      const s = sessions.get(p.slice(sessionPrefix.length));
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
        `${frag.endOfCandidates ? ', end-of-candidates' : ''}${describeTrickle(s)}`);
      return send(res, 204);
    }

    if (req.method === 'OPTIONS') return send(res, 204, { 'Accept-Post': 'application/sdp' });
    return send(res, 404, {}, 'not found\n');
  }

  let httpServer = null;
  let shuttingDown = false;
  async function shutdown(code, why) {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`shutting down (${why})`);
    setTimeout(() => {
      log(`shutdown took longer than ${hardTimeoutMs} ms, forcing exit`);
      forcedExit();
      process.exit(code || 1);
    }, hardTimeoutMs).unref();
    if (httpServer) {
      httpServer.close();
      httpServer.closeAllConnections?.();
    }
    await Promise.allSettled([...sessions.values()].map((s) => closeSession(s, 'server shutdown')));
    await afterSessions();
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
  if (opts.maxLifetime > 0) {
    setTimeout(() => shutdown(0, `--max-lifetime ${opts.maxLifetime} s reached`), opts.maxLifetime * 1000).unref();
  }

  try {
    await beforeListen();
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
      httpServer.listen(opts.port, HOST, resolve);
    });
    httpServer.on('error', (e) => log(`HTTP server error: ${e.message}`));
    const url = `http://${HOST}:${httpServer.address().port}${opts.path}`;
    await new Promise((resolve) => process.stdout.write(`${urlVar}=${url}\n`, resolve));
    log(`listening: ${url} (${describeListening()}, werift ${weriftVersion()})`);
  } catch (e) {
    log(`FATAL ${e.message}`);
    onStartupFailure();
    await shutdown(1, 'startup failed');
  }
}
