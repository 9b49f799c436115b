// The page a browser gets on GET <endpoint> with Accept: text/html: a minimal WHEP player that
// follows the draft's browser flow (recvonly offer, POST, 201 answer or 406 counter-offer,
// DELETE on unload). A bearer token can be given as ?token=... in the page URL.
#pragma once

namespace wish {

inline const char *whep_player_page() {
  return R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>WHEP player</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:0;padding:1em}
video{width:100%;max-width:960px;background:#000}#status{margin:.5em 0}</style></head>
<body><video id="video" autoplay playsinline muted controls></video>
<div id="status">connecting...</div>
<script>
const endpoint = location.origin + location.pathname;
const token = new URLSearchParams(location.search).get('token');
const status = (s) => { document.getElementById('status').textContent = s; };
let sessionUrl = null;
async function play() {
  const pc = new RTCPeerConnection();
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
