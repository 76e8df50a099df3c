"""Observability as CloudWatch and operators see it: with SLUICE_METRICS=emf every accepted
upload and every playback request of a real endpoint writes one embedded-metric-format
line (checked against the EMF rules: each named metric a number at the root, each
dimension a string) with MediaPackage's metric names and dimensions; responses carry
X-MediaPackage-Request-Id, and manifests X-MediaPackage-Manifest-Last-Sequence and
-Last-Updated."""

import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import Server


@pytest.fixture(scope="module")
def demo():
    srv = Server(demo=True, env={"SLUICE_METRICS": "emf"})
    try:
        deadline = time.time() + 30
        while time.time() < deadline and get(srv.demo_url.replace("index.m3u8", "index_360p-seg.m3u8"))[0] != 200:
            time.sleep(0.3)
        yield srv
    finally:
        srv.stop()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def emf_lines(server):
    out = []
    for line in server.out_path.read_text().splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for directive in record["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "Sluice"
                for dimensions in directive["Dimensions"]:
                    assert all(isinstance(record[d], str) for d in dimensions), (dimensions, record)
                for metric in directive["Metrics"]:
                    assert isinstance(record[metric["Name"]], (int, float)), (metric, record)
            out.append(record)
    return out


def dimension_sets(record):
    return [tuple(d) for directive in record["_aws"]["CloudWatchMetrics"] for d in directive["Dimensions"]]


def test_ingress_and_egress_metrics_with_mediapackage_dimensions(demo):
    mp = demo.mediapackage()
    channel = mp.describe_channel(Id="demo")
    ingest_ids = {e["Id"] for e in channel["HlsIngest"]["IngestEndpoints"]}
    media = demo.demo_url.replace("index.m3u8", "index_360p-seg.m3u8")
    status, headers, body = get(media)
    assert status == 200
    segment = [l for l in body.decode().splitlines() if l and not l.startswith("#")][-1]
    assert get(media.rsplit("/", 1)[0] + "/" + segment)[0] == 200
    assert get(demo.demo_url.replace("index.m3u8", "nope.m3u8"))[0] == 404
    assert get(f"{demo.base}/out/v1/no-such-endpoint/index.m3u8")[0] == 404
    time.sleep(0.5)
    lines = emf_lines(demo)

    ingress = [r for r in lines if "IngressBytes" in r]
    assert ingress, "no IngressBytes line"
    assert all(r["Channel"] == "demo" and r["IngestEndpoint"] in ingest_ids for r in ingress)
    assert all(r["IngressBytes"] > 0 and r["IngressResponseTime"] >= 0 for r in ingress)
    assert set(dimension_sets(ingress[0])) == {("Channel",), ("Channel", "IngestEndpoint")}

    egress = [r for r in lines if "EgressRequestCount" in r]
    assert {r["StatusCodeRange"] for r in egress} >= {"2xx", "4xx"}
    assert all(r["Channel"] == "demo" and r["OriginEndpoint"] == "demo-hls" for r in egress), \
        "requests to unknown endpoints make no metrics"
    assert set(dimension_sets(egress[0])) == {
        ("Channel",), ("Channel", "OriginEndpoint"), ("StatusCodeRange",), ("Channel", "StatusCodeRange"),
        ("Channel", "OriginEndpoint", "StatusCodeRange")}
    served = [r for r in egress if r["StatusCodeRange"] == "2xx" and r["EgressBytes"] > 1000]
    assert served, "the segment's bytes are counted"

    active = [r for r in lines if "ActiveInput" in r]
    assert active and all(r["IngestEndpoint"] in ingest_ids and r["OriginEndpoint"] == "demo-hls" for r in active)
    assert dimension_sets(active[0]) == [("IngestEndpoint", "OriginEndpoint")]


def test_request_id_and_manifest_headers(demo):
    media = demo.demo_url.replace("index.m3u8", "index_360p-seg.m3u8")
    status, headers, body = get(media)
    assert status == 200
    assert len(headers["X-MediaPackage-Request-Id"]) == 32
    assert get(media)[1]["X-MediaPackage-Request-Id"] != headers["X-MediaPackage-Request-Id"]
    lines = body.decode().splitlines()
    first = int(next((l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE:")), ":0").split(":")[1])
    listed = sum(1 for l in lines if l and not l.startswith("#"))
    assert int(headers["X-MediaPackage-Manifest-Last-Sequence"]) == first + listed - 1
    updated = int(headers["X-MediaPackage-Manifest-Last-Updated"])
    assert 0 <= time.time() * 1000 - updated < 10_000, "the newest segment arrived within the last seconds"
    assert "X-MediaPackage-Request-Id" in get(f"{demo.base}/out/v1/demo-hls/nope.m3u8")[1]


def access_log_lines(server):
    return [json.loads(l) for l in server.out_path.read_text().splitlines()
            if l.startswith("{") and '"logGroupName"' in l]


ACCESS_LOG_FIELDS = {
    "timestamp", "clientIp", "processingTime", "statusCode", "receivedBytes", "sentBytes", "method",
    "request", "protocol", "userAgent", "account", "channelId", "channelArn", "domainName", "requestId",
    "endpointId", "endpointArn", "logGroupName"}


def test_access_logs_follow_configure_logs(demo):
    mp = demo.mediapackage()
    assert not access_log_lines(demo), "no access logs before ConfigureLogs"
    channel = mp.configure_logs(Id="demo", EgressAccessLogs={}, IngressAccessLogs={"LogGroupName": "/aws/MediaPackage/SluiceIngest"})
    assert channel["EgressAccessLogs"] == {"LogGroupName": "/aws/MediaPackage/EgressAccessLogs"}
    endpoint = mp.describe_origin_endpoint(Id="demo-hls")
    media = demo.demo_url.replace("index.m3u8", "index_360p-seg.m3u8") + "?token=x"
    request = urllib.request.Request(media, headers={"User-Agent": "access-log-test/1.0"})
    # Playback reads log settings at most every 5 s; the feeder uploads every 2 s.
    deadline = time.time() + 15
    egress = ingress = []
    while time.time() < deadline and not (egress and ingress):
        with urllib.request.urlopen(request, timeout=10) as r:
            sent_id, sent_len = r.headers["X-MediaPackage-Request-Id"], len(r.read())
        time.sleep(0.5)
        lines = access_log_lines(demo)
        egress = [l for l in lines if l["logGroupName"] == "/aws/MediaPackage/EgressAccessLogs"
                  and l["requestId"] == sent_id]
        ingress = [l for l in lines if l["logGroupName"] == "/aws/MediaPackage/SluiceIngest"]
    assert egress, "the playback request was not logged"
    assert ingress, "no ingest request was logged"
    for line in egress + ingress:
        assert set(line) == ACCESS_LOG_FIELDS, set(line) ^ ACCESS_LOG_FIELDS
        assert line["channelId"] == "demo" and line["channelArn"] == channel["Arn"]
        assert line["clientIp"] == "127.0.0.1" and line["protocol"] == "HTTP/1.1"
        assert isinstance(line["statusCode"], str) and line["processingTime"] >= 0
        assert line["timestamp"].endswith("Z") and len(line["timestamp"].split(".")[1]) == 7  # µs + Z
    out = egress[0]
    assert out["method"] == "GET" and out["statusCode"] == "200" and out["sentBytes"] == sent_len
    assert out["request"] == media and out["userAgent"] == "access-log-test/1.0"
    assert out["endpointId"] == "demo-hls" and out["endpointArn"] == endpoint["Arn"]
    ingest_ids = {e["Id"] for e in channel["HlsIngest"]["IngestEndpoints"]}
    put = [l for l in ingress if l["method"] in ("PUT", "POST") and l["statusCode"].startswith("2")]
    assert put and all(l["endpointId"] in ingest_ids and l["receivedBytes"] > 0 for l in put)

    # Omitting a log type in ConfigureLogs turns it off.
    mp.configure_logs(Id="demo")
    time.sleep(6)
    before = len(access_log_lines(demo))
    get(media)
    time.sleep(2.5)
    assert len(access_log_lines(demo)) == before
