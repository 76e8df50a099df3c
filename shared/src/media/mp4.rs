//! ISO-BMFF writing for CMAF (ISO/IEC 23000-19): one-track init segments (`ftyp` + `moov`
//! with `mvex`) and media segments (`styp` + `moof` + `mdat`). Box layouts come from the
//! `mp4-atom` crate; this module decides their contents. Pure functions over records and
//! bytes.

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Dinf, Dref, DrefEntry, Encode, Esds, FourCC, Ftyp, Hdlr, Hvc1, HvcCArray, Hvcc, Mdhd,
    Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stsd, Styp, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, Url, Visual, Vmhd,
};
use thiserror::Error;

pub mod text;

/// Failure to encode boxes: only possible with parameter sets no decoder would accept.
#[derive(Debug, Error)]
#[error("cannot write the {what} box: {source}")]
pub struct Mp4Error {
    what: &'static str,
    #[source]
    source: mp4_atom::Error,
}

pub(crate) fn boxed(what: &'static str) -> impl FnOnce(mp4_atom::Error) -> Mp4Error {
    move |source| Mp4Error { what, source }
}

/// How the samples of a track are coded, with what the sample entry needs.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleEntry {
    /// H.264: SPS and PPS NAL units (headers included, no start codes).
    Avc { sps: Vec<u8>, pps: Vec<u8> },
    /// H.265: VPS, SPS and PPS NAL units, and the SPS fields `hvcC` repeats.
    Hevc {
        vps: Vec<u8>,
        sps: Vec<u8>,
        pps: Vec<u8>,
        config: crate::media::codec::HevcConfig,
    },
    /// AAC: the AudioSpecificConfig.
    Aac { config: [u8; 2] },
    /// AC-3 or E-AC-3 passthrough, described by the first sync frame.
    Ac3(crate::media::codec::Ac3Frame),
}

/// One track of the output: what the init segment declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub id: u32,
    /// Units per second of every time value of the track (90 000 video, the sample rate audio).
    pub timescale: u32,
    pub entry: SampleEntry,
    /// RFC 6381 codec string for manifests.
    pub codec: String,
    /// Picture size (video) in pixels.
    pub width: u32,
    pub height: u32,
    /// Sample rate in Hz and channel count (audio).
    pub sample_rate: u32,
    pub channels: u16,
}

impl Track {
    /// True for a video track.
    pub fn is_video(&self) -> bool {
        matches!(self.entry, SampleEntry::Avc { .. } | SampleEntry::Hevc { .. })
    }
}

/// One sample of a fragment, in the track's timescale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    /// Presentation minus decoding time.
    pub composition_offset: i32,
    pub keyframe: bool,
}

/// `trun` sample flags (ISO/IEC 14496-12 §8.8.3.1): sync samples depend on nothing,
/// others depend on earlier samples and are not sync samples.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The CMAF init segment of one track.
pub fn init_segment(track: &Track) -> Result<Vec<u8>, Mp4Error> {
    let mut out = Vec::with_capacity(1024);
    Ftyp {
        major_brand: FourCC::new(b"cmf2"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"cmf2"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"iso6"),
            FourCC::new(b"isom"),
            FourCC::new(b"dash"),
        ],
    }
    .encode(&mut out)
    .map_err(boxed("ftyp"))?;
    let video = track.is_video();
    let tkhd = Tkhd {
        track_id: track.id,
        volume: if video { 0.into() } else { 1.into() },
        width: (track.width as u16).into(),
        height: (track.height as u16).into(),
        ..Default::default()
    };
    let (handler, name) = if video {
        (b"vide", "Sluice video")
    } else {
        (b"soun", "Sluice audio")
    };
    let header = |minf: &mut Minf| match video {
        true => minf.vmhd = Some(Vmhd::default()),
        false => minf.smhd = Some(Smhd::default()),
    };
    let moov = one_track_moov(
        tkhd,
        track.timescale,
        "und",
        (handler, name),
        header,
        sample_entry(track)?,
    );
    moov.encode(&mut out).map_err(boxed("moov"))?;
    Ok(out)
}

