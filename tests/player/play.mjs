// Plays a live stream with a real web player in headless Chromium (Debian's, never a
// downloaded one) and succeeds only if video.currentTime advances by at least MIN_SECONDS
// with no fatal player error. Prints one JSON line with what happened.
//
// usage: node play.mjs PLAYER URL [MIN_SECONDS] [TIMEOUT_SECONDS]
// PLAYER: hlsjs | dashjs | shaka. The player page is served at URL's origin (so requests
// are same-origin) by intercepting /__sluice_player/*; the player library comes from
// tests/node_modules (dash.js, Shaka) or sluice-local's vendored hls.js.
// SWITCH_AUDIO=fr: once playing, switch to the audio track of that language, and succeed
// only if the player then reports it active and plays on for 3 s more. The JSON line lists
// the audio (and, for hls.js, subtitle) languages the player offered, and its caption
// tracks (`captions`; hls.js and Shaka: the video element's caption text tracks with the
// text of their cues). WAIT_CAPTION=TEXT: succeed only once a caption cue shows TEXT.
// WAIT_SUBTITLE=TEXT: turn the first subtitle track on and succeed only once one
// of its cues (reported under `subtitleCues`, with their times) shows TEXT.
// hls.js also reports the key URIs of the AES-128 and SAMPLE-AES fragments it decrypted into its buffer
// (`info.decryptedKeys`, in order of first use) and how many (`info.decryptedFragments`).
// CLEARKEY_LICENSE=URL: Common Encryption through EME with the W3C ClearKey CDM, each
// player given URL as its org.w3.clearkey license server (hls.js drmSystems, dash.js
// setProtectionData, Shaka drm.servers). The JSON line then tells what EME did (`eme`:
// the key systems asked for and granted, 'encrypted' events, sessions, key statuses, the
// license requests seen and whether the video element had MediaKeys); without it EME is
// left alone.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [player, url, minArg, timeoutArg] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const libraries = {
  hlsjs: path.join(here, '../../infra/local/assets/hls.min.js'),
  dashjs: path.join(here, '../node_modules/dashjs/dist/legacy/umd/dash.all.min.js'),
  shaka: path.join(here, '../node_modules/shaka-player/dist/shaka-player.compiled.js'),
};
if (!libraries[player] || !url) {
  console.error('usage: node play.mjs hlsjs|dashjs|shaka URL [MIN_SECONDS] [TIMEOUT_SECONDS]');
  process.exit(2);
}
const minSeconds = Number(minArg ?? 6);
const timeoutMs = Number(timeoutArg ?? 45) * 1000;
const license = process.env.CLEARKEY_LICENSE || null;

// Each player reports errors into window.playerErrors as {fatal, detail}.
const start = {
  hlsjs: `
    const hls = new Hls({ liveSyncDurationCount: 3, debug: DEBUG, ...(LICENSE ? { emeEnabled: true,
      drmSystems: { 'org.w3.clearkey': { licenseUrl: LICENSE } } } : {}) });
    window.player = hls;
    hls.on(Hls.Events.ERROR, (_, d) => window.playerErrors.push({ fatal: d.fatal,
      detail: d.details + (d.error ? ': ' + d.error.message : d.reason ? ': ' + d.reason : '') }));
    window.decryptedWith = [];
    hls.on(Hls.Events.FRAG_BUFFERED, (_, d) => { const k = d.frag.decryptdata;
      if (k && ['AES-128', 'SAMPLE-AES'].includes(k.method) && k.keyFormat === 'identity')
        window.decryptedWith.push(k.uri); });
    hls.loadSource(SRC); hls.attachMedia(video);
    window.describe = () => ({ version: Hls.version, levels: hls.levels.map((l) => l.width + 'x' + l.height),
      decryptedKeys: [...new Set(window.decryptedWith)], decryptedFragments: window.decryptedWith.length,
      audio: hls.audioTracks.map((t) => t.lang), activeAudio: (hls.audioTracks[hls.audioTrack] || {}).lang,
      subtitles: hls.subtitleTracks.map((t) => t.lang) });
    window.switchAudio = (lang) => { hls.audioTrack = hls.audioTracks.findIndex((t) => t.lang === lang); };
    window.showSubtitles = () => { if (hls.subtitleTrack < 0 && hls.subtitleTracks.length) { hls.subtitleTrack = 0; hls.subtitleDisplay = true; } };`,
  dashjs: `
    const p = dashjs.MediaPlayer().create();
    window.player = p;
    p.on(dashjs.MediaPlayer.events.ERROR, (e) => window.playerErrors.push({ fatal: true, detail: JSON.stringify(e.error || e) }));
    if (DEBUG) p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_DEBUG } });
    if (LICENSE) p.setProtectionData({ 'org.w3.clearkey': { serverURL: LICENSE } });
    p.initialize(video, SRC, true);
    window.describe = () => ({ version: p.getVersion(),
      levels: (p.getRepresentationsByType ? p.getRepresentationsByType('video') : []).map((r) => r.width + 'x' + r.height),
      audio: p.getTracksFor('audio').map((t) => t.lang), activeAudio: (p.getCurrentTrackFor('audio') || {}).lang });
    window.switchAudio = (lang) => p.setCurrentTrack(p.getTracksFor('audio').find((t) => t.lang === lang));
    window.showSubtitles = () => { const t = p.getTracksFor('text').find((t) => !t.isEmbedded);
      if (t && (p.getCurrentTrackFor('text') || {}).id !== t.id) { p.enableText(true); p.setCurrentTrack(t); } };`,
  shaka: `
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    window.player = p;
    // A shaka.util.Error's code and, if any, the start of its data.
    const shakaError = (e) => { let data = '';
      try { data = e.data && e.data.length ? ' ' + JSON.stringify(e.data).slice(0, 300) : ''; } catch (_) {}
      return (e.code || e) + data; };
    p.addEventListener('error', (e) => window.playerErrors.push({ fatal: e.detail.severity === 2, detail: 'shaka ' + shakaError(e.detail) }));
    if (LICENSE) p.configure({ drm: { servers: { 'org.w3.clearkey': LICENSE } } });
    p.attach(video).then(() => p.load(SRC)).catch((e) => window.playerErrors.push({ fatal: true, detail: 'shaka load ' + shakaError(e) }));
    window.describe = () => ({ version: shaka.Player.version, levels: p.getVariantTracks().map((t) => t.width + 'x' + t.height),
      audio: p.getAudioTracks().map((t) => t.language), activeAudio: (p.getAudioTracks().find((t) => t.active) || {}).language });
    window.switchAudio = (lang) => p.selectAudioTrack(p.getAudioTracks().find((t) => t.language === lang));
    window.showSubtitles = () => { const t = p.getTextTracks().find((t) => t.kind === 'subtitle');
      if (t && !t.active) p.selectTextTrack(t);
      // Shaka 5 draws through its native text displayer: a text track on the video element.
      for (const track of video.textTracks) if (track.mode === 'disabled') track.mode = 'hidden'; };`,
};

