"""The control API subset of the first path, driven through boto3 and aws-cli exactly as
operators script MediaPackage: channels and HLS origin endpoints, error classes as
botocore parses them. Runs on the local store and on the AWS adapters (moto)."""

import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_channel_and_endpoint_round_trips(server):
    mp = server.mediapackage()
    created = mp.create_channel(Id="ops-1", Description="first", Tags={"team": "video"})
    assert created["Id"] == "ops-1" and created["Description"] == "first"
    assert created["Arn"].startswith("arn:aws:mediapackage:us-east-1:") and ":channels/" in created["Arn"]
    assert created["Tags"] == {"team": "video"}
    ingest = created["HlsIngest"]["IngestEndpoints"]
    assert len(ingest) == 2 and ingest[0]["Id"] != ingest[1]["Id"]
    for e in ingest:
        assert e["Url"] == f"{server.base}/in/v2/ops-1/{e['Id']}/channel"
        assert len(e["Username"]) >= 16 and len(e["Password"]) >= 16
    assert ingest[0]["Password"] != ingest[1]["Password"]
    assert created["Arn"].endswith(ingest[0]["Id"])  # first ingest endpoint id = channel GUID

    described = mp.describe_channel(Id="ops-1")
    for key in ("Arn", "Id", "Description", "HlsIngest", "CreatedAt", "Tags"):
        assert described[key] == created[key]

    mp.create_channel(Id="ops-2")
    assert [c["Id"] for c in mp.list_channels()["Channels"]] == ["ops-1", "ops-2"]
    page = mp.list_channels(MaxResults=1)
    assert [c["Id"] for c in page["Channels"]] == ["ops-1"]
    assert [c["Id"] for c in mp.list_channels(MaxResults=1, NextToken=page["NextToken"])["Channels"]] == ["ops-2"]

    endpoint = mp.create_origin_endpoint(
        ChannelId="ops-1", Id="ops-1-hls", Description="hls",
        HlsPackage={"SegmentDurationSeconds": 6, "PlaylistWindowSeconds": 60, "ProgramDateTimeIntervalSeconds": 6, "PlaylistType": "EVENT"},
    )
    assert endpoint["Url"] == f"{server.base}/out/v1/ops-1-hls/index.m3u8"
    assert endpoint["ManifestName"] == "index" and endpoint["ChannelId"] == "ops-1"
    assert endpoint["HlsPackage"]["SegmentDurationSeconds"] == 6
    assert endpoint["HlsPackage"]["PlaylistType"] == "EVENT"
    assert ":origin_endpoints/" in endpoint["Arn"]
    assert mp.describe_origin_endpoint(Id="ops-1-hls")["HlsPackage"] == endpoint["HlsPackage"]
    mp.create_origin_endpoint(ChannelId="ops-2", Id="ops-2-hls", ManifestName="live", HlsPackage={})
    assert [e["Id"] for e in mp.list_origin_endpoints()["OriginEndpoints"]] == ["ops-1-hls", "ops-2-hls"]
    assert [e["Id"] for e in mp.list_origin_endpoints(ChannelId="ops-2")["OriginEndpoints"]] == ["ops-2-hls"]
    assert mp.describe_origin_endpoint(Id="ops-2-hls")["Url"].endswith("/out/v1/ops-2-hls/live.m3u8")

    code, message, status = error_of(mp.delete_channel, Id="ops-1")
    assert (code, status) == ("UnprocessableEntityException", 422) and "ops-1-hls" in message

    assert mp.delete_origin_endpoint(Id="ops-1-hls")["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert mp.delete_channel(Id="ops-1")["ResponseMetadata"]["HTTPStatusCode"] == 202
    code, _, status = error_of(mp.describe_channel, Id="ops-1")
    assert (code, status) == ("NotFoundException", 404)
    code, _, status = error_of(mp.describe_origin_endpoint, Id="ops-1-hls")
    assert (code, status) == ("NotFoundException", 404)


def test_errors_name_the_problem(server):
    mp = server.mediapackage()
    mp.create_channel(Id="errs")
    code, message, status = error_of(mp.create_channel, Id="errs")
    assert (code, status) == ("UnprocessableEntityException", 422) and "already exists" in message
    code, message, _ = error_of(mp.create_channel, Id="bad id!")
    assert code == "UnprocessableEntityException" and "bad id!" in message
    code, message, _ = error_of(mp.describe_channel, Id="missing")
    assert code == "NotFoundException" and "missing" in message

    # Settings Sluice does not implement yet are refused, naming the field.
    code, message, _ = error_of(mp.create_origin_endpoint, ChannelId="errs", Id="e1", CmafPackage={"SegmentDurationSeconds": 2})
    assert code == "UnprocessableEntityException" and "cmafPackage" in message
    code, message, _ = error_of(
        mp.create_origin_endpoint, ChannelId="errs", Id="e1", HlsPackage={"AdMarkers": "SCTE35_ENHANCED"}
    )
    assert code == "UnprocessableEntityException" and "hlsPackage.adMarkers" in message
    code, message, _ = error_of(mp.create_origin_endpoint, ChannelId="errs", Id="e1", HlsPackage={}, TimeDelaySeconds=10)
    assert "timeDelaySeconds" in message
    code, message, _ = error_of(mp.create_origin_endpoint, ChannelId="errs", Id="e1", HlsPackage={"PlaylistWindowSeconds": 1})
    assert "playlistWindowSeconds" in message
    code, message, _ = error_of(mp.create_origin_endpoint, ChannelId="nope", Id="e1", HlsPackage={})
    assert code == "UnprocessableEntityException" and "nope" in message
    # The no-op values of unimplemented settings are accepted.
    mp.create_origin_endpoint(ChannelId="errs", Id="e2", HlsPackage={"AdMarkers": "NONE", "IncludeIframeOnlyStream": False})
    code, message, _ = error_of(mp.create_origin_endpoint, ChannelId="errs", Id="e2", HlsPackage={})
    assert "already exists" in message
    code, message, _ = error_of(mp.list_channels, NextToken="%%%not-a-token")
    assert code == "UnprocessableEntityException" and "nextToken" in message


def test_aws_cli_smoke(local_server):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    base = ["aws", "mediapackage", "--endpoint-url", local_server.base, "--output", "json"]
    out = subprocess.run(base + ["create-channel", "--id", "cli-1"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Id"] == "cli-1"
    out = subprocess.run(base + ["list-channels"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [c["Id"] for c in json.loads(out.stdout)["Channels"]] == ["cli-1"]
    out = subprocess.run(base + ["describe-channel", "--id", "nope"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0 and "NotFoundException" in out.stderr


def test_pagination_walks_every_page_and_refuses_forged_tokens(server):
    mp = server.mediapackage()
    ids = [f"page-{i}" for i in range(5)]
    for i in ids:
        mp.create_channel(Id=i)
        mp.create_origin_endpoint(ChannelId=i, Id=f"{i}-hls", HlsPackage={})
    seen, pages, token = [], 0, None
    while True:
        kwargs = {"MaxResults": 2, **({"NextToken": token} if token else {})}
        page = mp.list_channels(**kwargs)
        pages += 1
        seen += [c["Id"] for c in page["Channels"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ids and pages == 3
    # boto3's own paginator walks the same pages.
    walked = [c["Id"] for p in mp.get_paginator("list_origin_endpoints").paginate(PaginationConfig={"PageSize": 2}) for c in p["OriginEndpoints"]]
    assert walked == [f"{i}-hls" for i in ids]

    token = mp.list_channels(MaxResults=2)["NextToken"]
    last, mac = token.split(".")
    import base64
    forged = base64.urlsafe_b64encode(b"page-3").decode().rstrip("=") + "." + mac
    code, message, status = error_of(mp.list_channels, MaxResults=2, NextToken=forged)
    assert (code, status) == ("UnprocessableEntityException", 422) and "nextToken" in message
    # A channel-list token is not an endpoint-list token.
    code, _, _ = error_of(mp.list_origin_endpoints, MaxResults=2, NextToken=token)
    assert code == "UnprocessableEntityException"


def test_concurrent_creates_of_one_id_have_one_winner(server):
    import concurrent.futures

    def attempt(i):
        mp = server.mediapackage()
        try:
            mp.create_channel(Id="race", Description=f"attempt {i}")
            return "created"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("created") == 1, outcomes
    assert set(outcomes) == {"created", "UnprocessableEntityException"}
    winner = outcomes.index("created")
    assert server.mediapackage().describe_channel(Id="race")["Description"] == f"attempt {winner}"


def test_arns_name_the_configured_region_and_account(make_server):
    server = make_server(["--region", "eu-west-3", "--account-id", "123456789012"])
    arn = server.mediapackage().create_channel(Id="arn")["Arn"]
    assert arn.startswith("arn:aws:mediapackage:eu-west-3:123456789012:channels/")