/// The `moov` of a fragmented file with one track: `tkhd` (its id set), timescale, ISO
/// 639-2/T language, handler type and name, media header (`header`) and sample entry.
pub(crate) fn one_track_moov(
    tkhd: Tkhd,
    timescale: u32,
    language: &str,
    (handler, name): (&[u8; 4], &str),
    header: impl FnOnce(&mut Minf),
    entry: Codec,
) -> Moov {
    let track_id = tkhd.track_id;
    let mut minf = Minf {
        dinf: Dinf {
            dref: Dref {
                entries: vec![DrefEntry::Url(Url::default())],
            },
        },
        stbl: Stbl {
            stsd: Stsd { codecs: vec![entry] },
            ..Default::default()
        },
        ..Default::default()
    };
    header(&mut minf);
    let trak = Trak {
        tkhd: Tkhd {
            enabled: true,
            in_movie: true,
            alternate_group: 0,
            ..tkhd
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: language.into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: name.into(),
            },
            minf,
        },
        edts: None,
        meta: None,
        senc: None,
        tref: None,
        udta: None,
    };
    Moov {
        mvhd: Mvhd {
            timescale,
            next_track_id: track_id + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![trak],
        meta: None,
        udta: None,
        ainf: None,
    }
}

fn sample_entry(track: &Track) -> Result<Codec, Mp4Error> {
    let visual = Visual {
        data_reference_index: 1,
        width: track.width as u16,
        height: track.height as u16,
        ..Default::default()
    };
    let audio = Audio {
        data_reference_index: 1,
        channel_count: track.channels,
        sample_size: 16,
        sample_rate: (track.sample_rate.min(65_535) as u16).into(),
    };
    Ok(match &track.entry {
        SampleEntry::Avc { sps, pps } => {
            let mut avcc = Avcc::new(sps, pps).map_err(boxed("avcC"))?;
            avcc.ext = crate::media::codec::avc_ext(sps);
            Avc1 {
                visual,
                avcc,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                spatial: None,
            }
            .into()
        }
        SampleEntry::Hevc { vps, sps, pps, config } => {
            let array = |nal_unit_type: u8, nal: &Vec<u8>| HvcCArray {
                completeness: true,
                nal_unit_type,
                nalus: vec![nal.clone()],
            };
            let hvcc = Hvcc {
                configuration_version: 1,
                general_profile_space: config.profile_space,
                general_tier_flag: config.tier,
                general_profile_idc: config.profile_idc,
                general_profile_compatibility_flags: config.compatibility,
                general_constraint_indicator_flags: config.constraints,
                general_level_idc: config.level_idc,
                min_spatial_segmentation_idc: 0,
                parallelism_type: 0,
                chroma_format_idc: config.chroma_format_idc,
                bit_depth_luma_minus8: config.bit_depth_luma_minus8,
                bit_depth_chroma_minus8: config.bit_depth_chroma_minus8,
                avg_frame_rate: 0,
                constant_frame_rate: 0,
                num_temporal_layers: config.temporal_layers,
                temporal_id_nested: config.temporal_id_nested,
                length_size_minus_one: 3,
                arrays: vec![array(32, vps), array(33, sps), array(34, pps)],
            };
            Hvc1 {
                visual,
                hvcc,
                lhvc: None,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                ccst: None,
                spatial: None,
            }
            .into()
        }
        SampleEntry::Aac { config } => Mp4a {
            audio,
            esds: Esds {
                es_desc: EsDescriptor {
                    es_id: track.id as u16,
                    dec_config: DecoderConfig {
                        object_type_indication: 0x40,
                        stream_type: 5,
                        up_stream: 0,
                        dec_specific: Some(DecoderSpecific {
                            raw: config.to_vec(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    sl_config: SLConfig::default(),
                    ..Default::default()
                },
            },
            btrt: None,
            taic: None,
        }
        .into(),
        SampleEntry::Ac3(frame) if frame.enhanced => mp4_atom::Eac3 {
            audio,
            dec3: mp4_atom::Ec3SpecificBox {
                data_rate: frame.kbps() as u16,
                substreams: vec![mp4_atom::Ec3IndependentSubstream {
                    fscod: frame.fscod,
                    bsid: frame.bsid,
                    asvc: false,
                    bsmod: frame.bsmod,
                    acmod: frame.acmod,
                    lfeon: frame.lfeon,
                    num_dep_sub: 0,
                    chan_loc: None,
                }],
            },
        }
        .into(),
        SampleEntry::Ac3(frame) => mp4_atom::Ac3 {
            audio,
            dac3: mp4_atom::Ac3SpecificBox {
                fscod: frame.fscod,
                bsid: frame.bsid,
                bsmod: frame.bsmod,
                acmod: frame.acmod,
                lfeon: frame.lfeon,
                bit_rate_code: frame.bit_rate_code,
            },
        }
        .into(),
    })
}

/// A CMAF media segment of one track: `styp`, one `moof` and one `mdat` holding `data`
/// (the samples' bytes back to back, in `samples` order).
pub fn media_segment(
    track: &Track,
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
    data: &[u8],
) -> Result<Vec<u8>, Mp4Error> {
    let mut out = fragment_header(track, sequence_number, base_decode_time, samples, data.len(), None)?;
    out.reserve_exact(data.len());
    out.extend_from_slice(data);
    Ok(out)
}

/// Everything of a media segment before the sample bytes (`styp`, `moof`, the `mdat`
/// header), for writers that send the `data_len` sample bytes from where they are; with
/// `aux`, the samples are encrypted and `moof` says how (`senc`, `saiz`, `saio`).
pub fn fragment_header(
    track: &Track,
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
    data_len: usize,
    aux: Option<&crate::media::cenc::Aux>,
) -> Result<Vec<u8>, Mp4Error> {
    let (id, video) = (track.id, track.is_video());
    fragment_header_of(id, video, sequence_number, base_decode_time, samples, data_len, aux)
}

/// [`fragment_header`] of track `track_id`; all samples of a non-`video` track are sync samples.
pub(crate) fn fragment_header_of(
    track_id: u32,
    video: bool,
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
    data_len: usize,
    aux: Option<&crate::media::cenc::Aux>,
) -> Result<Vec<u8>, Mp4Error> {
    let entries: Vec<TrunEntry> = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.size),
            flags: video.then_some(if s.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
            cts: video.then_some(i64::from(s.composition_offset)),
        })
        .collect();
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id,
                default_base_is_moof: true,
                default_sample_flags: (!video).then_some(SYNC_SAMPLE),
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: base_decode_time,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: entries.into(),
            }],
            sbgp: vec![],
            sgpd: vec![],
            subs: vec![],
            saiz: vec![],
            saio: vec![],
            meta: None,
            senc: None,
            udta: None,
        }],
    };
    if let Some(aux) = aux {
        crate::media::cenc::boxes::add_to_traf(&mut moof.traf[0], aux);
    }
    let mut head = Vec::with_capacity(64 + samples.len() * 16);
    Styp {
        major_brand: FourCC::new(b"cmfs"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"cmfs"),
            FourCC::new(b"cmf2"),
            FourCC::new(b"msdh"),
            FourCC::new(b"msix"),
        ],
    }
    .encode(&mut head)
    .map_err(boxed("styp"))?;
    let styp_len = head.len();
    moof.encode(&mut head).map_err(boxed("moof"))?;
    let moof_len = head.len() - styp_len;
    // The data offset counts from the start of the moof to the first sample in the mdat.
    moof.traf[0].trun[0].data_offset = Some((moof_len + 8) as i32);
    if let Some(offset) = aux.and_then(|_| crate::media::cenc::boxes::aux_offset(&head[styp_len..])) {
        moof.traf[0].saio[0].offsets = vec![offset];
    }
    head.truncate(styp_len);
    moof.encode(&mut head).map_err(boxed("moof"))?;
    head.extend_from_slice(&((data_len + 8) as u32).to_be_bytes());
    head.extend_from_slice(b"mdat");
    Ok(head)
}
