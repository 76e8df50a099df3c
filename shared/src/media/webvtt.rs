//! Segmented WebVTT as HLS carries it (RFC 8216 §3.5): reading an encoder's segment into
//! cues on the MPEG-TS clock, and writing an output segment whose `X-TIMESTAMP-MAP` ties
//! its cue times to the media segments it goes with.
//!
//! Hand-written: the WebVTT crates on crates.io parse whole files for players and drop
//! both the `X-TIMESTAMP-MAP` header and cue settings, which an origin has to keep.

use crate::time::{Ticks, PTS_WRAP, TICKS_PER_SECOND};
use serde::{Deserialize, Serialize};

/// One cue: its times on the encoder's 90 kHz clock (33-bit values, not unwrapped), the
/// settings after the timing (`align:start line:90%`…) and the payload, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cue {
    pub start: u64,
    pub end: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub settings: String,
    pub text: String,
}

/// Largest WebVTT segment accepted: far above what a few seconds of subtitles take.
pub const MAX_SEGMENT_BYTES: usize = 256 * 1024;

/// The cues of one WebVTT segment. Its `X-TIMESTAMP-MAP=MPEGTS:m,LOCAL:l` puts cue time
/// `l` at MPEG-TS time `m`; without one, cue time 0 is MPEG-TS time 0 (RFC 8216 §3.5).
pub fn parse_segment(body: &[u8]) -> Result<Vec<Cue>, String> {
    if body.len() > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_SEGMENT_BYTES} a WebVTT segment may have",
            body.len()
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text, which WebVTT must be".to_owned())?;
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut blocks = text.split("\n\n").filter(|b| !b.trim().is_empty());
    let header = blocks.next().unwrap_or_default();
    let signature = header.lines().next().unwrap_or_default();
    if !(signature == "WEBVTT" || signature.starts_with("WEBVTT ") || signature.starts_with("WEBVTT\t")) {
        return Err("does not start with the WEBVTT signature".into());
    }
    let (mpegts, local) = match header.lines().find_map(|l| l.strip_prefix("X-TIMESTAMP-MAP=")) {
        Some(map) => timestamp_map(map)?,
        None => (0, 0),
    };
    let mut cues = Vec::new();
    for block in blocks {
        let mut lines = block.lines();
        let Some(mut timing) = lines.next() else { continue };
        if timing.starts_with("NOTE") || timing.starts_with("STYLE") || timing.starts_with("REGION") {
            continue;
        }
        if !timing.contains("-->") {
            // A cue identifier; the timing follows.
            timing = lines.next().unwrap_or_default();
        }
        let (start, rest) = timing
            .split_once("-->")
            .ok_or_else(|| format!("cue {:?} has no timing line", block.lines().next().unwrap_or_default()))?;
        let rest = rest.trim_start();
        let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        let millis =
            |t: &str| cue_time(t.trim()).ok_or_else(|| format!("cue time {t:?} is not hh:mm:ss.ttt or mm:ss.ttt"));
        let (start, end) = (millis(start)?, millis(end)?);
        if end < start {
            return Err(format!("cue {timing:?} ends before it starts"));
        }
        let on_clock = |ms: u64| {
            let ticks = i128::from(mpegts) + (i128::from(ms) - i128::from(local)) * 90;
            ticks.rem_euclid(i128::from(PTS_WRAP)) as u64
        };
        let (start, end) = (on_clock(start), on_clock(end));
        let text = lines.collect::<Vec<_>>().join("\n");
        cues.push(Cue {
            start,
            end,
            settings: settings.trim().to_owned(),
            text,
        });
    }
    Ok(cues)
}

/// `MPEGTS:900000,LOCAL:00:00:00.000` (either order) as (MPEG-TS ticks, local ms).
fn timestamp_map(map: &str) -> Result<(u64, u64), String> {
    let (mut mpegts, mut local) = (None, None);
    for part in map.split(',') {
        if let Some(v) = part.trim().strip_prefix("MPEGTS:") {
            mpegts = v.parse::<u64>().ok();
        } else if let Some(v) = part.trim().strip_prefix("LOCAL:") {
            local = cue_time(v);
        }
    }
    match (mpegts, local) {
        (Some(m), Some(l)) => Ok((m % PTS_WRAP, l)),
        _ => Err(format!(
            "X-TIMESTAMP-MAP={map:?} is not MPEGTS:<ticks>,LOCAL:<cue time>"
        )),
    }
}

/// A WebVTT timestamp (`[hh:]mm:ss.ttt`) in milliseconds.
fn cue_time(t: &str) -> Option<u64> {
    let (clock, millis) = t.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |s: &str, max: u64| s.parse::<u64>().ok().filter(|n| *n < max && s.len() >= 2);
    let (h, m, s) = match parts.as_slice() {
        [m, s] => (0, number(m, 60)?, number(s, 60)?),
        // Hours: at least two digits, few enough for the arithmetic below.
        [h, m, s] if h.len() <= 9 => (h.parse::<u64>().ok()?, number(m, 60)?, number(s, 60)?),
        _ => return None,
    };
    Some(((h * 60 + m) * 60 + s) * 1000 + millis.parse::<u64>().ok()?)
}

