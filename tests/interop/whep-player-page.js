// The WHEP player of the Chromium interop pages: plain RTCPeerConnection and fetch;
// injected into a test page's <script>. It must hold no backtick: it is pasted into a template. Needs page-common.js.

async function collectStats(pc) {
  const report = await pc.getStats();
  const out = { video: null, audio: null, pair: null };
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'video' || s.kind === 'audio')) {
      const codec = s.codecId ? byId.get(s.codecId) : null;
      out[s.kind] = {
        packetsReceived: s.packetsReceived || 0,
        bytesReceived: s.bytesReceived || 0,
        packetsLost: s.packetsLost || 0,
        framesReceived: s.framesReceived,
        framesDecoded: s.framesDecoded,
        keyFramesDecoded: s.keyFramesDecoded,
        frameWidth: s.frameWidth,
        frameHeight: s.frameHeight,
        decoderImplementation: s.decoderImplementation,
        pliCount: s.pliCount,
        firCount: s.firCount,
        nackCount: s.nackCount,
        mimeType: codec ? codec.mimeType : null,
        sdpFmtpLine: codec ? codec.sdpFmtpLine : null,
        payloadType: codec ? codec.payloadType : null,
      };
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) out.pair = selectedPair(byId, s);
  });
  return out;
}

// The server-sent events extension: the URL and events a 201's Link headers offer.
function eventsLink(resp) {
  const links = (resp.headers.get('Link') || '').split(/,(?=\s*<)/);
  for (const l of links) {
    if (!/rel="?urn:ietf:params:whep:ext:core:server-sent-events"?/.test(l)) continue;
    const url = (l.match(/<([^>]*)>/) || [])[1];
    const names = ((l.match(/events="?([^";]*)"?/) || [])[1] || '').split(',').filter((n) => n);
    return { url, names };
  }
  return null;
}

// Subscribes as the extension says (POST the names, then an EventSource on the Location) and
// records every event in res.events.
async function subscribeEvents(resp, base, res) {
  const link = eventsLink(resp);
  res.eventsLink = link;
  if (!link || !link.url) return null;
  const url = new URL(link.url, base).href;
  const sub = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(link.names), signal: AbortSignal.timeout(5000) });
  res.eventsSubscribeStatus = sub.status;
  const where = sub.headers.get('Location');
  if (sub.status !== 201 || !where) return null;
  const source = new EventSource(new URL(where, url).href);
  for (const name of link.names)
    source.addEventListener(name, (ev) => {
      res.events.push({ type: name, data: ev.data });
      plog('[event]', name, ev.data);
    });
  source.onerror = () => plog('[event] stream error, readyState', source.readyState);
  return source;
}

