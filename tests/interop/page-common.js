// Helpers every Chromium interop page uses (logging, ICE gathering, loopback-only SDP),
// injected into a test page's <script>. It must hold no backtick: it is pasted into a template.

'use strict';

function plog(...args) {
  const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  console.log(line);
  document.getElementById('log').textContent += line + '\n';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitIceGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { cleanup(); resolve(false); }, timeoutMs);
    function onChange() {
      if (pc.iceGatheringState === 'complete') { cleanup(); resolve(true); }
    }
    function onCandidate(ev) { if (!ev.candidate) { cleanup(); resolve(true); } }
    function cleanup() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      pc.removeEventListener('icecandidate', onCandidate);
    }
    pc.addEventListener('icegatheringstatechange', onChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

// Keep only a=candidate lines whose connection address is 127.0.0.1.
function keepLoopbackCandidates(sdp) {
  const kept = [], dropped = [];
  const lines = sdp.split(/\r\n/).filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    const addr = line.split(' ')[4];
    (addr === '127.0.0.1' ? kept : dropped).push(line);
    return addr === '127.0.0.1';
  });
  return { sdp: lines.join('\r\n'), kept, dropped };
}

// The selected candidate pair of a transport stats entry, with its addresses
// ("127.0.0.1:port/udp host"); null when there is none yet.
function selectedPair(byId, transport) {
  const p = byId.get(transport.selectedCandidatePairId);
  if (!p) return null;
  const where = (c) => (c ? c.address + ':' + c.port + '/' + c.protocol + ' ' + c.candidateType : null);
  return {
    state: p.state, dtlsState: transport.dtlsState, dtlsRole: transport.dtlsRole, srtpCipher: transport.srtpCipher,
    bytesSent: p.bytesSent, bytesReceived: p.bytesReceived,
    packetsSent: p.packetsSent, packetsReceived: p.packetsReceived,
    transportBytesReceived: transport.bytesReceived,
    local: where(byId.get(p.localCandidateId)), remote: where(byId.get(p.remoteCandidateId)),
  };
}

// POSTs an SDP offer, again while the stream is not up yet (409 / 503, as long as
// Retry-After says, between 200 ms and maxWaitMs); every attempt is logged in res.posts.
// Returns the last response.
async function postOfferRetrying(endpoint, sdp, maxTries, res, maxWaitMs) {
  let resp = null;
  for (let attempt = 1; attempt <= maxTries; attempt++) {
    resp = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: sdp,
      signal: AbortSignal.timeout(5000),
    });
    const retryAfter = resp.headers.get('Retry-After');
    res.posts.push({ attempt, status: resp.status, retryAfter });
    plog('[post] attempt', attempt, 'status', resp.status, 'Retry-After', retryAfter);
    // The last response goes back unread: the caller reports its status and body.
    if ((resp.status !== 409 && resp.status !== 503) || attempt === maxTries) break;
    await resp.text().catch(() => '');
    let waitMs = maxWaitMs / 3;
    const secs = Number.parseFloat(retryAfter);
    if (Number.isFinite(secs)) waitMs = Math.min(Math.max(secs * 1000, 200), maxWaitMs);
    await sleep(waitMs);
  }
  return resp;
}
