//! Whether a channel's ladder has arrived: its multivariant playlist and MPD wait for the
//! renditions that are still on their way, so that a player's first (and only) load of them
//! lists the whole ladder.

use super::PlaybackError;
use crate::catalog::StreamDocs;
use crate::time::UnixMillis;

/// Whether a channel's multivariant playlist or MPD may be answered yet, so that its first
/// answer lists the whole ladder (players load it once). Encoders send their renditions'
/// first segments together and their own multivariant playlist after them (ffmpeg writes
/// it once every rendition has a media playlist), so: when the encoder's multivariant has
/// come, until every rendition it names has a segment, for at most two input targets after
/// the first segment or until one rendition has three segments; without one, for one
/// target or until one rendition has two segments (by then the others, sent alongside,
/// have come; an encoder that uploads faster than real time gets there sooner). Then with
/// what has come. A 404 until then, cached as briefly as any.
pub(crate) fn ladder_ready(docs: &StreamDocs, channel: &str, now: UnixMillis) -> Result<(), PlaybackError> {
    let Some(arrival) = Arrival::of(docs, now) else {
        return Ok(());
    };
    let (missing, targets) = match &docs.master {
        Some(master) => {
            let arrived = |path: &str| {
                docs.playlists.iter().any(|(p, pl)| {
                    p == path
                        && (docs.renditions.iter().any(|r| r.id == pl.rendition)
                            || docs.subtitles.iter().any(|s| s.id == pl.rendition))
                })
            };
            let named = master.variants.iter().map(|(path, _)| path.as_str());
            let named = named
                .chain(master.audio.iter().map(|a| a.path.as_str()))
                .chain(master.subtitles.iter().map(|s| s.path.as_str()));
            let missing: Vec<&str> = named.filter(|path| !arrived(path)).collect();
            if missing.is_empty() || !arrival.within(2) {
                return Ok(());
            }
            (
                format!(
                    "{}, which the encoder's multivariant playlist names",
                    missing.join(", ")
                ),
                2,
            )
        }
        None if !arrival.within(1) => return Ok(()),
        None => (
            "the encoder's multivariant playlist or the rest of its renditions".to_owned(),
            1,
        ),
    };
    Err(arrival.wait(channel, &missing, targets))
}

/// How far a channel's first segments have come.
pub(crate) struct Arrival {
    /// Since the first segment of any rendition, ms.
    waited: i64,
    target_ms: i64,
    /// The most segments one rendition has had (counted up to 32).
    most_segments: usize,
}

impl Arrival {
    /// `None` without a segment, or for documents indexed before first segments were
    /// recorded (long ago).
    pub(crate) fn of(docs: &StreamDocs, now: UnixMillis) -> Option<Arrival> {
        let first = docs.renditions.iter().map(|r| r.first_segment).min()?;
        if first.0 == 0 {
            return None;
        }
        Some(Arrival {
            waited: now.0 - first.0,
            target_ms: docs
                .renditions
                .iter()
                .map(|r| r.target().as_millis())
                .max()
                .unwrap_or(0),
            most_segments: docs
                .renditions
                .iter()
                .map(|r| r.recent_bandwidth.len())
                .max()
                .unwrap_or(0),
        })
    }

    /// Still within `targets` input target durations of the first segment, and no rendition
    /// has had more than `targets` segments.
    pub(crate) fn within(&self, targets: i64) -> bool {
        self.waited < targets * self.target_ms && (self.most_segments as i64) <= targets
    }

    /// The 404 for a channel whose ladder is still arriving.
    pub(crate) fn wait(&self, channel: &str, missing: &str, targets: i64) -> PlaybackError {
        PlaybackError::not_found(format!(
            "channel {channel:?} started {:.1} s ago and its ladder is still arriving: waiting for {missing} \
             (for at most {:.1} s after the first segment); retry shortly",
            self.waited as f64 / 1000.0,
            (targets * self.target_ms) as f64 / 1000.0
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::IngestPlaylist;
    use crate::origin::ladder::tests::ladder;

    /// The ladder above as ingest indexes it: renditions with one 2 s segment each, the
    /// first one's at t = 100 s, and the video playlists too.
    fn arriving(ids: &[&str], master: bool) -> StreamDocs {
        let mut docs = ladder();
        docs.renditions.retain(|r| ids.contains(&r.id.as_str()));
        for (i, r) in docs.renditions.iter_mut().enumerate() {
            r.target_seconds = 2;
            r.first_segment = UnixMillis(100_000 + i as i64 * 50);
            r.recent_bandwidth = vec![500_000];
        }
        for id in ["360p", "180p"] {
            let playlist = IngestPlaylist { rendition: id.into() };
            docs.playlists.push((format!("{id}/index.m3u8"), playlist));
        }
        if !master {
            docs.master = None;
        }
        docs
    }

    #[test]
    fn a_multivariant_waits_for_what_the_encoders_names_for_two_targets_or_three_segments_at_most() {
        let at = |s: f64| UnixMillis((s * 1000.0) as i64);
        let partial = arriving(&["360p", "audio_en"], true);
        let Err(PlaybackError::NotFound(message)) = ladder_ready(&partial, "ch", at(101.0)) else {
            panic!("not a 404")
        };
        assert!(
            message.contains("waiting for 180p/index.m3u8, fr/index.m3u8, which the encoder's"),
            "{message}"
        );
        assert!(ladder_ready(&partial, "ch", at(103.9)).is_err());
        assert!(
            ladder_ready(&partial, "ch", at(104.0)).is_ok(),
            "served with what came after 2 targets"
        );
        let mut ahead = partial.clone();
        ahead.renditions[0].recent_bandwidth = vec![500_000; 3];
        assert!(
            ladder_ready(&ahead, "ch", at(101.0)).is_ok(),
            "served with what came once a rendition has three segments"
        );
        let whole = arriving(&["360p", "180p", "audio_en", "audio_fr"], true);
        assert!(
            ladder_ready(&whole, "ch", at(100.0)).is_ok(),
            "served at once when complete"
        );
    }

    #[test]
    fn without_the_encoders_multivariant_one_target_or_two_segments_are_waited_for() {
        let at = |s: f64| UnixMillis((s * 1000.0) as i64);
        let docs = arriving(&["360p", "180p"], false);
        let Err(PlaybackError::NotFound(message)) = ladder_ready(&docs, "ch", at(101.5)) else {
            panic!("not a 404")
        };
        assert!(
            message.contains("the encoder's multivariant playlist or the rest"),
            "{message}"
        );
        assert!(ladder_ready(&docs, "ch", at(102.0)).is_ok());
        let mut ahead = docs.clone();
        ahead.renditions[1].recent_bandwidth = vec![500_000; 2];
        assert!(
            ladder_ready(&ahead, "ch", at(100.2)).is_ok(),
            "uploaded faster than real time: a second segment ends the wait"
        );
        // Documents from before first segments were recorded, or no segment at all.
        let mut old = docs.clone();
        old.renditions.iter_mut().for_each(|r| r.first_segment = UnixMillis(0));
        assert!(ladder_ready(&old, "ch", at(100.0)).is_ok());
        assert!(ladder_ready(&StreamDocs::default(), "ch", at(100.0)).is_ok());
    }
}
