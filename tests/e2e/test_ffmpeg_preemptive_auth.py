"""The README's advice for encoders behind API Gateway: ffmpeg sending Basic credentials
up front with `-headers` (no user:password in the URL) gets every upload accepted on the
first try, with no 401 round trip at all."""

import base64
import re
import subprocess
import time
import urllib.parse


def test_ffmpeg_with_an_authorization_header_never_sees_a_401(local_server, tmp_path):
    mp = local_server.mediapackage()
    ingest = mp.create_channel(Id="preauth")["HlsIngest"]["IngestEndpoints"][0]
    token = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    folder = ingest["Url"][: -len("channel")]
    log = tmp_path / "ffmpeg.log"
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-t", "8", "-c:v", "libx264", "-g", "50", "-f", "hls",
         "-hls_time", "2", "-method", "PUT", "-headers", f"Authorization: Basic {token}\r\n",
         "-hls_segment_filename", folder + "v/seg_%05d.ts", folder + "v/index.m3u8"],
        stderr=open(log, "w"), timeout=60,
    )
    assert result.returncode == 0, log.read_text()[-1500:]
    time.sleep(1)
    path = urllib.parse.urlparse(folder).path
    sent = sorted(urllib.parse.urlparse(u).path[len(path):]
                  for u in re.findall(r"Opening '([^']+\.ts)' for writing", log.read_text()))
    assert len(sent) == 4, sent
    assert sorted(local_server.indexed_paths("preauth")) == sent
    rejected = [e for e in local_server.logs() if e.get("fields", {}).get("message") == "ingest rejected"]
    assert rejected == [], rejected
