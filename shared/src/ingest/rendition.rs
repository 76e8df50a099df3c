//! The rendition document after each indexed segment: codecs, picture size, frame rate,
//! HDR range, audio channels, caption channels and the bit rates, from the segment's analysis (see
//! [`crate::live::stats`] for the measurements), and which input delivered it.

use super::IngestError;
use super::Upload;
use crate::app::IngestServices;
use crate::catalog::{stream_partition, Catalog};
use crate::live::stats::{audio_bits_per_second, iframe_bits_per_second};
use crate::live::target::push_recent;
use crate::media::codec::{self, VideoParams};
use crate::media::ts::{self, AudioTrack};
use crate::model::{
    fold_captions, AudioChannels, Rendition, SegmentCaptions, SegmentRecord, VideoRange, CAPTION_HOLD_SEGMENTS,
};
use crate::store::keys;

/// Folds one indexed segment into its rendition's document.
pub(super) async fn update_rendition(
    app: &IngestServices,
    record: &SegmentRecord,
    info: &ts::SegmentInfo,
    captions: &SegmentCaptions,
    target_seconds: u32,
) -> Result<(), IngestError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&record.channel);
    let sk = keys::rendition(&record.rendition);
    let bitrate = record.bitrate();
    let video = info.video.as_ref();
    let params = video.and_then(|v| v.params.as_ref());
    let frame_rate = video.and_then(|v| v.frame_rate).map(|r| r.per_second());
    let audio = info.audio.first();
    let audio_bitrate = audio.map(|a| audio_bits_per_second(a.es_bytes, info.duration));
    let codecs = info.codecs();
    let next = |previous: Option<&Rendition>| -> Option<Rendition> {
        let rendition = Rendition {
            id: record.rendition.clone(),
            codecs: if codecs.is_empty() {
                previous.map(|p| p.codecs.clone()).unwrap_or_default()
            } else {
                codecs.clone()
            },
            resolution: params
                .and_then(|p| p.resolution)
                .or(previous.and_then(|p| p.resolution)),
            frame_rate: frame_rate.or(previous.and_then(|p| p.frame_rate)),
            peak_bandwidth: previous.map_or(bitrate, |p| p.peak_bandwidth.max(bitrate)),
            average_bandwidth: previous
                .as_ref()
                .map_or(bitrate, |p| (p.average_bandwidth * 7 + bitrate) / 8),
            max_segment_duration: previous
                .as_ref()
                .map_or(record.duration, |p| p.max_segment_duration.max(record.duration)),
            target_seconds,
            recent_bandwidth: push_recent(previous.map_or(&[][..], |p| &p.recent_bandwidth), bitrate),
            recent_iframe_bandwidth: push_recent(
                previous.map_or(&[][..], |p| &p.recent_iframe_bandwidth),
                iframe_bits_per_second(record),
            ),
            declared_bandwidth: previous.and_then(|p| p.declared_bandwidth),
            declared_order: previous.and_then(|p| p.declared_order),
            iframe_bandwidth: previous
                .as_ref()
                .map_or(0, |p| p.iframe_bandwidth)
                .max(iframe_bits_per_second(record)),
            recent_audio_bandwidth: {
                let recent = previous.map_or(&[][..], |p| &p.recent_audio_bandwidth);
                audio_bitrate.map_or_else(|| recent.to_vec(), |rate| push_recent(recent, rate))
            },
            audio_channels: audio
                .and_then(audio_channels)
                .or(previous.and_then(|p| p.audio_channels)),
            // Each segment's SPS says it anew (an SPS can turn HDR off).
            video_range: match params {
                Some(p) => video_range(p),
                None => previous.and_then(|p| p.video_range),
            },
            captions: fold_captions(
                &previous.map(|p| p.captions.clone()).unwrap_or_default(),
                captions,
                record.received_at,
                CAPTION_HOLD_SEGMENTS * i64::from(target_seconds) * 1000,
            ),
            inputs: {
                let mut inputs = previous.map(|p| p.inputs.clone()).unwrap_or_default();
                inputs.entry(record.ingest_endpoint.clone()).or_default().last_segment = record.received_at;
                inputs
            },
            first_segment: previous.map_or(record.received_at, |p| p.first_segment),
            updated_at: record.received_at,
        };
        (previous != Some(&rendition)).then_some(rendition)
    };
    catalog.update(&pk, &sk, next).await?;
    Ok(())
}

/// The channel layout an audio track's first header gives.
fn audio_channels(track: &AudioTrack) -> Option<AudioChannels> {
    match (&track.aac, &track.ac3) {
        (Some(aac), _) => Some(AudioChannels::Aac {
            configuration: aac.channels,
        }),
        (None, Some(ac3)) => Some(AudioChannels::Dolby {
            acmod: ac3.acmod,
            lfe: ac3.lfeon,
        }),
        (None, None) => None,
    }
}

/// PQ or HLG from the SPS's transfer characteristics; SDR (None) otherwise.
fn video_range(params: &VideoParams) -> Option<VideoRange> {
    match params.transfer? {
        codec::TRANSFER_PQ => Some(VideoRange::Pq),
        codec::TRANSFER_HLG => Some(VideoRange::Hlg),
        _ => None,
    }
}

/// Records that this ingest endpoint delivered a segment of `rendition` just now.
pub(super) async fn touch_input(app: &IngestServices, up: &Upload<'_>, rendition: &str) -> Result<(), IngestError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let sk = keys::rendition(rendition);
    catalog
        .update::<Rendition>(&pk, &sk, |doc| {
            let mut doc = doc?.clone();
            doc.inputs.entry(up.endpoint.id.clone()).or_default().last_segment = up.now;
            Some(doc)
        })
        .await?;
    Ok(())
}
