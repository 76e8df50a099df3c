// Reads fMP4 files with mp4box.js (GPAC's JavaScript ISO-BMFF parser, independent of
// Sluice's writer) and prints one JSON object per file: the top-level boxes and what the
// tests check in moov (tracks, timescales, sample entries, trex) and moof/mdat (sequence
// number, tfhd, tfdt, trun samples and data offset).
//
// usage: node mp4_boxes.mjs FILE...
import * as MP4Box from 'mp4box';
import { readFileSync } from 'node:fs';

function describe(path) {
  const bytes = readFileSync(path);
  const file = MP4Box.createFile(true);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  file.appendBuffer(MP4Box.MP4BoxBuffer.fromArrayBuffer(ab, 0));
  file.flush();
  const out = { path, size: bytes.length, boxes: file.boxes.map((b) => ({ type: b.type, size: b.size })) };
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
        };
      }),
      trex: (moov.mvex && moov.mvex.trexs || []).map((x) => ({ track: x.track_id, description: x.default_sample_description_index })),
      codecs: file.getInfo().tracks.map((t) => t.codec),
    };
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
    };
  }
  return out;
}

console.log(JSON.stringify(process.argv.slice(2).map(describe)));
