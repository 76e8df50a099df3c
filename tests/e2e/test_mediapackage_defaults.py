"""What MediaPackage itself produces is accepted: the endpoint settings its console fills in
by default, and the packaging fields of a DescribeOriginEndpoint answer sent back with
UpdateOriginEndpoint, round-trip for HLS, CMAF and DASH endpoints. Each neutral value
(one that changes no output) is accepted and echoed; each value that would change output
in a way Sluice does not implement yet is refused with 422 naming the field. Playback
query parameters Sluice does not implement answer 400, never a silent full manifest."""

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Server

# The ad types MediaPackage's console selects by default (user guide, "SCTE-35 message
# options"): splice inserts and the four advertisement / placement opportunity types.
CONSOLE_AD_TRIGGERS = [
    "SPLICE_INSERT",
    "PROVIDER_ADVERTISEMENT",
    "DISTRIBUTOR_ADVERTISEMENT",
    "PROVIDER_PLACEMENT_OPPORTUNITY",
    "DISTRIBUTOR_PLACEMENT_OPPORTUNITY",
]
ALL_VIDEO = {"MinVideoBitsPerSecond": 0, "MaxVideoBitsPerSecond": 2147483647, "StreamOrder": "ORIGINAL"}

# Each package as MediaPackage's console creates it when nothing is changed.
CONSOLE_DEFAULTS = {
    "HlsPackage": {
        "SegmentDurationSeconds": 6,
        "PlaylistWindowSeconds": 60,
        "ProgramDateTimeIntervalSeconds": 0,
        "PlaylistType": "EVENT",
        "AdMarkers": "NONE",
        "AdTriggers": CONSOLE_AD_TRIGGERS,
        "AdsOnDeliveryRestrictions": "RESTRICTED",
        "IncludeIframeOnlyStream": False,
        "IncludeDvbSubtitles": False,
        "UseAudioRenditionGroup": False,
        "StreamSelection": ALL_VIDEO,
    },
    "CmafPackage": {
        "SegmentDurationSeconds": 6,
        "StreamSelection": ALL_VIDEO,
        "HlsManifests": [{
            "Id": "cmaf-hls",
            "ManifestName": "index",
            "PlaylistWindowSeconds": 60,
            "ProgramDateTimeIntervalSeconds": 0,
            "PlaylistType": "EVENT",
            "AdMarkers": "NONE",
            "AdTriggers": CONSOLE_AD_TRIGGERS,
            "AdsOnDeliveryRestrictions": "RESTRICTED",
            "IncludeIframeOnlyStream": False,
        }],
    },
    "DashPackage": {
        "SegmentDurationSeconds": 2,
        "ManifestWindowSeconds": 60,
        "MinBufferTimeSeconds": 30,
        "MinUpdatePeriodSeconds": 15,
        "SuggestedPresentationDelaySeconds": 25,
        "Profile": "NONE",
        "ManifestLayout": "FULL",
        "SegmentTemplateFormat": "NUMBER_WITH_TIMELINE",
        "PeriodTriggers": [],
        "AdTriggers": CONSOLE_AD_TRIGGERS,
        "AdsOnDeliveryRestrictions": "RESTRICTED",
        "IncludeIframeOnlyStream": False,
        "UtcTiming": "NONE",
        "StreamSelection": ALL_VIDEO,
    },
}


@pytest.fixture(scope="module")
def mp():
    srv = Server()
    client = srv.mediapackage()
    client.create_channel(Id="defaults")
    yield client
    srv.stop()


def without_read_only(package):
    """A described package as an update request: each HLS manifest's `Url` is read-only."""
    out = dict(package)
    if "HlsManifests" in out:
        out["HlsManifests"] = [{k: v for k, v in m.items() if k != "Url"} for m in out["HlsManifests"]]
    return out


def contains(echoed, given):
    """Every field given is echoed with the value given (recursively)."""
    if isinstance(given, dict):
        return all(k in echoed and contains(echoed[k], v) for k, v in given.items())
    if isinstance(given, list) and given and isinstance(given[0], dict):
        return len(echoed) == len(given) and all(contains(e, g) for e, g in zip(echoed, given))
    return echoed == given


@pytest.mark.parametrize("package", sorted(CONSOLE_DEFAULTS))
def test_console_defaults_are_accepted_and_describe_round_trips_through_update(mp, package):
    endpoint_id = f"console-{package.lower()}"
    created = mp.create_origin_endpoint(
        ChannelId="defaults", Id=endpoint_id, StartoverWindowSeconds=0, TimeDelaySeconds=0,
        **{package: CONSOLE_DEFAULTS[package]},
    )
    assert contains(created[package], CONSOLE_DEFAULTS[package]), created[package]
    assert (created["StartoverWindowSeconds"], created["TimeDelaySeconds"]) == (0, 0)
    described = mp.describe_origin_endpoint(Id=endpoint_id)
    fields = {package: without_read_only(described[package]),
              "StartoverWindowSeconds": described["StartoverWindowSeconds"],
              "TimeDelaySeconds": described["TimeDelaySeconds"]}
    updated = mp.update_origin_endpoint(Id=endpoint_id, **fields)
    again = mp.describe_origin_endpoint(Id=endpoint_id)
    for answer in (updated, again):
        assert answer[package] == described[package]
        assert answer["Url"] == described["Url"]


