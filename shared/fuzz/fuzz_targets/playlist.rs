//! What ingest does with an uploaded playlist: m3u8-rs parses it, then the rendition of a
//! media playlist is named from its first segment URI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m3u8_rs::Playlist::MediaPlaylist(media)) = m3u8_rs::parse_playlist_res(data) {
        for segment in media.segments.iter().take(3) {
            let _ = sluice::ingest::rendition_id(&segment.uri);
        }
    }
});
