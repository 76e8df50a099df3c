"""Optional SigV4 verification of the control API (sluice-local --control-credentials):
boto3 and aws-cli signing with the configured key get through, including ARN paths,
query strings and bodies; a wrong secret, an unknown key or no signature get 403
ForbiddenException. Ingest and playback are not affected."""

import os
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from botocore_shapes import validate_responses

KEY, SECRET = "AKIDSLUICETEST", "s3cr3t/with+chars"


@pytest.fixture
def signed_server(make_server):
    return make_server(["--control-credentials", f"{KEY}:{SECRET},OTHERKEY:other"])


def client(server, key, secret):
    return validate_responses(boto3.client(
        "mediapackage", endpoint_url=server.base, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
    ))


def test_signed_requests_pass_and_bad_ones_get_403(signed_server):
    mp = client(signed_server, KEY, SECRET)
    channel = mp.create_channel(Id="sig", Description="signed body", Tags={"a b": "c/d"})
    mp.create_origin_endpoint(ChannelId="sig", Id="sig-hls", HlsPackage={"SegmentDurationSeconds": 2})
    assert [c["Id"] for c in mp.list_channels(MaxResults=5)["Channels"]] == ["sig"]
    # ARN in the path (encoded ':' and '/'), repeated query keys.
    mp.tag_resource(ResourceArn=channel["Arn"], Tags={"x": "1", "y": "2"})
    mp.untag_resource(ResourceArn=channel["Arn"], TagKeys=["x", "a b"])
    assert mp.list_tags_for_resource(ResourceArn=channel["Arn"])["Tags"] == {"y": "2"}
    assert client(signed_server, "OTHERKEY", "other").describe_channel(Id="sig")["Id"] == "sig"

    for key, secret, expected in ((KEY, "wrong", "does not match"), ("UNKNOWN", SECRET, "invalid")):
        with pytest.raises(ClientError) as info:
            client(signed_server, key, secret).list_channels()
        err = info.value.response
        assert err["Error"]["Code"] == "ForbiddenException" and err["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert expected in err["Error"]["Message"]

    try:
        urllib.request.urlopen(signed_server.base + "/channels", timeout=10)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 403

    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        ["aws", "mediapackage", "--endpoint-url", signed_server.base, "describe-origin-endpoint", "--id", "sig-hls"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    out = subprocess.run(
        ["aws", "mediapackage", "--endpoint-url", signed_server.base, "list-channels"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode != 0 and "ForbiddenException" in out.stderr

    # Ingest and playback do not use SigV4.
    try:
        urllib.request.urlopen(signed_server.base + "/out/v1/sig-hls/index.m3u8", timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_signing_helper_scopes_boto3_and_aws_cli_to_execute_api(make_server, tmp_path):
    """infra/aws/sluice_signing.py, as documented for the deployed (IAM) control API."""
    import json
    import sys

    from conftest import ROOT

    server = make_server(["--control-credentials", f"{KEY}:{SECRET}"])
    sys.path.insert(0, str(ROOT / "infra" / "aws"))
    import sluice_signing

    mp = sluice_signing.register(client(server, KEY, SECRET))
    mp.create_channel(Id="apigw")
    config = tmp_path / "aws-config"
    config.write_text("[plugins]\nsluice = sluice_signing\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(config), "PYTHONPATH": str(ROOT / "infra" / "aws")}
    out = subprocess.run(["aws", "mediapackage", "--endpoint-url", server.base, "list-channels"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [c["Id"] for c in json.loads(out.stdout)["Channels"]] == ["apigw"]
    services = [e["fields"]["service"] for e in server.logs()
                if e.get("fields", {}).get("message") == "control request signature verified"]
    assert services == ["execute-api", "execute-api"], services
