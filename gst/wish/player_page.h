// The page a browser gets on GET <endpoint> with Accept: text/html: a minimal WHEP player that
// follows the draft's browser flow (recvonly offer, POST, 201 answer or 406 counter-offer,
// DELETE on unload), with a stats overlay (size, frame rate, bitrate, loss, round trip), the
// viewer count and a layer selector from the server-sent events. A bearer token can be given
// as ?token=... in the page URL.
#pragma once

namespace wish {

inline const char *whep_player_page() {
  return R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>WHEP player</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:0;padding:1em}
#stage{position:relative;max-width:960px}video{width:100%;background:#000;display:block}
#stats{position:absolute;top:.5em;left:.5em;background:rgba(0,0,0,.7);color:#fff;font:13px monospace;
padding:.3em .5em;white-space:pre}#status{margin:.5em 0}#layers{display:none}</style></head>
<body><div id="stage"><video id="video" autoplay playsinline muted controls></video><div id="stats"></div></div>
<div id="status">connecting...</div>
<label id="layers">layer <select id="layer"><option value="">auto</option></select></label>
<span id="viewers"></span>
<script>
const endpoint = location.origin + location.pathname;
const token = new URLSearchParams(location.search).get('token');
const status = (s) => { document.getElementById('status').textContent = s; };
let sessionUrl = null, layerUrl = null;
const auth = () => (token ? {'Authorization': 'Bearer ' + token} : {});
// The Link headers of the 201: the extensions the server offers.
function links(resp) {
  const out = {};
  for (const l of (resp.headers.get('Link') || '').split(/,(?=\s*<)/)) {
    const m = l.match(/<([^>]*)>.*rel="?([^";]*)"?/);
    if (m) out[m[2]] = {url: new URL(m[1], resp.url).href, events: (l.match(/events="?([^";]*)"?/) || [])[1]};
  }
  return out;
}
// Server-sent events read with fetch (EventSource cannot send the token).
async function subscribe(link) {
  const names = (link.events || 'active,inactive,layers,viewercount').split(',');
  const sub = await fetch(link.url, {method: 'POST', headers: {'Content-Type': 'application/json', ...auth()},
                                     body: JSON.stringify(names)});
  if (sub.status !== 201) return;
  const resp = await fetch(new URL(sub.headers.get('Location'), link.url).href, {headers: auth()});
  const reader = resp.body.getReader(), decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    text += decoder.decode(value, {stream: true}).replace(/\r\n?/g, '\n');
    let end;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const type = (block.match(/^event: ?(.*)$/m) || [])[1] || 'message';
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      onEvent(type, data ? JSON.parse(data) : {});
    }
  }
}
function onEvent(type, data) {
  if (type === 'viewercount') document.getElementById('viewers').textContent = data.viewercount + ' watching';
  if (type === 'inactive') status('the stream stopped');
  if (type === 'active') status('playing');
  if (type === 'layers' && layerUrl) {
    const select = document.getElementById('layer');
    for (const l of Object.values(data)[0] || []) {
      const o = document.createElement('option');
      o.value = l.rid;
      o.textContent = l.rid + (l.width ? ' ' + l.width + 'x' + l.height : '') + ' ' + Math.round(l.bitrate / 1000) + ' kbit/s';
      select.appendChild(o);
    }
    document.getElementById('layers').style.display = 'inline';
  }
}
document.getElementById('layer').onchange = (e) => {
  const body = e.target.value ? {rid: e.target.value} : {};
  fetch(layerUrl, {method: 'POST', headers: {'Content-Type': 'application/json', ...auth()}, body: JSON.stringify(body)});
};
// What the viewer sees, once a second: size, frame rate, bitrate, loss, round trip.
function watchStats(pc) {
  let last = null;
  setInterval(async () => {
    let v = null, pair = null;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') v = s;
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
    if (!v) return;
    const kbps = last ? Math.round((v.bytesReceived - last.bytesReceived) * 8 / (v.timestamp - last.timestamp)) : 0;
    last = v;
    document.getElementById('stats').textContent =
        (v.frameWidth || 0) + 'x' + (v.frameHeight || 0) + '  ' + Math.round(v.framesPerSecond || 0) + ' fps  ' +
        kbps + ' kbit/s\nlost ' + (v.packetsLost || 0) + '  rtt ' +
        (pair && pair.currentRoundTripTime !== undefined ? Math.round(pair.currentRoundTripTime * 1000) + ' ms' : '-');
  }, 1000);
}
async function play() {
  const pc = new RTCPeerConnection();
  watchStats(pc);
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); document.getElementById('video').srcObject = stream; };
  pc.onconnectionstatechange = () => status(pc.connectionState);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
    setTimeout(r, 2000); });
  const headers = {'Content-Type': 'application/sdp'};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  for (let attempt = 0; attempt < 30; attempt++) {
    const resp = await fetch(endpoint, {method: 'POST', headers, body: pc.localDescription.sdp});
    if (resp.status === 409 || resp.status === 503) {
      status('waiting for the stream (' + resp.status + ')');
      await new Promise((r) => setTimeout(r, 1000 * (parseInt(resp.headers.get('Retry-After')) || 1)));
      continue;
    }
    const body = await resp.text();
    if (resp.headers.get('Location')) sessionUrl = new URL(resp.headers.get('Location'), resp.url).href;
    if (resp.status === 201) {
      await pc.setRemoteDescription({type: 'answer', sdp: body});
      const l = links(resp);
      if (l['urn:ietf:params:whep:ext:core:layer']) layerUrl = l['urn:ietf:params:whep:ext:core:layer'].url;
      const sse = l['urn:ietf:params:whep:ext:core:server-sent-events'];
      if (sse) subscribe(sse).catch(() => {});
    } else if (resp.status === 406 && (resp.headers.get('Content-Type') || '').startsWith('application/sdp')) {
      await pc.setRemoteDescription({type: 'offer', sdp: body});
      await pc.setLocalDescription(await pc.createAnswer());
      const h = {'Content-Type': 'application/sdp'};
      if (token) h['Authorization'] = 'Bearer ' + token;
      await fetch(sessionUrl, {method: 'PATCH', headers: h, body: pc.localDescription.sdp});
    } else {
      status('error ' + resp.status + ': ' + body);
    }
    return;
  }
}
addEventListener('pagehide', () => {
  if (sessionUrl) fetch(sessionUrl, {method: 'DELETE', keepalive: true,
      headers: token ? {'Authorization': 'Bearer ' + token} : {}});
});
play().catch((e) => status('error: ' + e));
</script></body></html>
)HTML";
}

}  // namespace wish
