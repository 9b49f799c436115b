// The WHIP publisher of the Chromium interop pages: camera and microphone to a WHIP endpoint;
// injected into a test page's <script>. It must hold no backtick: it is pasted into a template. Needs page-common.js.

// What a publisher page sends: with cfg.canvasColor a picture of one colour (a corner square
// blinks so that frames keep coming; cfg.canvasWidth x cfg.canvasHeight, 320x240 by default)
// and the fake microphone, else the fake camera and microphone.
async function publisherStream(cfg) {
  if (!cfg.canvasColor) {
    return navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
  }
  const canvas = document.createElement('canvas');
  canvas.width = cfg.canvasWidth || 320;
  canvas.height = cfg.canvasHeight || 240;
  const g = canvas.getContext('2d');
  let n = 0;
  window.canvasTimer = setInterval(() => {
    g.fillStyle = cfg.canvasColor;
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = (n++ % 2) ? '#000' : '#fff';
    g.fillRect(0, 0, 8, 8);
  }, 33);
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  return new MediaStream([canvas.captureStream(30).getVideoTracks()[0], mic.getAudioTracks()[0]]);
}

// A sendonly transceiver for every track of the stream, video preferring videoMime and sent
// in the simulcast encodings given ([{rid, scaleResolutionDownBy}, ...]) if any.
function addSendTransceivers(pc, stream, videoMime, simulcast) {
  for (const track of stream.getTracks()) {
    const init = { direction: 'sendonly', streams: [stream] };
    if (track.kind === 'video' && simulcast) init.sendEncodings = simulcast;
    const tr = pc.addTransceiver(track, init);
    if (track.kind === 'video' && simulcast) {
      // Sizes stay as asked when the machine is busy: frames are dropped instead.
      const params = tr.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      tr.sender.setParameters(params).catch((e) => plog('[pub] degradationPreference:', String(e)));
    }
    if (track.kind === 'video' && tr.setCodecPreferences) {
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      const want = videoMime.toLowerCase();
      const preferred = caps.filter((c) => c.mimeType.toLowerCase() === want);
      if (preferred.length === 0) throw new Error('Chromium cannot send ' + videoMime);
      const rest = caps.filter((c) => c.mimeType.toLowerCase() !== want);
      tr.setCodecPreferences([...preferred, ...rest]);
    }
  }
}

// Waits until video frames are encoded and audio is sent on a connected publisher (or it
// fails, or timeoutMs pass); res gets the last outbound stats.
async function waitPublishing(pc, res, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const st = await outboundStats(pc);
    res.video = st.video; res.audio = st.audio; res.pair = st.pair; res.videoLayers = st.videoLayers;
    if (pc.connectionState === 'connected' && st.video && st.video.framesEncoded > 10
        && st.video.mimeType && st.audio && st.audio.packetsSent > 0) return;
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') return;
    await sleep(250);
  }
}

async function outboundStats(pc) {
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  // videoLayers: every outbound video stream (one per rid with simulcast), video the last.
  const out = { video: null, audio: null, pair: null, videoLayers: [] };
  report.forEach((s) => {
    if (s.type === 'outbound-rtp' && (s.kind === 'video' || s.kind === 'audio')) {
      const c = s.codecId ? byId.get(s.codecId) : null;
      out[s.kind] = {
        rid: s.rid, ssrc: s.ssrc, qualityLimitationReason: s.qualityLimitationReason,
        packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0,
        framesEncoded: s.framesEncoded, keyFramesEncoded: s.keyFramesEncoded,
        frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        encoderImplementation: s.encoderImplementation, pliCount: s.pliCount, firCount: s.firCount, nackCount: s.nackCount,
        mimeType: c ? c.mimeType : null, sdpFmtpLine: c ? c.sdpFmtpLine : null,
      };
      if (s.kind === 'video') out.videoLayers.push(out.video);
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) out.pair = selectedPair(byId, s);
  });
  return out;
}

