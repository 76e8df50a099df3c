"""Endpoint access control as MediaPackage v1 has it, on both stores: `authorization`
(the CDN sends X-MediaPackage-CDNIdentifier, checked against the current and previous
versions of a Secrets Manager secret, in moto for the AWS run and `secrets.json` for the
local store), `whitelist` (IPv4 CIDR blocks, here against the loopback peer) and
`origination: DENY`. Every refusal is 403 with a reason; the settings round-trip through
boto3 (responses checked against botocore's model) and bad values are 422."""

import json
import pathlib
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import pytest

ROLE = "arn:aws:iam::000000000000:role/MediaPackageSecrets"


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class SecretStore:
    """The CDN identifier secret: Secrets Manager in moto, or the local store's file."""

    def __init__(self, srv, moto_url):
        self.srv = srv
        if srv.store == "aws":
            self.sm = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test")
            name = f"MediaPackage/cdn-{pathlib.Path(srv.dir.name).name}"
            self.arn = self.sm.create_secret(Name=name, SecretString=self.value("first"))["ARN"]
        else:
            self.path = pathlib.Path(srv.dir.name) / "data" / "secrets.json"
            self.arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:MediaPackage/cdn-AbCdEf"
            self.versions = [self.value("first")]
            self.path.write_text(json.dumps({self.arn: self.versions}))

    @staticmethod
    def value(identifier):
        return json.dumps({"MediaPackageCDNIdentifier": identifier})

    def rotate(self, identifier):
        if self.srv.store == "aws":
            self.sm.put_secret_value(SecretId=self.arn, SecretString=self.value(identifier))
        else:
            self.versions = [self.value(identifier), self.versions[0]]
            self.path.write_text(json.dumps({self.arn: self.versions}))


@pytest.fixture
def demo(make_server, request):
    srv = make_server(["--demo", "--secret-cache-seconds", "0"])
    mp = srv.mediapackage()
    deadline = time.time() + 30
    while time.time() < deadline and not any(c["Id"] == "demo" for c in mp.list_channels()["Channels"]):
        time.sleep(0.3)
    open_url = mp.create_origin_endpoint(ChannelId="demo", Id="open", ManifestName="index",
                                         HlsPackage={})["Url"]
    media_url = open_url.replace("index.m3u8", "index_360p-seg.m3u8")
    deadline = time.time() + 30
    while time.time() < deadline and get(media_url)[0] != 200:
        time.sleep(0.3)
    assert get(media_url)[0] == 200, "the demo channel never became playable"
    srv.moto_url = request.getfixturevalue("moto") if srv.store == "aws" else None
    return srv


def endpoint(mp, id, **access):
    return mp.create_origin_endpoint(ChannelId="demo", Id=id, ManifestName="index", HlsPackage={}, **access)


def test_cdn_identifier_is_checked_against_current_and_previous_secret(demo):
    mp = demo.mediapackage()
    secret = SecretStore(demo, demo.moto_url)
    created = endpoint(mp, "cdn", Authorization={"CdnIdentifierSecret": secret.arn, "SecretsRoleArn": ROLE})
    assert created["Authorization"] == {"CdnIdentifierSecret": secret.arn, "SecretsRoleArn": ROLE}
    url = created["Url"]

    status, body = get(url)
    assert status == 403 and "X-MediaPackage-CDNIdentifier" in body, (status, body)
    status, body = get(url, {"X-MediaPackage-CDNIdentifier": "wrong"})
    assert status == 403 and "does not match" in body, (status, body)
    assert get(url, {"X-MediaPackage-CDNIdentifier": "first"})[0] == 200
    # Media playlists and segments are guarded too, not only the multivariant playlist.
    media = next(l for l in get(url, {"X-MediaPackage-CDNIdentifier": "first"})[1].splitlines()
                 if l and not l.startswith("#"))
    media_url = url.rsplit("/", 1)[0] + "/" + media
    assert get(media_url)[0] == 403
    status, body = get(media_url, {"X-MediaPackage-CDNIdentifier": "first"})
    assert status == 200, (status, body)

    # Rotation: the new value works at once, the previous one still works, older ones do not.
    secret.rotate("second")
    assert get(url, {"X-MediaPackage-CDNIdentifier": "second"})[0] == 200
    assert get(url, {"X-MediaPackage-CDNIdentifier": "first"})[0] == 200
    secret.rotate("third")
    assert get(url, {"X-MediaPackage-CDNIdentifier": "third"})[0] == 200
    assert get(url, {"X-MediaPackage-CDNIdentifier": "second"})[0] == 200
    assert get(url, {"X-MediaPackage-CDNIdentifier": "first"})[0] == 403
    # An update that leaves authorization out keeps it.
    mp.update_origin_endpoint(Id="cdn", Description="still guarded")
    assert get(url)[0] == 403


def test_missing_secret_fails_closed(demo):
    mp = demo.mediapackage()
    missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:MediaPackage/none-AbCdEf"
    url = endpoint(mp, "nosecret", Authorization={"CdnIdentifierSecret": missing, "SecretsRoleArn": ROLE})["Url"]
    status, body = get(url, {"X-MediaPackage-CDNIdentifier": "anything"})
    assert status == 403 and "could not be checked" in body, (status, body)


def test_whitelist_and_deny(demo):
    mp = demo.mediapackage()
    outside = endpoint(mp, "tenonly", Whitelist=["10.0.0.0/8"])
    assert outside["Whitelist"] == ["10.0.0.0/8"]
    status, body = get(outside["Url"])
    assert status == 403 and "127.0.0.1 is not in the whitelist" in body, (status, body)

    inside = endpoint(mp, "loopback", Whitelist=["10.0.0.0/8", "127.0.0.0/8"])
    assert get(inside["Url"])[0] == 200
    # Narrowing the list later takes effect on the next request.
    mp.update_origin_endpoint(Id="loopback", Whitelist=["192.0.2.0/24"])
    assert get(inside["Url"])[0] == 403

    denied = endpoint(mp, "denied", Origination="DENY")
    assert denied["Origination"] == "DENY"
    status, body = get(denied["Url"])
    assert status == 403 and "DENY" in body, (status, body)
    mp.update_origin_endpoint(Id="denied", Origination="ALLOW")
    assert get(denied["Url"])[0] == 200
    assert mp.describe_origin_endpoint(Id="denied")["Origination"] == "ALLOW"


@pytest.mark.parametrize("access, field", [
    ({"Whitelist": ["10.0.0.0/33"]}, "whitelist[0]"),
    ({"Whitelist": ["2001:db8::/32"]}, "whitelist[0]"),
    ({"Origination": "MAYBE"}, "origination"),
    ({"Authorization": {"CdnIdentifierSecret": "my-secret", "SecretsRoleArn": ROLE}}, "cdnIdentifierSecret"),
    ({"Authorization": {"CdnIdentifierSecret": "arn:aws:secretsmanager:us-east-1:000000000000:secret:x",
                        "SecretsRoleArn": "role"}}, "secretsRoleArn"),
])
def test_bad_access_settings_are_422_naming_the_field(local_server, access, field):
    mp = local_server.mediapackage()
    mp.create_channel(Id="c")
    # boto3 would refuse some of these itself: send them as they are.
    client = boto3.client("mediapackage", endpoint_url=local_server.base, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test",
                          config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.create_origin_endpoint(ChannelId="c", Id="e", HlsPackage={}, **access)
    assert e.value.response["Error"]["Code"] == "UnprocessableEntityException"
    assert field in e.value.response["Error"]["Message"]
