// Reads fMP4 files with mp4box.js (GPAC's JavaScript ISO-BMFF parser, independent of
// Sluice's writer) and prints one JSON object per file: the top-level boxes and what the
// tests check in moov (tracks, timescales, sample entries, trex) and moof/mdat (sequence
// number, tfhd, tfdt, trun samples and data offset).
//
// Common Encryption (ISO/IEC 23001-7): `paths` lists every box by its path from the file's
// top ("moov/trak/mdia/minf/stbl/stsd/encv/sinf/schi/tenc"), so that a test can see where
// a box is. Each moov track's `protection` holds its sample entry's sinf (frma original
// format, schm scheme, schi/tenc fields); `moov.pssh` the moov's pssh boxes (system id,
// KIDs, where they are in the file); `moof.encryption` the first traf's saiz, saio and
// senc. senc's entries (IV, subsamples) are read with the IV size of the tenc of the
// same track in an init segment given earlier on the command line (or in the same file).
//
// usage: node mp4_boxes.mjs FILE...
import * as MP4Box from 'mp4box';
import { readFileSync } from 'node:fs';

const hex = (bytes) => (bytes ? Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('') : undefined);

// The tenc of each track id of the init segments read so far.
const tencs = new Map();

// Every box's path from the top of the file, children after their parent.
function boxPaths(boxes, prefix = '') {
  const out = [];
  for (const b of boxes || []) {
    const name = prefix + b.type;
    out.push(name);
    out.push(...boxPaths([...(b.boxes || []), ...(b.entries || [])], name + '/'));
  }
  return out;
}

function protection(entry) {
  const sinf = (entry.boxes || []).find((b) => b.type === 'sinf');
  if (!sinf) return undefined;
  const tenc = sinf.schi && sinf.schi.tenc;
  return {
    sinfs: entry.boxes.filter((b) => b.type === 'sinf').length,
    originalFormat: sinf.frma && sinf.frma.data_format,
    scheme: sinf.schm && sinf.schm.scheme_type,
    schemeVersion: sinf.schm && sinf.schm.scheme_version,
    tenc: tenc && {
      version: tenc.version,
      isProtected: tenc.default_isProtected,
      perSampleIVSize: tenc.default_Per_Sample_IV_Size,
      kid: tenc.default_KID,
      constantIVSize: tenc.default_constant_IV_size,
      constantIV: hex(tenc.default_constant_IV),
      cryptByteBlock: tenc.default_crypt_byte_block,
      skipByteBlock: tenc.default_skip_byte_block,
    },
  };
}

// senc (ISO/IEC 23001-7 §7.2): mp4box.js keeps its body as bytes; its entries need the
// IV size, which only the track's tenc gives.
function senc(box, ivSize) {
  const data = box.data || new Uint8Array();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = { flags: box.flags, version: box.version, start: box.start, size: box.size,
    headerSize: box.hdr_size, sampleCount: data.length >= 4 ? view.getUint32(0) : undefined };
  if (ivSize === undefined || out.sampleCount === undefined) return out;
  const samples = [];
  let at = 4;
  try {
    for (let i = 0; i < out.sampleCount; i++) {
      const sample = { iv: hex(data.subarray(at, at + ivSize)), size: 0 };
      const begin = at;
      at += ivSize;
      if (box.flags & 2) {
        const count = view.getUint16(at);
        at += 2;
        sample.subsamples = [];
        for (let j = 0; j < count; j++) {
          sample.subsamples.push([view.getUint16(at), view.getUint32(at + 2)]);
          at += 6;
        }
      }
      sample.size = at - begin;
      samples.push(sample);
    }
    out.samples = samples;
    out.trailingBytes = data.length - at;
  } catch (e) {
    out.error = `senc entries do not fit in the box with IV size ${ivSize}: ${e}`;
  }
  return out;
}