// Runs one WHEP session; never throws, returns a result object for the driver.
window.runWhep = async function runWhep(cfg) {
  const res = {
    endpoint: cfg.endpoint, origin: location.origin,
    offerCandidatesKept: [], offerCandidatesDropped: [],
    posts: [], postStatus: null, location: null, etag: null, sessionUrl: null,
    answerSdp: null, offerSdp: null,
    framesDecoded: 0, mimeType: null, video: null, audio: null, pair: null,
    audioPacketsReceived: 0, states: [],
    deleteStatus: null, error: null,
    events: [], eventsLink: null, eventsSubscribeStatus: null,
  };
  let eventSource = null;
  const t0 = performance.now();
  const state = (what) => {
    const s = { t: Math.round(performance.now() - t0), what,
      connection: pc.connectionState, ice: pc.iceConnectionState, gathering: pc.iceGatheringState };
    res.states.push(s);
    plog('[state]', s);
  };
  const pc = new RTCPeerConnection({ iceServers: [] });
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
  try {
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const gathered = await waitIceGatheringComplete(pc, 5000);
    plog('[ice] gathering complete:', gathered);
    const f = keepLoopbackCandidates(pc.localDescription.sdp);
    res.offerSdp = f.sdp;
    res.offerCandidatesKept = f.kept;
    res.offerCandidatesDropped = f.dropped;
    plog('[offer] candidates kept:', f.kept.length, 'dropped:', f.dropped.length);

    // POST the offer, retrying on 409 / 503 as told by Retry-After.
    const resp = await postOfferRetrying(cfg.endpoint, f.sdp, cfg.maxTries, res, 3000);
    res.postStatus = resp.status;
    const body = await resp.text();
    if (resp.status !== 201) {
      res.error = 'POST returned ' + resp.status + ': ' + body.slice(0, 500);
      return res;
    }
    res.answerSdp = body;
    res.location = resp.headers.get('Location');
    res.etag = resp.headers.get('ETag');
    res.contentType = resp.headers.get('Content-Type');
    if (res.location) res.sessionUrl = new URL(res.location, cfg.endpoint).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    state('answer applied');
    if (cfg.events) eventSource = await subscribeEvents(resp, res.sessionUrl || cfg.endpoint, res);

    // Poll the stats until enough frames were decoded.
    const deadline = performance.now() + cfg.framesTimeoutMs;
    let lastLog = 0;
    while (performance.now() < deadline) {
      const st = await collectStats(pc);
      res.video = st.video; res.audio = st.audio; res.pair = st.pair;
      res.framesDecoded = (st.video && st.video.framesDecoded) || 0;
      res.mimeType = st.video ? st.video.mimeType : null;
      res.audioPacketsReceived = st.audio ? st.audio.packetsReceived : 0;
      if (performance.now() - lastLog > 2000) {
        lastLog = performance.now();
        plog('[stats] framesDecoded', res.framesDecoded, 'video pkts',
          st.video ? st.video.packetsReceived : 0, 'audio pkts', res.audioPacketsReceived,
          'codec', res.mimeType, 'conn', pc.connectionState);
      }
      if (res.framesDecoded >= cfg.minFrames && res.mimeType && res.audioPacketsReceived > 0 &&
          (!eventSource || res.events.length >= 2)) break;
      if (res.framesDecoded >= cfg.minFrames && res.mimeType && performance.now() > deadline - cfg.framesTimeoutMs / 2) break;
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') break;
      await sleep(250);
    }
    state('stats done');
  } catch (e) {
    res.error = String(e && e.stack || e);
  } finally {
    if (eventSource) eventSource.close();
    if (cfg.hold && !res.error) {
      // The session stays up for the driver: sampleVideo() and endWhep() below.
      window.whepHeld = { pc, sessionUrl: res.sessionUrl };
      return res;
    }
    if (res.sessionUrl) {
      try {
        const d = await fetch(res.sessionUrl, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
        res.deleteStatus = d.status;
        await d.text().catch(() => '');
      } catch (e) {
        res.deleteStatus = 'error: ' + e;
      }
      plog('[delete]', res.sessionUrl, '->', res.deleteStatus);
    }
    pc.close();
  }
  return res;
};

// What the held session shows now: the centre pixel of the video element and the inbound
// video RTP stream (SSRC, frames).
window.sampleVideo = async function sampleVideo() {
  const v = document.getElementById('v');
  const out = { r: -1, g: -1, b: -1, ssrc: null, framesDecoded: 0, keyFramesDecoded: 0 };
  if (v.videoWidth > 0) {
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const px = ctx.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    out.r = px[0]; out.g = px[1]; out.b = px[2];
  }
  const report = await window.whepHeld.pc.getStats();
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.ssrc = s.ssrc;
      out.framesDecoded = s.framesDecoded || 0;
      out.keyFramesDecoded = s.keyFramesDecoded || 0;
    }
  });
  return out;
};

// Ends the held session: DELETE, then close; resolves to the DELETE's status.
window.endWhep = async function endWhep() {
  const held = window.whepHeld;
  let status = null;
  try {
    const d = await fetch(held.sessionUrl, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
    status = d.status;
  } catch (e) {
    status = 'error: ' + e;
  }
  held.pc.close();
  return status;
};
