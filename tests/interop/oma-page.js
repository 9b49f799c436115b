// The OMA RESTful Network API for WebRTC Signaling pages of the Chromium interop tests: plain
// RTCPeerConnection and fetch, no trickle ICE (offers are sent once gathering is complete and
// carry their candidates); injected into a test page's <script>. It must hold no backtick: it
// is pasted into a template. Needs page-common.js, whep-player-page.js (collectStats,
// sampleVideo) and whip-publisher-page.js (outboundStats).

// One request of the API from the page (cross-origin: JSON bodies are preflighted). Never
// throws: { status, location, allow, contentType, body, json, ms, error }.
window.omaFetch = async function omaFetch(method, url, body) {
  const out = { method, url, status: null, location: null, allow: null, contentType: null,
    body: null, json: null, ms: null, error: null };
  const init = { method, signal: AbortSignal.timeout(5000) };
  if (body !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const t0 = performance.now();
  try {
    const r = await fetch(url, init);
    out.status = r.status;
    out.location = r.headers.get('Location');
    out.allow = r.headers.get('Allow');
    out.contentType = r.headers.get('Content-Type');
    out.body = await r.text();
    out.ms = Math.round(performance.now() - t0);
    try { out.json = out.body ? JSON.parse(out.body) : null; } catch (e) { /* not JSON */ }
  } catch (e) {
    out.error = String(e);
  }
  plog('[oma]', method, url, '->', out.status, out.error || '');
  return out;
};

// The ice-ufrag lines of an SDP (session or media level), distinct, in order.
function iceUfrags(sdp) {
  const seen = [];
  (sdp || '').split(/\r\n/).forEach((line) => {
    if (line.startsWith('a=ice-ufrag:') && !seen.includes(line.slice(12))) seen.push(line.slice(12));
  });
  return seen;
}

function candidateLines(sdp) {
  return (sdp || '').split(/\r\n/).filter((line) => line.startsWith('a=candidate:'));
}

// Sets the local offer and waits for the gathering it starts to complete (listening before
// setLocalDescription: after an ICE restart the state may still read 'complete' from the
// last round); resolves to the offer with loopback candidates only.
async function offerWhenGathered(pc, options, timeoutMs) {
  const done = new Promise((resolve) => {
    const timer = setTimeout(() => { cleanup(); resolve(false); }, timeoutMs);
    function onChange() { if (pc.iceGatheringState === 'complete') { cleanup(); resolve(true); } }
    function onCandidate(ev) { if (!ev.candidate) { cleanup(); resolve(true); } }
    function cleanup() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      pc.removeEventListener('icecandidate', onCandidate);
    }
    pc.addEventListener('icegatheringstatechange', onChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
  const offer = await pc.createOffer(options);
  await pc.setLocalDescription(offer);
  const gathered = await done;
  const f = keepLoopbackCandidates(pc.localDescription.sdp);
  plog('[oma offer] gathering complete:', gathered, 'candidates kept:', f.kept.length, 'dropped:', f.dropped.length);
  return { gathered, sdp: f.sdp, kept: f.kept, dropped: f.dropped };
}

function sessionBody(participant, sdp, correlator) {
  return { wrtcsSession: { tParticipantAddress: participant, offer: { sdp }, clientCorrelator: correlator } };
}

// POSTs a session and applies the answer of the 201; res gets the request's outcome.
async function postSession(pc, cfg, sdp, res) {
  const post = await window.omaFetch('POST', cfg.sessions, sessionBody(cfg.participant, sdp, cfg.correlator));
  res.post = post;
  res.postMs = post.ms;
  if (post.status !== 201) {
    res.error = 'POST sessions returned ' + post.status + ': ' + (post.error || (post.body || '').slice(0, 500));
    return false;
  }
  const s = post.json && post.json.wrtcsSession;
  if (!s || !s.answer || typeof s.answer.sdp !== 'string') {
    res.error = 'the 201 body has no wrtcsSession.answer.sdp: ' + (post.body || '').slice(0, 500);
    return false;
  }
  res.session = s;
  res.answerSdp = s.answer.sdp;
  if (post.location) res.sessionUrl = new URL(post.location, cfg.sessions).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: s.answer.sdp });
  res.answerApplied = Math.round(performance.now() - res.t0);
  plog('[oma] answer applied at', res.answerApplied, 'ms, session', res.sessionUrl);
  return true;
}

function stateLogger(pc, res, who) {
  const state = (what) => {
    const s = { t: Math.round(performance.now() - res.t0), what,
      connection: pc.connectionState, ice: pc.iceConnectionState, gathering: pc.iceGatheringState };
    res.states.push(s);
    plog('[' + who + ' state]', s);
  };
  pc.addEventListener('connectionstatechange', () => state('connectionstatechange'));
  pc.addEventListener('iceconnectionstatechange', () => state('iceconnectionstatechange'));
  return state;
}

// Plays a stream through a session with a recvonly offer (video + audio); the session stays
// up (window.whepHeld, so that sampleVideo() of whep-player-page.js reads it). Never throws.
window.runOmaPlay = async function runOmaPlay(cfg) {
  const res = { t0: performance.now(), offerSdp: null, offerCandidatesKept: [], offerCandidatesDropped: [],
    post: null, postMs: null, session: null, sessionUrl: null, answerSdp: null, answerApplied: null,
    states: [], error: null };
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.whepHeld = { pc, sessionUrl: null };
  window.omaPlayRes = res;
  const state = stateLogger(pc, res, 'play');
  pc.addEventListener('track', (ev) => {
    plog('[track]', ev.track.kind);
    if (ev.track.kind === 'video') {
      const v = document.getElementById('v');
      v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      v.play().catch(() => {});
    }
  });
  try {
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const o = await offerWhenGathered(pc, {}, 5000);
    res.offerSdp = o.sdp; res.offerCandidatesKept = o.kept; res.offerCandidatesDropped = o.dropped;
    res.t0 = performance.now();  // timings from the POST on
    if (await postSession(pc, cfg, o.sdp, res)) {
      window.whepHeld.sessionUrl = res.sessionUrl;
      state('answer applied');
    }
  } catch (e) {
    res.error = String(e && e.stack || e);
  }
  return res;
};

// An ICE restart of the held playback session through .../update, then the new answer from
// .../answer. Never throws.
// The restart offer is sent before it is set locally: once set, Chromium checks the server's
// candidates with the server's old credentials until the answer comes, and libnice (which
// does not compare the remote half of the STUN username) answers such a check made just
// before the server restarts; Chromium then keeps that pair, bound to credentials the server
// no longer has, and ICE stalls. No candidates are needed in the offer: the server learns
// Chromium's from its checks.
window.omaIceRestart = async function omaIceRestart() {
  const pc = window.whepHeld.pc, url = window.whepHeld.sessionUrl;
  const res = { offerSdp: null, offerUfrags: [], update: null, answer: null, answerSdp: null,
    answerUfrags: [], answerCandidates: [], error: null, ms: null };
  const t0 = performance.now();
  try {
    pc.restartIce();
    const offer = await pc.createOffer({ iceRestart: true });
    res.offerSdp = offer.sdp;
    res.offerUfrags = iceUfrags(offer.sdp);
    res.offerCandidates = candidateLines(offer.sdp).length;
    res.update = await window.omaFetch('PUT', url + '/update', { wrtcsOffer: { sdp: offer.sdp } });
    if (res.update.status !== 200) {
      res.error = 'PUT update returned ' + res.update.status + ': ' + (res.update.error || res.update.body);
      return res;
    }
    res.answer = await window.omaFetch('GET', url + '/answer');
    const a = res.answer.json && res.answer.json.wrtcsAnswer;
    if (res.answer.status !== 200 || !a || typeof a.sdp !== 'string') {
      res.error = 'GET answer after the update returned ' + res.answer.status + ': ' + (res.answer.error || res.answer.body);
      return res;
    }
    res.answerSdp = a.sdp;
    res.answerUfrags = iceUfrags(a.sdp);
    res.answerCandidates = candidateLines(a.sdp);
    await pc.setLocalDescription(offer);
    await pc.setRemoteDescription({ type: 'answer', sdp: a.sdp });
    res.ms = Math.round(performance.now() - t0);
    plog('[oma] ICE restart answer applied after', res.ms, 'ms');
  } catch (e) {
    res.error = String(e && e.stack || e);
  }
  return res;
};

// A renegotiation of the held playback session without an ICE restart: a new offer of the
// same media through .../update, the answer from .../answer and the offer from .../offer.
// Never throws.
window.omaRenegotiate = async function omaRenegotiate() {
  const pc = window.whepHeld.pc, url = window.whepHeld.sessionUrl;
  const res = { offerSdp: null, update: null, answerSdp: null, offerBack: null, error: null, ms: null };
  const t0 = performance.now();
  try {
    const offer = await pc.createOffer();
    res.offerSdp = offer.sdp;
    res.update = await window.omaFetch('PUT', url + '/update', { wrtcsOffer: { sdp: offer.sdp } });
    if (res.update.status !== 200) {
      res.error = 'PUT update returned ' + res.update.status + ': ' + (res.update.error || res.update.body);
      return res;
    }
    const answer = await window.omaFetch('GET', url + '/answer');
    const a = answer.json && answer.json.wrtcsAnswer;
    if (answer.status !== 200 || !a || typeof a.sdp !== 'string') {
      res.error = 'GET answer after the update returned ' + answer.status + ': ' + (answer.error || answer.body);
      return res;
    }
    res.answerSdp = a.sdp;
    const back = await window.omaFetch('GET', url + '/offer');
    res.offerBack = back.json && back.json.wrtcsOffer ? back.json.wrtcsOffer.sdp : null;
    await pc.setLocalDescription(offer);
    await pc.setRemoteDescription({ type: 'answer', sdp: a.sdp });
    res.ms = Math.round(performance.now() - t0);
    plog('[oma] renegotiation answer applied after', res.ms, 'ms');
  } catch (e) {
    res.error = String(e && e.stack || e);
  }
  return res;
};

// The held playback session's ICE and frames: { ice, connection, framesDecoded, currentTime,
// localUfrag (of the ICE transport), pairUfrag (of the selected pair's local candidate: the
// ICE generation in use), pairChanges, pair, pairs (every candidate pair, briefly) }.
window.omaPlayState = async function omaPlayState() {
  const pc = window.whepHeld.pc;
  const st = await collectStats(pc);
  const out = { ice: pc.iceConnectionState, connection: pc.connectionState,
    framesDecoded: st.video ? st.video.framesDecoded || 0 : 0, mimeType: st.video ? st.video.mimeType : null,
    audioPackets: st.audio ? st.audio.packetsReceived : 0, pair: st.pair,
    currentTime: document.getElementById('v').currentTime,
    localUfrag: null, pairUfrag: null, pairRemoteUfrag: null, pairChanges: null, pairs: [] };
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  report.forEach((s) => {
    if (s.type === 'candidate-pair') {
      const l = byId.get(s.localCandidateId), r = byId.get(s.remoteCandidateId);
      out.pairs.push((l ? l.port + '/' + l.usernameFragment : '?') + '-' + (r ? r.port : '?') + ' ' + s.state
        + (s.nominated ? ' nominated' : '') + ' rx ' + (s.bytesReceived || 0));
    }
    if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
    out.localUfrag = s.iceLocalUsernameFragment || null;
    out.pairChanges = s.selectedCandidatePairChanges;
    const p = byId.get(s.selectedCandidatePairId);
    const local = p ? byId.get(p.localCandidateId) : null;
    out.pairUfrag = local ? local.usernameFragment || null : null;
    const remote = p ? byId.get(p.remoteCandidateId) : null;
    out.pairRemoteUfrag = remote ? remote.usernameFragment || null : null;
  });
  return out;
};

// Publishes a canvas of one colour (a blinking corner keeps frames coming) and the fake
// microphone through a session with a sendonly offer, cfg.videoMime preferred. Returns once
// media flows (or on error); the session stays up. Never throws.
window.runOmaPublish = async function runOmaPublish(cfg) {
  const res = { t0: performance.now(), offerSdp: null, offerCandidatesKept: [], offerCandidatesDropped: [],
    post: null, postMs: null, session: null, sessionUrl: null, answerSdp: null, answerApplied: null,
    video: null, audio: null, pair: null, states: [], error: null };
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.omaPubPc = pc;
  window.omaPubRes = res;
  const state = stateLogger(pc, res, 'pub');
  try {
    const stream = await publisherStream(cfg);
    addSendTransceivers(pc, stream, cfg.videoMime);
    const o = await offerWhenGathered(pc, {}, 5000);
    res.offerSdp = o.sdp; res.offerCandidatesKept = o.kept; res.offerCandidatesDropped = o.dropped;
    res.t0 = performance.now();
    if (!(await postSession(pc, cfg, o.sdp, res))) return res;
    state('answer applied');
    await waitPublishing(pc, res, cfg.flowTimeoutMs);
    state('publishing');
  } catch (e) {
    res.error = String(e && e.stack || e);
  }
  return res;
};

// A recvonly offer with its candidates from a throwaway peer connection (for requests that
// should be refused).
window.omaRecvOffer = async function omaRecvOffer() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const o = await offerWhenGathered(pc, {}, 5000);
  pc.close();
  return o.sdp;
};

// DELETEs a session of this page and closes its peer connection ('play' or 'pub'); resolves
// to the DELETE's outcome.
window.omaEnd = async function omaEnd(which) {
  const pc = which === 'play' ? window.whepHeld.pc : window.omaPubPc;
  const url = which === 'play' ? window.whepHeld.sessionUrl : window.omaPubRes.sessionUrl;
  const d = await window.omaFetch('DELETE', url);
  if (which === 'pub' && window.canvasTimer) clearInterval(window.canvasTimer);
  pc.getSenders().forEach((s) => s.track && s.track.stop());
  pc.close();
  return d;
};
