#!/usr/bin/env bash
# Makes the demo loop that `sluice-local --demo` pushes through ingest: 10 s of a moving
# test pattern with a tone, two renditions (360p, 180p) of five 2-second MPEG-TS segments
# each (H.264 main + AAC-LC, keyframe every 2 s exactly). Both renditions come from one
# encode so segment N starts at the same PTS in each. Needs ffmpeg; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf 360p 180p master.m3u8
mkdir -p 360p 180p
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25" \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" \
  -t 10 \
  -filter_complex "[0:v]split=2[a][b];[b]scale=320:180[b2]" \
  -map "[a]" -map "[b2]" -map 1:a -map 1:a \
  -c:v libx264 -profile:v main -preset medium -threads 1 -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v:0 400k -maxrate:v:0 440k -bufsize:v:0 800k \
  -b:v:1 150k -maxrate:v:1 165k -bufsize:v:1 300k \
  -c:a aac -b:a 64k -ac 2 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
  -master_pl_name master.m3u8 -var_stream_map "v:0,a:0,name:360p v:1,a:1,name:180p" \
  -hls_segment_filename "%v/seg_%05d.ts" "%v/index.m3u8"