/// `ms` as `hh:mm:ss.ttt`.
fn write_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A cue placed on the output timeline (unwrapped 90 kHz ticks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedCue {
    pub start: Ticks,
    pub end: Ticks,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub settings: String,
    pub text: String,
}

/// The output segment for `[from, to)` on the output timeline: every cue showing at some
/// time in it, and an `X-TIMESTAMP-MAP` saying that `from` is MPEG-TS time `mpegts` of the
/// media segments it goes with. Cue times are output-timeline times (`LOCAL` is `from`),
/// so a cue running across a boundary keeps its own start and end in both segments, as
/// RFC 8216 §3.5 asks.
pub fn write_segment(cues: &[TimedCue], from: Ticks, to: Ticks, mpegts: u64) -> String {
    let ms = |t: Ticks| t.0 * 1000 / TICKS_PER_SECOND;
    let mut out = format!(
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{},LOCAL:{}\n",
        mpegts % PTS_WRAP,
        write_time(ms(from))
    );
    for cue in cues.iter().filter(|c| c.start < to && c.end > from) {
        out.push('\n');
        out.push_str(&write_time(ms(cue.start)));
        out.push_str(" --> ");
        out.push_str(&write_time(ms(cue.end)));
        if !cue.settings.is_empty() {
            out.push(' ');
            out.push_str(&cue.settings);
        }
        out.push('\n');
        out.push_str(&cue.text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_without_a_map_count_from_mpeg_ts_zero() {
        // What ffmpeg 5.1's HLS muxer writes: no X-TIMESTAMP-MAP.
        let cues = parse_segment(b"WEBVTT\n\n00:03.580 --> 00:05.580\nCue number 2\n").unwrap();
        assert_eq!(
            cues,
            vec![Cue {
                start: 322_200,
                end: 502_200,
                settings: String::new(),
                text: "Cue number 2".into()
            }]
        );
    }

    #[test]
    fn the_timestamp_map_moves_cues_onto_the_mpeg_ts_clock() {
        let body = "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:10.000,MPEGTS:900000\n\n\
                    7\n00:00:11.000 --> 00:00:12.500 align:start line:90%\n<i>two</i>\nlines\n\n\
                    NOTE a comment\n\n01:00:00.000 --> 01:00:01.000\nlate\n";
        let cues = parse_segment(body.as_bytes()).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!((cues[0].start, cues[0].end), (990_000, 1_125_000));
        assert_eq!(cues[0].settings, "align:start line:90%");
        assert_eq!(cues[0].text, "<i>two</i>\nlines");
        assert_eq!(cues[1].start, 900_000 + (3600 - 10) * 90_000);
    }

    #[test]
    fn times_before_the_map_wrap_like_pts() {
        let cues =
            parse_segment(b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:01.000\n\n00:00.000 --> 00:02.000\nx\n")
                .unwrap();
        assert_eq!(cues[0].start, PTS_WRAP - 90_000);
        assert_eq!(cues[0].end, 90_000);
    }

    #[test]
    fn what_is_not_webvtt_is_refused_with_the_reason() {
        assert!(parse_segment(b"1\n00:00:01,000 --> 00:00:02,000\nsrt\n")
            .unwrap_err()
            .contains("WEBVTT"));
        assert!(parse_segment(b"WEBVTT\n\n00:01.5 --> 00:02.000\nx\n")
            .unwrap_err()
            .contains("00:01.5"));
        assert!(
            parse_segment(b"WEBVTT\n\n99999999999:00:00.000 --> 99999999999:00:01.000\nx\n")
                .unwrap_err()
                .contains("99999999999")
        );
        assert!(parse_segment(b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:x\n\n")
            .unwrap_err()
            .contains("X-TIMESTAMP-MAP"));
        assert!(parse_segment(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
        assert!(parse_segment(&vec![b' '; MAX_SEGMENT_BYTES + 1])
            .unwrap_err()
            .contains("bytes"));
    }

    #[test]
    fn an_output_segment_holds_every_cue_showing_in_it_from_its_own_start() {
        let cue = |s: u64, e: u64, text: &str| TimedCue {
            start: Ticks(s),
            end: Ticks(e),
            settings: String::new(),
            text: text.into(),
        };
        let cues = [
            cue(0, 90_000, "before"),
            cue(150_000, 270_000, "across"),
            cue(200_000, 220_000, "inside"),
            cue(360_000, 400_000, "after"),
        ];
        // The segment's media starts at MPEG-TS time 1_000_000 (wrapped once).
        let out = write_segment(&cues, Ticks(180_000), Ticks(360_000), 1_000_000 + PTS_WRAP);
        assert_eq!(
            out,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1000000,LOCAL:00:00:02.000\n\n\
             00:00:01.666 --> 00:00:03.000\nacross\n\n\
             00:00:02.222 --> 00:00:02.444\ninside\n"
        );
        // What it writes reads back onto the segment's MPEG-TS clock (to the millisecond).
        let back = parse_segment(out.as_bytes()).unwrap();
        let moved = |t: u64| t + 1_000_000 - 180_000;
        assert_eq!((back[0].start, back[0].end), (moved(150_000) - 60, moved(270_000)));
        assert_eq!((back[1].start, back[1].end), (moved(200_000) - 20, moved(220_000) - 40));
    }
}