# (package, field, neutral value): accepted and echoed; each changes no output.
NEUTRAL = [
    ("HlsPackage", "AdMarkers", "NONE"),
    ("HlsPackage", "AdTriggers", []),
    ("HlsPackage", "AdTriggers", ["SPLICE_INSERT", "BREAK", "PROVIDER_OVERLAY_PLACEMENT_OPPORTUNITY"]),
    ("HlsPackage", "AdsOnDeliveryRestrictions", "NONE"),
    ("HlsPackage", "AdsOnDeliveryRestrictions", "BOTH"),
    ("HlsPackage", "UseAudioRenditionGroup", False),
    ("HlsPackage", "UseAudioRenditionGroup", True),
    ("CmafPackage", "AdMarkers", "NONE"),
    ("CmafPackage", "AdTriggers", CONSOLE_AD_TRIGGERS),
    ("CmafPackage", "AdsOnDeliveryRestrictions", "UNRESTRICTED"),
    ("CmafPackage", "IncludeIframeOnlyStream", False),
    ("CmafPackage", "IncludeIframeOnlyStream", True),
    ("DashPackage", "PeriodTriggers", []),
    ("DashPackage", "AdTriggers", ["DISTRIBUTOR_ADVERTISEMENT"]),
    ("DashPackage", "AdsOnDeliveryRestrictions", "RESTRICTED"),
    ("DashPackage", "IncludeIframeOnlyStream", False),
    (None, "StartoverWindowSeconds", 0),
    (None, "TimeDelaySeconds", 0),
]

# (package, field, value, words the 422 message must contain).
REFUSED = [
    ("HlsPackage", "AdMarkers", "SCTE35_ENHANCED", "hlsPackage.adMarkers"),
    ("HlsPackage", "AdsOnDeliveryRestrictions", "SOMETIMES", "adsOnDeliveryRestrictions"),
    ("CmafPackage", "AdMarkers", "DATERANGE", "hlsManifests[0].adMarkers"),
    ("CmafPackage", "AdTriggers", ["SPLICE"], "adTriggers"),
    ("DashPackage", "PeriodTriggers", ["ADS"], "dashPackage.periodTriggers"),
    ("DashPackage", "IncludeIframeOnlyStream", True, "dashPackage.includeIframeOnlyStream"),
    (None, "StartoverWindowSeconds", 300, "startoverWindowSeconds"),
    (None, "TimeDelaySeconds", 30, "timeDelaySeconds"),
]


def request_with(package, field, value):
    """A create request with `field` set in its package (in the HLS manifest, for CMAF)."""
    if package is None:
        return {"HlsPackage": {}, field: value}
    if package == "CmafPackage":
        return {package: {"HlsManifests": [{"Id": "m", field: value}]}}
    return {package: {field: value}}


def echoed(answer, package, field):
    if package is None:
        return answer[field]
    if package == "CmafPackage":
        return answer[package]["HlsManifests"][0][field]
    return answer[package][field]


@pytest.mark.parametrize("package,field,value", NEUTRAL)
def test_each_neutral_value_is_accepted_and_echoed(mp, package, field, value):
    endpoint_id = f"n-{NEUTRAL.index((package, field, value))}"
    answer = mp.create_origin_endpoint(ChannelId="defaults", Id=endpoint_id, **request_with(package, field, value))
    assert echoed(answer, package, field) == value
    assert echoed(mp.describe_origin_endpoint(Id=endpoint_id), package, field) == value
    mp.delete_origin_endpoint(Id=endpoint_id)


@pytest.mark.parametrize("package,field,value,words", REFUSED)
def test_values_that_would_change_output_are_refused_naming_the_field(mp, package, field, value, words):
    endpoint_id = f"r-{REFUSED.index((package, field, value, words))}"
    with pytest.raises(ClientError) as info:
        mp.create_origin_endpoint(ChannelId="defaults", Id=endpoint_id, **request_with(package, field, value))
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 422, error
    assert words in error["Error"]["Message"], error["Error"]["Message"]
    with pytest.raises(ClientError):
        mp.describe_origin_endpoint(Id=endpoint_id)


@pytest.fixture(scope="module")
def demo():
    srv = Server(demo=True)
    srv.mediapackage().create_origin_endpoint(
        ChannelId="demo", Id="dash", DashPackage={"SegmentDurationSeconds": 2})
    deadline = time.time() + 30
    while status_and_body(srv.demo_url)[0] != 200 and time.time() < deadline:
        time.sleep(0.5)
    yield srv
    srv.stop()


def status_and_body(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.parametrize("path", ["demo-hls/index.m3u8", "demo-hls/index_360p-seg.m3u8", "dash/index.mpd",
                                  "dash/index_video_360p-seg_init.mp4"])
@pytest.mark.parametrize("query,words", [
    ("start=1503091134&end=1503091194", "time-shift"),
    ("end=2017-08-18T21%3A18%3A54%2B00%3A00", "time-shift"),
    ("aws.manifestfilter=video_height%3A1-720", "manifest filtering"),
    ("AWS.MANIFESTFILTER=audio_language%3Afr", "manifest filtering"),
    ("aws.manifestsettings=time_delay%3A30", "manifest settings"),
])
def test_unimplemented_query_parameters_are_refused(demo, path, query, words):
    status, body = status_and_body(f"{demo.base}/out/v1/{path}?{query}")
    assert status == 400 and words in body, (status, body)


def test_other_query_parameters_are_ignored(demo):
    status, body = status_and_body(f"{demo.demo_url}?m=1700000000&token=abc")
    assert status == 200 and body.startswith("#EXTM3U"), (status, body)
