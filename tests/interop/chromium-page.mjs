#!/usr/bin/env node
// Interop test: headless Chromium opens the player page whepserversink serves itself (GET
// /whep with Accept: text/html), which plays the stream, shows a stats overlay and, from the
// server-sent events, the viewer count and a layer selector. The driver picks a lower layer in
// the selector, waits for the overlay to show its size, and inspects a screenshot: the test
// pattern's colours in the picture, the overlay's light text on its dark box.
//
// Usage: node chromium-page.mjs <h264|vp8>     (the server's video-codec)
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import {
  HERE, HOST, CHROMIUM, withTimeout, freePort, reporter, loadChromium, chromiumArgs, spawnKept, stopChild, guardRun,
  waitForEndpoint,
} from './driver.mjs';

const codec = (process.argv[2] || '').toLowerCase();
if (!['h264', 'vp8'].includes(codec)) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8>`);
  process.exit(2);
}
const TAG = `chromium-page ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);

// An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are) as pixels.
function decodePng(buf) {
  const width = buf.readUInt32BE(16), height = buf.readUInt32BE(20), depth = buf[24], type = buf[25];
  if (depth !== 8 || (type !== 2 && type !== 6) || buf[28] !== 0) throw new Error(`unexpected PNG ${depth}/${type}`);
  const channels = type === 6 ? 4 : 3;
  const idat = [];
  for (let at = 8; at < buf.length;) {
    const len = buf.readUInt32BE(at), kind = buf.toString('ascii', at + 4, at + 8);
    if (kind === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels, px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0, b = y ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y ? px[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      px[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, at: (x, y) => Array.from(px.subarray(y * stride + x * channels, y * stride + x * channels + 3)) };
}

let gst = null, context = null, userDataDir = null;
async function cleanup() {
  if (context) await withTimeout(context.close(), 10_000, 'closing chromium').catch(() => {});
  context = null;
  await stopChild(gst);
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}
const watchdog = guardRun(TAG, 80_000, cleanup, () => (gst ? gst.output().slice(-8000) : ''));

try {
  const port = await freePort();
  const endpoint = `http://${HOST}:${port}/whep`;
  const pluginPath = process.env.GST_PLUGIN_PATH || path.resolve(HERE, '../../build/gst/wish');
  gst = spawnKept('gst-launch-1.0', [
    'whepserversink', 'name=s', `port=${port}`, `address=${HOST}`, `ice-local-addresses=${HOST}`, `video-codec=${codec}`,
    'video-layers=m:160x120:200,l:80x60:100',
    'videotestsrc', 'is-live=true', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 's.',
    'audiotestsrc', 'is-live=true', '!', 's.',
  ], { env: { ...process.env, GST_PLUGIN_PATH: pluginPath } });
  await waitForEndpoint(endpoint, gst, 10_000, { headers: { Accept: 'text/html' } });

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wish-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: chromiumArgs(), permissions: [], timeout: 15_000,
    viewport: { width: 800, height: 700 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  // The page is the server's own and sends its offer as it is: only its 127.0.0.1 candidates
  // may reach the server.
  await page.route(endpoint, async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    const sdp = (req.postData() || '').split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === HOST).join('\r\n');
    return route.continue({ postData: sdp });
  });
  await page.goto(endpoint, { timeout: 10_000 });
  const overlay = async (re, ms) => {
    try {
      await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('stats').textContent),
        re.source, { timeout: ms });
      return true;
    } catch { return false; }
  };
  const text = (id) => page.evaluate((i) => document.getElementById(i).textContent, id);
  check('the page plays the top layer (overlay 320x240)', await overlay(/^320x240 +\d+ fps/, 20_000), await text('stats'));
  check('viewer count from the events', await page.waitForFunction(
    () => document.getElementById('viewers').textContent === '1 watching', null, { timeout: 10_000 }).then(() => true, () => false),
  await text('viewers'));
  const options = await page.evaluate(() => Array.from(document.querySelectorAll('#layer option')).map((o) => o.value));
  check('layer selector filled from the layers event', options.join(',') === ',h,m,l', `options: ${options.join(',')}`);
  await page.selectOption('#layer', 'l');
  check('picking layer l shows 80x60', await overlay(/^80x60 /, 15_000), await text('stats'));
  await page.waitForTimeout(1500);  // a few frames of it
  const shot = decodePng(await page.screenshot());
  const box = await page.evaluate(() => {
    const v = document.getElementById('video').getBoundingClientRect(), s = document.getElementById('stats').getBoundingClientRect();
    return { v: [v.left, v.top, v.width, v.height], s: [s.left, s.top, s.width, s.height] };
  });
  const scale = shot.width / 800;
  // The picture: videotestsrc's colour bars, so bright saturated pixels across the video.
  let colourful = 0;
  for (let i = 1; i < 8; i++) {
    const [r, g, b] = shot.at(Math.floor((box.v[0] + box.v[2] * i / 8) * scale), Math.floor((box.v[1] + box.v[3] * 0.4) * scale));
    if (Math.max(r, g, b) > 150 && Math.max(r, g, b) - Math.min(r, g, b) > 100) colourful++;
  }
  check('the screenshot shows the test pattern', colourful >= 4, `${colourful} of 7 samples coloured`);
  let light = 0, dark = 0;
  for (let y = box.s[1]; y < box.s[1] + box.s[3]; y += 2)
    for (let x = box.s[0]; x < box.s[0] + box.s[2]; x += 2) {
      const [r, g, b] = shot.at(Math.floor(x * scale), Math.floor(y * scale));
      if (r > 200 && g > 200 && b > 200) light++;
      else if (r < 90 && g < 90 && b < 90) dark++;
    }
  check('the screenshot shows the overlay (light text on a dark box)', light > 20 && dark > light, `${light} light, ${dark} dark`);
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
const failed = anyFailed();
console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'}`);
process.exit(failed ? 1 : 0);
