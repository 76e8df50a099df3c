// Plays an HLS URL with hls.js in headless Chromium (Debian's, never a downloaded one)
// and succeeds only if video.currentTime advances by at least MIN_SECONDS with no fatal
// hls.js error. Prints one JSON line with what happened.
//
// usage: node play_hls.mjs PAGE_URL HLS_URL [MIN_SECONDS] [TIMEOUT_SECONDS]
// PAGE_URL serves hls.js at /assets/hls.min.js and plays ?src= (sluice-local's `/`).
import { chromium } from 'playwright-core';

const [pageUrl, hlsUrl, minArg, timeoutArg] = process.argv.slice(2);
if (!pageUrl || !hlsUrl) {
  console.error('usage: node play_hls.mjs PAGE_URL HLS_URL [MIN_SECONDS] [TIMEOUT_SECONDS]');
  process.exit(2);
}
const minSeconds = Number(minArg ?? 6);
const timeoutMs = Number(timeoutArg ?? 45) * 1000;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
let result = { ok: false };
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(`${pageUrl}?src=${encodeURIComponent(hlsUrl)}`);
  const started = Date.now();
  let first = null;
  let last = 0;
  let state = {};
  while (Date.now() - started < timeoutMs) {
    state = await page.evaluate(() => ({
      time: document.getElementById('video').currentTime,
      errors: window.playerErrors || [],
      levels: window.hls ? window.hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`) : [],
      hlsVersion: window.Hls ? window.Hls.version : null,
    }));
    if (state.errors.some((e) => e.fatal)) break;
    if (first === null && state.time > 0) first = state.time;
    last = state.time;
    if (first !== null && last - first >= minSeconds) break;
    await page.waitForTimeout(500);
  }
  const advanced = first === null ? 0 : last - first;
  result = {
    ok: advanced >= minSeconds && !state.errors.some((e) => e.fatal),
    advanced: Number(advanced.toFixed(2)),
    currentTime: Number(last.toFixed(2)),
    levels: state.levels,
    hlsVersion: state.hlsVersion,
    errors: state.errors,
    consoleErrors: consoleErrors.slice(0, 5),
  };
} finally {
  await browser.close(); // playwright gave the browser a fresh temporary profile
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