// The answer with a floor under Chromium's bandwidth estimate for the video codecs
// (x-google-min-bitrate and start-bitrate, kbit/s). webrtcbin sends neither transport-wide
// congestion feedback nor REMB: the estimate would stay near its start rate for many seconds,
// and simulcast would send its smallest encodings only.
function withMinBitrate(sdp, kbps) {
  const video = sdp.split('m=video')[1] || '';
  const pts = (video.match(/a=rtpmap:\d+ (VP8|H264|VP9)\//g) || []).map((l) => l.slice(9).split(' ')[0]);
  let out = sdp;
  for (const pt of pts) {
    const extra = 'x-google-min-bitrate=' + kbps + ';x-google-start-bitrate=' + kbps;
    const fmtp = new RegExp('a=fmtp:' + pt + ' ([^\r\n]*)');
    out = fmtp.test(out) ? out.replace(fmtp, 'a=fmtp:' + pt + ' $1;' + extra)
                         : out.replace('a=rtpmap:' + pt + ' ', 'a=fmtp:' + pt + ' ' + extra + '\r\na=rtpmap:' + pt + ' ');
  }
  return out;
}

// WHIP publisher: starts publishing the fake camera + microphone; returns once media
// flows (or on error) and keeps the session up until window.stopWhip() is called.
window.runWhip = async function runWhip(cfg) {
  const res = {
    endpoint: cfg.endpoint, origin: location.origin,
    offerCandidatesKept: [], offerCandidatesDropped: [],
    postStatus: null, location: null, etag: null, sessionUrl: null,
    offerSdp: null, answerSdp: null, answerVideoCodecs: null, streamId: null,
    video: null, audio: null, pair: null, states: [], error: null,
  };
  const t0 = performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.whipPc = pc;
  window.whipRes = res;
  const state = (what) => {
    const s = { t: Math.round(performance.now() - t0), what,
      connection: pc.connectionState, ice: pc.iceConnectionState, gathering: pc.iceGatheringState };
    res.states.push(s);
    plog('[pub state]', s);
  };
  pc.addEventListener('connectionstatechange', () => state('connectionstatechange'));
  pc.addEventListener('iceconnectionstatechange', () => state('iceconnectionstatechange'));
  try {
    const stream = await publisherStream(cfg);
    res.streamId = stream.id;  // the a=msid stream id of the offer
    plog('[pub] tracks:', stream.getTracks().map((t) => t.kind + ':' + t.label));
    addSendTransceivers(pc, stream, cfg.videoMime, cfg.simulcast);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const gathered = await waitIceGatheringComplete(pc, 5000);
    plog('[pub ice] gathering complete:', gathered);
    const f = keepLoopbackCandidates(pc.localDescription.sdp);
    res.offerSdp = f.sdp;
    res.offerCandidatesKept = f.kept;
    res.offerCandidatesDropped = f.dropped;
    plog('[pub offer] candidates kept:', f.kept.length, 'dropped:', f.dropped.length);
    const resp = await fetch(cfg.endpoint, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: f.sdp,
      signal: AbortSignal.timeout(5000),
    });
    res.postStatus = resp.status;
    const body = await resp.text();
    plog('[pub post] status', resp.status);
    if (resp.status !== 201) {
      res.error = 'POST returned ' + resp.status + ': ' + body.slice(0, 500);
      return res;
    }
    res.answerSdp = body;
    res.location = resp.headers.get('Location');
    res.etag = resp.headers.get('ETag');
    if (res.location) res.sessionUrl = new URL(res.location, cfg.endpoint).href;
    const m = body.split('m=video')[1];
    res.answerVideoCodecs = m ? (m.match(/a=rtpmap:\d+ [^\r\n]+/g) || []) : [];
    await pc.setRemoteDescription({ type: 'answer', sdp: cfg.minVideoKbps ? withMinBitrate(body, cfg.minVideoKbps) : body });
    state('answer applied');
    await waitPublishing(pc, res, cfg.flowTimeoutMs);
    state('publishing');
  } catch (e) {
    res.error = String(e && e.stack || e);
  }
  return res;
};

// Ends the WHIP session: final stats, DELETE, close.
window.stopWhip = async function stopWhip() {
  const res = window.whipRes, pc = window.whipPc;
  const out = { deleteStatus: null, video: null, audio: null, pair: null };
  if (pc) {
    try {
      const st = await outboundStats(pc);
      out.video = st.video; out.audio = st.audio; out.pair = st.pair;
    } catch (e) { /* ignore */ }
  }
  if (res && res.sessionUrl) {
    try {
      const d = await fetch(res.sessionUrl, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
      out.deleteStatus = d.status;
      await d.text().catch(() => '');
    } catch (e) {
      out.deleteStatus = 'error: ' + e;
    }
    plog('[pub delete]', res.sessionUrl, '->', out.deleteStatus);
  }
  if (window.canvasTimer) clearInterval(window.canvasTimer);
  if (pc) {
    pc.getSenders().forEach((s) => s.track && s.track.stop());
    pc.close();
  }
  return out;
};
