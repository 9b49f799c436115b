#!/usr/bin/env node
// Interop test: a Chromium viewer is switched from one stream to another and back by
// whepserversink's switch-stream, with no new offer/answer.
//
// Usage: node chromium-switch.mjs <h264|vp8> <path of two_streams_server>
//
// The host program serves /red and /blue on one HTTP server of 127.0.0.1 and runs
// switch-stream on a line of its standard input. Headless Chromium plays /red with plain
// RTCPeerConnection + fetch from a page of another origin; the driver samples the centre
// pixel of the <video> and the inbound video SSRC. Asserts: red; blue within 2 s of
// "switch red blue"; red again within 2 s of switching back; one POST in all; one inbound
// SSRC throughout; DELETE 200.
//
// Exit codes: 0 pass, 1 fail, 77 skip (chromium missing), 2 usage error.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import {
  HOST, VERBOSE, CHROMIUM, sleep, withTimeout, freePort, reporter, loadChromium, chromiumArgs,
  testPageHtml, startPageServer, closePageServer, spawnKept, stopChild, guardRun, waitVideoColor,
} from './driver.mjs';

const TOTAL_TIMEOUT_MS = 70_000;
const SWITCH_TIMEOUT_MS = 2_000;  // the picture changes within this after switch-stream

const codec = (process.argv[2] || '').toLowerCase();
const hostProgram = process.argv[3];
if (!['h264', 'vp8'].includes(codec) || !hostProgram) {
  console.error(`usage: node ${path.basename(process.argv[1])} <h264|vp8> <two_streams_server>`);
  process.exit(2);
}
const TAG = `chromium-switch ${codec}`;
const { log, check, failed: anyFailed } = reporter(TAG);
const chromium = await loadChromium(TAG);
const PAGE_HTML = testPageHtml('wish switch-stream interop', ['page-common.js', 'whep-player-page.js']);

const isRed = (c) => c.r > 170 && c.g < 90 && c.b < 90;
const isBlue = (c) => c.b > 170 && c.r < 90 && c.g < 90;

let host = null;
let pageServer = null;
let context = null;
let userDataDir = null;
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (context) await withTimeout(context.close(), 10_000, 'closing chromium').catch((e) => log(`closing chromium: ${e.message}`));
  if (host) {
    host.stdin.end('quit\n');  // it ends by itself; by PID after 3 s
    await Promise.race([host.exited, sleep(3000)]);
    const exit = await stopChild(host);
    log(`host program stopped: ${JSON.stringify(exit)}`);
  }
  await closePageServer(pageServer);
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

const watchdog = guardRun(TAG, TOTAL_TIMEOUT_MS, cleanup, () => (host ? host.output().slice(-20000) : ''));

// The host's answers, one line at a time.
const lines = [];
let lineWaiter = null;
function nextLine(ms) {
  if (lines.length) return Promise.resolve(lines.shift());
  return withTimeout(new Promise((resolve) => { lineWaiter = resolve; }), ms, 'a line from the host program');
}

async function switchStream(from, to) {
  host.stdin.write(`switch ${from} ${to}\n`);
  return (await nextLine(5000)) === 'ok';
}

try {
  host = spawnKept(hostProgram, [codec], { keepStdout: false, stdin: 'pipe' });
  readline.createInterface({ input: host.stdout }).on('line', (l) => {
    if (VERBOSE) log(`host: ${l}`);
    if (lineWaiter) {
      const w = lineWaiter;
      lineWaiter = null;
      w(l);
    } else {
      lines.push(l);
    }
  });
  const portLine = await nextLine(15_000);
  const port = Number((portLine.match(/^port (\d+)$/) || [])[1]);
  if (!port) throw new Error(`the host program said "${portLine}"`);
  const pagePort = await freePort(port);
  pageServer = await startPageServer(pagePort, PAGE_HTML);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wish-chromium-'));
  context = await withTimeout(chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: chromiumArgs(), permissions: [], timeout: 15_000,
  }), 17_000, 'launching chromium');
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (VERBOSE) console.log(`[page] ${m.text()}`); });
  await page.goto(`http://${HOST}:${pagePort}/`, { timeout: 10_000 });

  const endpoint = `http://${HOST}:${port}/red`;
  const res = await withTimeout(page.evaluate((cfg) => window.runWhep(cfg), {
    endpoint, minFrames: 10, framesTimeoutMs: 20_000, maxTries: 20, hold: true,
  }), 30_000, 'WHEP session in the page');
  if (res.error) throw new Error(res.error);
  check('POST answered 201', res.postStatus === 201, `${res.posts.length} POST(s)`);
  check(`negotiated ${codec}`, (res.mimeType || '').toLowerCase() === `video/${codec}`, res.mimeType);

  const red = await waitVideoColor(page, isRed, 10_000);
  check('plays red', red.ok, JSON.stringify(red.sample));
  const ssrc = red.sample && red.sample.ssrc;

  check('switch-stream red blue', await switchStream('red', 'blue'));
  let t0 = Date.now();
  const blue = await waitVideoColor(page, isBlue, SWITCH_TIMEOUT_MS);
  check(`blue within ${SWITCH_TIMEOUT_MS} ms`, blue.ok, `${Date.now() - t0} ms, ${JSON.stringify(blue.sample)}`);

  check('switch back', await switchStream('red', '-'));
  t0 = Date.now();
  const back = await waitVideoColor(page, isRed, SWITCH_TIMEOUT_MS);
  check(`red again within ${SWITCH_TIMEOUT_MS} ms`, back.ok, `${Date.now() - t0} ms, ${JSON.stringify(back.sample)}`);

  const last = await page.evaluate(() => window.sampleVideo());
  check('one inbound video SSRC throughout', ssrc !== null && blue.sample.ssrc === ssrc && last.ssrc === ssrc,
    `${ssrc} / ${blue.sample && blue.sample.ssrc} / ${last.ssrc}`);
  check('one offer/answer in all', res.posts.length === 1, `${res.posts.length} POST(s)`);
  const del = await page.evaluate(() => window.endWhep());
  check('DELETE 200', del === 200, String(del));
} catch (e) {
  check('test ran to completion', false, e.message);
} finally {
  const failed = anyFailed();
  await cleanup();
  if (failed && host) console.log(`--- host program output (tail) ---\n${host.output().slice(-20000)}`);
  clearTimeout(watchdog);
  console.log(`${TAG}: ${failed ? 'FAIL' : 'PASS'}`);
  process.exit(failed ? 1 : 0);
}
