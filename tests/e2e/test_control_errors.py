"""Every MediaPackage error class as botocore parses it, from real causes: quotas (429
TooManyRequestsException, MediaPackage's way of reporting a full quota), corrupt stored
data (500 InternalServerErrorException), the storage service going away (503
ServiceUnavailableException). 403/404/422 are covered by the other control tests."""


import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from botocore_shapes import validate_responses
from conftest import Server, aws_env, start_moto, stop_moto

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(server):
    return validate_responses(boto3.client(
        "mediapackage", endpoint_url=server.base, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=NO_RETRIES,
    ))


def error(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_quotas_are_429_too_many_requests(make_server):
    server = make_server(["--max-channels", "2", "--max-endpoints-per-channel", "1"])
    mp = client(server)
    mp.create_channel(Id="q1")
    mp.create_channel(Id="q2")
    code, status, message = error(mp.create_channel, Id="q3")
    assert (code, status) == ("TooManyRequestsException", 429) and "at most 2 channels" in message
    mp.create_origin_endpoint(ChannelId="q1", Id="q1-a", HlsPackage={})
    code, status, message = error(mp.create_origin_endpoint, ChannelId="q1", Id="q1-b", HlsPackage={})
    assert (code, status) == ("TooManyRequestsException", 429) and "per channel" in message
    mp.delete_channel(Id="q2")
    mp.create_channel(Id="q3")  # room again


def test_storage_faults_are_500_and_503():
    moto, endpoint = start_moto()
    server = None
    try:
        env = aws_env(endpoint, "faults")
        server = Server(args=["--create-aws-resources"], env=env)
        mp = client(server)
        mp.create_channel(Id="fine")

        # A catalog item that is not a channel document: an internal error, not a crash.
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        ddb.put_item(TableName=env["SLUICE_CATALOG_TABLE"],
                     Item={"pk": {"S": "channel"}, "sk": {"S": "broken"}, "doc": {"S": "{not json"}})
        code, status, message = error(mp.describe_channel, Id="broken")
        assert (code, status) == ("InternalServerErrorException", 500) and "broken" in message
        assert mp.describe_channel(Id="fine")["Id"] == "fine"

        # DynamoDB and S3 go away: the control API says the service is unavailable.
        moto.terminate()
        moto.wait(10)
        code, status, message = error(mp.describe_channel, Id="fine")
        assert (code, status) == ("ServiceUnavailableException", 503) and "storage is unavailable" in message
    finally:
        if server:
            server.stop()
        stop_moto(moto)