function describe(path) {
  const bytes = readFileSync(path);
  const file = MP4Box.createFile(true);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  file.appendBuffer(MP4Box.MP4BoxBuffer.fromArrayBuffer(ab, 0));
  file.flush();
  const out = { path, size: bytes.length, boxes: file.boxes.map((b) => ({ type: b.type, size: b.size })),
    paths: boxPaths(file.boxes) };
  const ftyp = file.boxes.find((b) => b.type === 'ftyp' || b.type === 'styp');
  if (ftyp) out.brands = { major: ftyp.major_brand, compatible: ftyp.compatible_brands };
  const moov = file.boxes.find((b) => b.type === 'moov');
  if (moov) {
    out.moov = {
      timescale: moov.mvhd.timescale,
      tracks: moov.traks.map((t) => {
        const entry = t.mdia.minf.stbl.stsd.entries[0];
        return {
          id: t.tkhd.track_id,
          handler: t.mdia.hdlr.handler,
          timescale: t.mdia.mdhd.timescale,
          entry: entry.type,
          width: entry.width, height: entry.height,
          channels: entry.channel_count, sampleRate: entry.samplerate,
          avcC: entry.avcC ? { profile: entry.avcC.AVCProfileIndication, level: entry.avcC.AVCLevelIndication,
            sps: entry.avcC.SPS.length, pps: entry.avcC.PPS.length, lengthSize: entry.avcC.lengthSizeMinusOne + 1 } : undefined,
          samples: t.samples ? t.samples.length : 0,
          protection: protection(entry),
        };
      }),
      pssh: (moov.psshs || []).map((p) => ({ systemId: p.system_id, version: p.version, kids: p.kid,
        dataSize: p.protection_data ? p.protection_data.length : 0, start: p.start, size: p.size })),
      trex: (moov.mvex && moov.mvex.trexs || []).map((x) => ({ track: x.track_id, description: x.default_sample_description_index })),
      codecs: file.getInfo().tracks.map((t) => t.codec),
    };
  }
  for (const t of (moov && moov.traks) || []) {
    const p = protection(t.mdia.minf.stbl.stsd.entries[0]);
    if (p && p.tenc) tencs.set(t.tkhd.track_id, p.tenc);
  }
  const moof = file.boxes.find((b) => b.type === 'moof');
  if (moof) {
    const traf = moof.trafs[0];
    const trun = traf.truns[0];
    out.moof = {
      sequence: moof.mfhd.sequence_number,
      trafs: moof.trafs.length,
      track: traf.tfhd.track_id,
      defaultBaseIsMoof: (traf.tfhd.flags & 0x020000) !== 0,
      baseMediaDecodeTime: Number(traf.tfdt.baseMediaDecodeTime),
      samples: trun.sample_count,
      dataOffset: trun.data_offset,
      durations: trun.sample_duration,
      sizes: trun.sample_size,
      flags: trun.sample_flags,
      compositionOffsets: trun.sample_composition_time_offset,
      moofStart: moof.start,
      mdatStart: (file.boxes.find((b) => b.type === 'mdat') || {}).start,
      mdatHeader: (file.boxes.find((b) => b.type === 'mdat') || {}).hdr_size,
      mdatSize: (file.boxes.find((b) => b.type === 'mdat') || {}).size,
      encryption: {
        saiz: traf.saiz && { flags: traf.saiz.flags, defaultSize: traf.saiz.default_sample_info_size,
          count: traf.saiz.sample_count, sizes: traf.saiz.sample_info_size },
        saio: traf.saio && { flags: traf.saio.flags, version: traf.saio.version, count: traf.saio.entry_count,
          offsets: traf.saio.offset.map(Number) },
        senc: traf.senc && senc(traf.senc, (tencs.get(traf.tfhd.track_id) || {}).perSampleIVSize),
      },
    };
  }
  return out;
}

console.log(JSON.stringify(process.argv.slice(2).map(describe)));
