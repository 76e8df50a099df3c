"""Control operations that change resources: UpdateChannel, UpdateOriginEndpoint (the
next manifest follows), credential rotation (the old password stops working at once),
ConfigureLogs and tags. Local store and AWS adapters (moto)."""

import base64
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT

SEGMENTS = [(ROOT / "infra" / "local" / "demo" / "360p" / f"seg_{i:05d}.ts").read_bytes() for i in range(5)]


def put(url, body, user, password):
    req = urllib.request.Request(url, data=body, method="PUT")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def code_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_rotation_revokes_the_old_password_at_once(server):
    mp = server.mediapackage()
    channel = mp.create_channel(Id="rot")
    old = channel["HlsIngest"]["IngestEndpoints"][1]
    folder = old["Url"][: -len("channel")]
    assert put(folder + "360p/seg_00000.ts", SEGMENTS[0], old["Username"], old["Password"]) == 201

    rotated = mp.rotate_ingest_endpoint_credentials(Id="rot", IngestEndpointId=old["Id"])
    new = rotated["HlsIngest"]["IngestEndpoints"][1]
    assert new["Id"] == old["Id"] and new["Url"] == old["Url"]
    assert (new["Username"], new["Password"]) != (old["Username"], old["Password"])
    # The other ingest endpoint is untouched.
    assert rotated["HlsIngest"]["IngestEndpoints"][0] == channel["HlsIngest"]["IngestEndpoints"][0]

    assert put(folder + "360p/seg_00001.ts", SEGMENTS[1], old["Username"], old["Password"]) == 401
    assert put(folder + "360p/seg_00001.ts", SEGMENTS[1], new["Username"], new["Password"]) == 201
    assert server.indexed_paths("rot") == ["360p/seg_00000.ts", "360p/seg_00001.ts"]

    first = channel["HlsIngest"]["IngestEndpoints"][0]
    after = mp.rotate_channel_credentials(Id="rot")["HlsIngest"]["IngestEndpoints"][0]
    assert after["Id"] == first["Id"] and after["Password"] != first["Password"]
    assert code_of(mp.rotate_ingest_endpoint_credentials, Id="rot", IngestEndpointId="nope")[0] == "NotFoundException"


def test_updates_take_effect_on_the_next_manifest(server):
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="upd", Description="before")["HlsIngest"]["IngestEndpoints"][0]
    assert mp.update_channel(Id="upd", Description="after")["Description"] == "after"
    assert mp.describe_channel(Id="upd")["Description"] == "after"
    assert mp.describe_channel(Id="upd")["HlsIngest"] == mp.list_channels()["Channels"][0]["HlsIngest"]

    endpoint = mp.create_origin_endpoint(
        ChannelId="upd", Id="upd-hls", HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 10}
    )
    folder = ingest["Url"][: -len("channel")]
    for i, segment in enumerate(SEGMENTS):
        assert put(folder + f"360p/seg_{i:05d}.ts", segment, ingest["Username"], ingest["Password"]) == 201
    media = endpoint["Url"].replace("index.m3u8", "index_360p-seg.m3u8")
    status, body = get(media)
    assert status == 200 and body.count("#EXTINF") == 5 and "PROGRAM-DATE-TIME" not in body

    updated = mp.update_origin_endpoint(
        Id="upd-hls", ManifestName="live",
        HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 6, "ProgramDateTimeIntervalSeconds": 2},
    )
    assert updated["Url"].endswith("/out/v1/upd-hls/live.m3u8")
    assert updated["HlsPackage"]["PlaylistWindowSeconds"] == 6
    assert get(media)[0] == 404  # the old manifest name is gone
    status, body = get(updated["Url"].replace("live.m3u8", "live_360p-seg.m3u8"))
    assert status == 200 and body.count("#EXTINF") == 3 and body.count("#EXT-X-PROGRAM-DATE-TIME") == 3

    assert code_of(mp.update_origin_endpoint, Id="upd-hls", TimeDelaySeconds=10)[1].startswith("timeDelaySeconds")
    assert code_of(mp.update_origin_endpoint, Id="nope", Description="x")[0] == "NotFoundException"


def test_configure_logs(server):
    mp = server.mediapackage()
    mp.create_channel(Id="logs")
    out = mp.configure_logs(Id="logs", EgressAccessLogs={}, IngressAccessLogs={"LogGroupName": "/aws/MediaPackage/mine"})
    assert out["EgressAccessLogs"] == {"LogGroupName": "/aws/MediaPackage/EgressAccessLogs"}
    assert out["IngressAccessLogs"] == {"LogGroupName": "/aws/MediaPackage/mine"}
    out = mp.configure_logs(Id="logs", IngressAccessLogs={})
    assert "EgressAccessLogs" not in out  # omitted: disabled
    assert mp.describe_channel(Id="logs")["IngressAccessLogs"]["LogGroupName"] == "/aws/MediaPackage/IngressAccessLogs"
    code, message = code_of(mp.configure_logs, Id="logs", EgressAccessLogs={"LogGroupName": "elsewhere"})
    assert code == "UnprocessableEntityException" and "/aws/MediaPackage/" in message


def test_tag_round_trips(server):
    mp = server.mediapackage()
    channel = mp.create_channel(Id="tagged", Tags={"env": "test"})
    endpoint = mp.create_origin_endpoint(ChannelId="tagged", Id="tagged-hls", HlsPackage={})
    for arn, initial in ((channel["Arn"], {"env": "test"}), (endpoint["Arn"], {})):
        assert mp.list_tags_for_resource(ResourceArn=arn)["Tags"] == initial
        mp.tag_resource(ResourceArn=arn, Tags={"team": "video", "cost": "live"})
        assert mp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {**initial, "team": "video", "cost": "live"}
        mp.untag_resource(ResourceArn=arn, TagKeys=["cost", "env"])
        assert mp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "video"}
    assert mp.describe_channel(Id="tagged")["Tags"] == {"team": "video"}
    assert mp.describe_origin_endpoint(Id="tagged-hls")["Tags"] == {"team": "video"}
    code, message = code_of(mp.tag_resource, ResourceArn=channel["Arn"], Tags={"aws:owner": "x"})
    assert code == "UnprocessableEntityException" and "aws:" in message
    code, message = code_of(mp.tag_resource, ResourceArn=channel["Arn"], Tags={f"k{i}": "v" for i in range(50)})
    assert "at most 50" in message
    missing = channel["Arn"].rsplit("/", 1)[0] + "/" + "0" * 32
    assert code_of(mp.list_tags_for_resource, ResourceArn=missing)[0] == "NotFoundException"
    mp.delete_origin_endpoint(Id="tagged-hls")
    assert code_of(mp.list_tags_for_resource, ResourceArn=endpoint["Arn"])[0] == "NotFoundException"
