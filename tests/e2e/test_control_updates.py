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


def test_harvest_jobs_are_validated_recorded_and_say_they_cannot_run(server):
    mp = server.mediapackage()
    mp.create_channel(Id="hv")
    mp.create_origin_endpoint(ChannelId="hv", Id="hv-hls", HlsPackage={})
    mp.create_channel(Id="hv2")
    mp.create_origin_endpoint(ChannelId="hv2", Id="hv2-hls", HlsPackage={})
    destination = {"BucketName": "vod", "ManifestKey": "shows/one/index.m3u8", "RoleArn": "arn:aws:iam::123456789012:role/harvest"}
    job = mp.create_harvest_job(
        Id="job-1", OriginEndpointId="hv-hls", StartTime="2026-01-01T10:00:00+00:00",
        EndTime="2026-01-01T10:30:00+00:00", S3Destination=destination,
    )
    assert job["Status"] == "FAILED" and job["ChannelId"] == "hv"
    assert job["Arn"].endswith(":harvest_jobs/job-1")
    reason = job["ResponseMetadata"]["HTTPHeaders"]["x-sluice-status-reason"]
    assert "cannot run harvest jobs yet" in reason
    assert mp.describe_harvest_job(Id="job-1")["S3Destination"] == destination
    mp.create_harvest_job(Id="job-2", OriginEndpointId="hv2-hls", StartTime="1767225600", EndTime="1767229200", S3Destination=destination)

    assert [j["Id"] for j in mp.list_harvest_jobs()["HarvestJobs"]] == ["job-1", "job-2"]
    assert [j["Id"] for j in mp.list_harvest_jobs(IncludeChannelId="hv2")["HarvestJobs"]] == ["job-2"]
    assert mp.list_harvest_jobs(IncludeStatus="SUCCEEDED")["HarvestJobs"] == []
    first = mp.list_harvest_jobs(MaxResults=1)
    assert [j["Id"] for j in first["HarvestJobs"]] == ["job-1"]
    assert [j["Id"] for j in mp.list_harvest_jobs(MaxResults=1, NextToken=first["NextToken"])["HarvestJobs"]] == ["job-2"]

    bad = [
        ({"EndTime": "2026-01-01T09:00:00+00:00"}, "endTime must be after startTime"),
        ({"EndTime": "2026-01-02T10:00:01+00:00"}, "at most 24 hours"),
        ({"StartTime": "2099-01-01T00:00:00Z", "EndTime": "2099-01-01T01:00:00Z"}, "in the past"),
        ({"StartTime": "yesterday"}, "ISO-8601"),
        ({"OriginEndpointId": "nope"}, "does not exist"),
        ({"Id": "job-1"}, "already exists"),
    ]
    for change, expected in bad:
        args = {"Id": "job-3", "OriginEndpointId": "hv-hls", "StartTime": "2026-01-01T10:00:00+00:00",
                "EndTime": "2026-01-01T10:30:00+00:00", "S3Destination": destination, **change}
        code, message = code_of(mp.create_harvest_job, **args)
        assert code == "UnprocessableEntityException" and expected in message, (change, message)
    assert code_of(mp.describe_harvest_job, Id="job-3")[0] == "NotFoundException"
