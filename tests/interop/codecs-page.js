// A WHEP player whose video transceiver takes ONE codec (setCodecPreferences), for the
// codecs interop test; injected into a test page's <script>. It must hold no backtick: it is
// pasted into a template. Needs page-common.js and whep-player-page.js (collectStats, and
// sampleVideo / endWhep on the session it holds).

// The media codecs (no rtx / red / ulpfec / flexfec) of a kind in an SDP, by m-section:
// [{ mid, port, direction, codecs: ['VP8', ...] }].
function sdpMediaCodecs(sdp, kind) {
  const out = [];
  let cur = null;
  for (const line of (sdp || '').split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const f = line.slice(2).split(' ');
      cur = f[0] === kind ? { port: Number(f[1]), pts: f.slice(3), direction: 'sendrecv', mid: null, rtpmap: {} } : null;
      if (cur) out.push(cur);
      continue;
    }
    if (!cur) continue;
    let m;
    if ((m = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line))) cur.rtpmap[m[1]] = m[2];
    else if ((m = /^a=mid:(.*)$/.exec(line))) cur.mid = m[1];
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) cur.direction = line.slice(2);
  }
  const aux = ['rtx', 'red', 'ulpfec', 'flexfec-03'];
  return out.map((s) => ({
    mid: s.mid, port: s.port, direction: s.direction,
    codecs: [...new Set(s.pts.map((pt) => s.rtpmap[pt]).filter((n) => n && !aux.includes(n.toLowerCase())))],
  }));
}

// Runs one WHEP session whose video takes only cfg.videoMime ('video/VP8' ...); never throws.
// On a 201 the session is held (window.whepHeld) for sampleVideo(), codecStats() and endWhep().
window.runWhepCodec = async function runWhepCodec(cfg) {
  const res = {
    endpoint: cfg.endpoint, videoMime: cfg.videoMime, preferred: [],
    offerCandidatesKept: [], offerCandidatesDropped: [],
    posts: [], postStatus: null, contentType: null, body: null, location: null, sessionUrl: null,
    offerSdp: null, answerSdp: null, offerVideo: [], answerVideo: [],
    postedAt: null, postMs: null, states: [], error: null,
  };
  const t0 = performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const state = (what) => {
    const s = { t: Math.round(performance.now() - t0), what,
      connection: pc.connectionState, ice: pc.iceConnectionState, gathering: pc.iceGatheringState };
    res.states.push(s);
    plog('[state]', s);
  };
  pc.addEventListener('connectionstatechange', () => state('connectionstatechange'));
  pc.addEventListener('iceconnectionstatechange', () => state('iceconnectionstatechange'));
  pc.addEventListener('track', (ev) => {
    plog('[track]', ev.track.kind);
    if (ev.track.kind === 'video') {
      const v = document.getElementById('v');
      v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      v.play().catch(() => {});
    }
  });
  let held = false;
  try {
    const video = pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const caps = RTCRtpReceiver.getCapabilities('video');
    const only = caps.codecs.filter((c) => c.mimeType.toLowerCase() === cfg.videoMime.toLowerCase());
    res.preferred = only.map((c) => c.mimeType + (c.sdpFmtpLine ? ' ' + c.sdpFmtpLine : ''));
    if (only.length === 0) {
      res.error = 'this Chromium cannot receive ' + cfg.videoMime + ' (receiver codecs: '
        + [...new Set(caps.codecs.map((c) => c.mimeType))].join(', ') + ')';
      return res;
    }
    video.setCodecPreferences(only);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const gathered = await waitIceGatheringComplete(pc, 5000);
    plog('[ice] gathering complete:', gathered);
    const f = keepLoopbackCandidates(pc.localDescription.sdp);
    res.offerSdp = f.sdp;
    res.offerVideo = sdpMediaCodecs(f.sdp, 'video');
    res.offerCandidatesKept = f.kept;
    res.offerCandidatesDropped = f.dropped;

    // POST the offer, retrying on 409 / 503 (no media yet) as told by Retry-After.
    res.postedAt = Date.now();
    const tPost = performance.now();
    const resp = await postOfferRetrying(cfg.endpoint, f.sdp, cfg.maxTries, res, 2000);
    res.postStatus = resp.status;
    res.contentType = resp.headers.get('Content-Type');
    res.body = await resp.text();
    res.postMs = Math.round(performance.now() - tPost);
    if (resp.status !== 201) return res;
    res.answerSdp = res.body;
    res.answerVideo = sdpMediaCodecs(res.body, 'video');
    res.location = resp.headers.get('Location');
    if (res.location) res.sessionUrl = new URL(res.location, cfg.endpoint).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: res.body });
    state('answer applied');
    window.whepHeld = { pc, sessionUrl: res.sessionUrl };
    held = true;
  } catch (e) {
    res.error = String(e && e.stack || e);
  } finally {
    if (!held) pc.close();
  }
  return res;
};

// The held session's inbound video (codec from its codecId) and audio, and selected pair.
window.codecStats = function codecStats() {
  return collectStats(window.whepHeld.pc);
};