// The caption tracks each player offers (CEA-608/708 in the video). Native text tracks
// are set to 'hidden' (loaded, not drawn) so that their cues can be read.
const nativeCaptions = `Array.from(video.textTracks).filter((t) => t.kind === 'captions').map((t) => {
    if (t.mode === 'disabled') t.mode = 'hidden';
    return { kind: t.kind, label: t.label, lang: t.language, cues: Array.from(t.cues || []).map((c) => c.text) }; })`;
const captions = {
  hlsjs: `window.describeCaptions = () => ({ tracks: ${nativeCaptions} });`,
  dashjs: `window.describeCaptions = () => ({ tracks: p.getTracksFor('text').map((t) => ({ id: t.id, lang: t.lang,
    embedded: t.isEmbedded, codec: t.codec })) });`,
  shaka: `window.describeCaptions = () => ({ player: p.getTextTracks().map((t) => ({ id: t.originalTextId, lang: t.language,
    kind: t.kind, mimeType: t.mimeType })), tracks: ${nativeCaptions} });`,
};

// With CLEARKEY_LICENSE: what the page's EME calls did, in window.eme (wrapping
// requestMediaKeySystemAccess and MediaKeys.createSession before any player loads).
const emeProbe = `
  window.eme = { requested: [], granted: [], refused: [], encryptedEvents: [], sessions: 0, keyStatuses: {} };
  const askAccess = navigator.requestMediaKeySystemAccess.bind(navigator);
  navigator.requestMediaKeySystemAccess = (system, configs) => {
    window.eme.requested.push(system);
    return askAccess(system, configs).then(
      (access) => { window.eme.granted.push(access.keySystem); return access; },
      (e) => { window.eme.refused.push(system + ': ' + e.name); throw e; });
  };
  // Shaka Player asks through MediaCapabilities, which grants access without calling
  // requestMediaKeySystemAccess.
  if (navigator.mediaCapabilities) {
    const decodingInfo = navigator.mediaCapabilities.decodingInfo.bind(navigator.mediaCapabilities);
    navigator.mediaCapabilities.decodingInfo = (config) => {
      const asked = config && config.keySystemConfiguration;
      if (asked) window.eme.requested.push(asked.keySystem);
      return decodingInfo(config).then((info) => {
        if (asked && info.keySystemAccess) window.eme.granted.push(info.keySystemAccess.keySystem);
        return info;
      });
    };
  }
  const createSession = MediaKeys.prototype.createSession;
  MediaKeys.prototype.createSession = function (...args) {
    const session = createSession.apply(this, args);
    window.eme.sessions += 1;
    session.addEventListener('keystatuseschange', () => session.keyStatuses.forEach((status, kid) => {
      const bytes = ArrayBuffer.isView(kid) ? new Uint8Array(kid.buffer, kid.byteOffset, kid.byteLength) : new Uint8Array(kid);
      window.eme.keyStatuses[Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')] = status; }));
    return session;
  };
  document.getElementById('video').addEventListener('encrypted', (e) => window.eme.encryptedEvents.push(e.initDataType));`;

