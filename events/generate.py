#!/usr/bin/env python3
"""Writes the sample events other than the four hand-written ones (see README.md):
API Gateway REST proxy events for the control and ingest functions and Lambda function
URL events (payload 2.0) for playback, built from one template each so they differ only
in method, path, headers and body. The TS segment is 2 s of ffmpeg test pattern and tone:

    ffmpeg -f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \\
      -t 2 -c:v libx264 -preset veryfast -g 50 -b:v 150k -c:a aac -b:a 64k \\
      -f hls -hls_time 2 -hls_segment_filename 'seg_%d.ts' index.m3u8

Run: python3 events/generate.py SEGMENT.ts (from the repository root)."""

import base64
import copy
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
REST = json.loads((HERE / "control-list-channels.json").read_text())
URL = json.loads((HERE / "playback-multivariant.json").read_text())
BASIC = "Basic " + base64.b64encode(b"USERNAME:PASSWORD").decode()


def rest(method, path, body=None, headers=None, binary=False):
    event = copy.deepcopy(REST)
    head = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    event.update(
        httpMethod=method,
        path=path,
        resource="/in/{proxy+}" if path.startswith("/in/") else "/{proxy+}",
        pathParameters={"proxy": path.lstrip("/")},
        headers=head,
        multiValueHeaders={k: [v] for k, v in head.items()},
        isBase64Encoded=binary,
        body=(base64.b64encode(body).decode() if binary else body),
    )
    event["requestContext"].update(httpMethod=method, path="/v1" + path, resourcePath=event["resource"])
    return event


def url(path, headers=None, method="GET", body=None):
    event = copy.deepcopy(URL)
    event["rawPath"] = path
    event["headers"] = {**event["headers"], **(headers or {})}
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    if body is not None:
        event["body"] = body
    return event


# A SPEKE v1 key request as the playback function sends it (one AES-128 key, period 3).
SPEKE_V1 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<cpix:CPIX id="live-1" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" '
    'xmlns:speke="urn:aws:amazon:com:speke"><cpix:ContentKeyList>'
    '<cpix:ContentKey kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11"/></cpix:ContentKeyList><cpix:DRMSystemList>'
    '<cpix:DRMSystem kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11" systemId="81376844-f976-481e-a84e-cc25d39b0b33">'
    '<cpix:ContentProtectionData/><speke:KeyFormat/><speke:KeyFormatVersions/><speke:ProtectionHeader/>'
    '<cpix:PSSH/><cpix:URIExtXKey/></cpix:DRMSystem></cpix:DRMSystemList><cpix:ContentKeyPeriodList>'
    '<cpix:ContentKeyPeriod id="keyPeriod_2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11" index="3"/>'
    '</cpix:ContentKeyPeriodList><cpix:ContentKeyUsageRuleList>'
    '<cpix:ContentKeyUsageRule kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11">'
    '<cpix:KeyPeriodFilter periodId="keyPeriod_2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11"/>'
    '</cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList></cpix:CPIX>'
)


def keyserver_events():
    host = {"host": "keys0123456789ab.lambda-url.us-east-1.on.aws", "user-agent": "sluice/0.1.0",
            "content-type": "application/xml"}
    return {
        "keyserver-speke-v1.json": url("/speke/v1", host, "POST", SPEKE_V1),
        "keyserver-key.json": url("/keys/live-1/2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11", host),
    }


def ingest(path, body, content_type, auth=BASIC):
    headers = {"Content-Type": content_type, "User-Agent": "Lavf/59.27.100"}
    if auth:
        headers["Authorization"] = auth
    return rest("PUT", f"/in/v2/demo/INGEST_ENDPOINT_ID/{path}", body, headers, binary=True)


def main(segment_path):
    segment = pathlib.Path(segment_path).read_bytes()
    media = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000000,\nseg_0.ts\n"
    json_headers = {"Content-Type": "application/json"}
    events = {
        "control-create-origin-endpoint.json": rest(
            "POST", "/origin_endpoints",
            json.dumps({"channelId": "demo", "id": "demo-hls", "manifestName": "index",
                        "hlsPackage": {"segmentDurationSeconds": 2}}),
            json_headers),
        "control-describe-missing-channel.json": rest("GET", "/channels/no-such-channel"),
        "control-create-channel-malformed.json": rest("POST", "/channels", '{"id": "demo"', json_headers),
        "ingest-put-segment.json": ingest("360p/seg_0.ts", segment, "video/mp2t"),
        "ingest-put-media-playlist.json": ingest("360p/index.m3u8", media, "application/vnd.apple.mpegurl"),
        "ingest-put-no-credentials.json": ingest("360p/seg_1.ts", segment, "video/mp2t", auth=None),
        "ingest-put-traversal.json": ingest("360p/%2e%2e/%2e%2e/escape.ts", segment, "video/mp2t"),
        "playback-media-playlist.json": url("/out/v1/demo-hls/index_360p-seg.m3u8"),
        "playback-segment.json": url("/out/v1/demo-hls/index_360p-seg_133200.ts"),
        "playback-unknown-endpoint.json": url("/out/v1/no-such-endpoint/index.m3u8"),
        "playback-not-a-file.json": url("/out/v1/demo-hls/secrets.txt"),
        **keyserver_events(),
    }
    for name, event in events.items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n")
        print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1])
