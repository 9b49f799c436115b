// Signalling helpers shared by the werift WHEP and WHIP test servers: SDP and
// sdpfrag handling, loopback-only candidates, ICE restart and trickle on a werift
// RTCPeerConnection, and small HTTP helpers. Each server calls configureLog() first.

import crypto from 'node:crypto';
import fs from 'node:fs';
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