const origin = new URL(url).origin;
const page_html = `<!doctype html><html><body>
<video id="video" muted ${player === 'dashjs' ? '' : 'autoplay'} playsinline width="640"></video>
${license ? `<script>${emeProbe}</script>` : ''}
<script src="/__sluice_player/lib.js"></script>
<script>
  window.playerErrors = [];
  const SRC = ${JSON.stringify(url)};
  const LICENSE = ${JSON.stringify(license)};
  const DEBUG = ${JSON.stringify(Boolean(process.env.PLAYER_DEBUG))};
  const video = document.getElementById('video');
  try { ${start[player]} ${captions[player]} } catch (e) { window.playerErrors.push({ fatal: true, detail: 'setup ' + e }); }
  // dash.js starts playback itself (initialize(..., true)) and only refreshes a live MPD
  // once it has seen the element's 'play' event, so the page must not start it earlier.
  if (${JSON.stringify(player)} !== 'dashjs') video.play().catch(() => {});
</script></body></html>`;

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
  if (process.env.PLAYER_DEBUG) {
    // PLAYER_DEBUG=1: the page's console and every request on stderr, with the time.
    const t0 = Date.now();
    const stamp = () => ((Date.now() - t0) / 1000).toFixed(2);
    page.on('console', (m) => console.error(stamp(), m.text()));
    page.on('request', (r) => console.error(stamp(), 'GET', r.url()));
  }
  const licenseRequests = [];
  if (license) page.on('request', (r) => { if (r.url().startsWith(license) && r.method() === 'POST') licenseRequests.push(r.postData()); });
  const httpErrors = [];
  page.on('response', (r) => { if (r.status() >= 400) httpErrors.push(`${r.status()} ${r.url()}`); });
  page.on('requestfailed', (r) => httpErrors.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
  await page.route(`${origin}/__sluice_player/page.html`, (r) =>
    r.fulfill({ status: 200, contentType: 'text/html', body: page_html }));
  await page.route(`${origin}/__sluice_player/lib.js`, (r) =>
    r.fulfill({ status: 200, contentType: 'text/javascript', body: readFileSync(libraries[player]) }));
  await page.goto(`${origin}/__sluice_player/page.html`);
  const started = Date.now();
  let first = null;
  let last = 0;
  let lastMove = null;
  let maxStall = 0;
  let state = { errors: [] };
  const switchTo = process.env.SWITCH_AUDIO || null;
  const waitCaption = process.env.WAIT_CAPTION || null;
  const waitSubtitle = process.env.WAIT_SUBTITLE || null;
  const subtitleShown = () => !waitSubtitle || (state.subtitleCues || []).some((c) => c.text.includes(waitSubtitle));
  const captionShown = () => !waitCaption || ((state.captions || {}).tracks || []).some((t) => t.cues.some((c) => c.includes(waitCaption)));
  let switchedAt = null;
  let switched = false;
  while (Date.now() - started < timeoutMs) {
    state = await page.evaluate(() => ({
      time: document.getElementById('video').currentTime,
      eme: window.eme ? { ...window.eme, mediaKeys: Boolean(document.getElementById('video').mediaKeys) } : undefined,
      errors: window.playerErrors,
      info: window.describe ? window.describe() : {},
      captions: window.describeCaptions ? window.describeCaptions() : {},
      subtitleCues: Array.from(document.getElementById('video').textTracks).filter((t) => t.kind === 'subtitles')
        .flatMap((t) => Array.from(t.cues || []).map((c) => ({ lang: t.language, start: c.startTime, end: c.endTime, text: c.text }))),
    }));
    if (waitSubtitle) await page.evaluate(() => window.showSubtitles && window.showSubtitles());
    const now = Date.now();
    if (state.errors.some((e) => e.fatal)) break;
    if (first === null && state.time > 0) { first = state.time; lastMove = now; }
    if (first !== null) {
      if (state.time > last) lastMove = now;
      maxStall = Math.max(maxStall, now - lastMove);
    }
    last = state.time;
    if (first !== null && last - first >= minSeconds && captionShown() && subtitleShown()) {
      if (!switchTo) break;
      if (switchedAt === null) {
        await page.evaluate((lang) => window.switchAudio(lang), switchTo);
        switchedAt = last;
      } else if (state.info.activeAudio === switchTo && last - switchedAt >= 3) {
        switched = true;
        break;
      }
    }
    await page.waitForTimeout(250);
  }
  const advanced = first === null ? 0 : last - first;
  result = {
    ok: advanced >= minSeconds && !state.errors.some((e) => e.fatal) && (!switchTo || switched) && captionShown()
      && subtitleShown(),
    switchedAudio: switchTo ? switched : undefined,
    player,
    advanced: Number(advanced.toFixed(2)),
    currentTime: Number(last.toFixed(2)),
    maxStallSeconds: Number((maxStall / 1000).toFixed(2)),
    info: state.info,
    eme: license ? { ...state.eme, licenseRequests } : undefined,
    captions: state.captions,
    subtitleCues: (state.subtitleCues || []).slice(-20),
    errors: state.errors.slice(0, 5),
    consoleErrors: consoleErrors.slice(0, 5),
    httpErrors: httpErrors.slice(0, 10),
  };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
