"""The deployment's properties, read from template.yaml with cfn-lint's own decoder (which
understands !Ref, !Sub and the other short forms): nothing here can reach AWS, so what the
stack will be is asserted from the template. `cfn-lint` and `sam validate --lint` run on it
in the test command as well."""

import json

import pytest
from cfnlint.decode import decode

from conftest import ROOT


@pytest.fixture(scope="module")
def template():
    tpl, matches = decode(str(ROOT / "template.yaml"))
    assert not matches, matches
    return tpl


def resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_functions_are_arm64_al2023_built_by_cargo_lambda(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023" and globals_["Architectures"] == ["arm64"]
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == {"IngestFunction", "ControlFunction", "PlaybackFunction",
                              "StagedAuthorizerFunction", "StagedIngestFunction", "KeyServerFunction"}
    for name, fn in functions.items():
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda", name
        assert fn["Properties"].get("Runtime", "provided.al2023") == "provided.al2023"
        assert fn["Properties"].get("Architectures", ["arm64"]) == ["arm64"]


def test_the_reference_key_server_is_optional_needs_a_secret_and_may_do_nothing_else(template):
    assert template["Parameters"]["ReferenceKeyServer"]["Default"] == "Disabled"
    assert template["Parameters"]["ReferenceKeyServerSecret"]["NoEcho"] is True
    assert template["Conditions"]["ReferenceKeyServerOn"] == {"Fn::Equals": [{"Ref": "ReferenceKeyServer"}, "Enabled"]}
    rule = template["Rules"]["KeyServerHasASecret"]
    assert rule["RuleCondition"] == template["Conditions"]["ReferenceKeyServerOn"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReferenceKeyServerSecret"}, ""]}]}
    server = template["Resources"]["KeyServerFunction"]
    assert server["Condition"] == "ReferenceKeyServerOn"
    assert server["Metadata"]["BuildProperties"]["Binary"] == "sluice-keyserver"
    props = server["Properties"]
    assert props["Policies"] == [], "it reads and writes nothing"
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert props["Environment"]["Variables"]["SLUICE_KEY_SERVER_SECRET"] == {"Ref": "ReferenceKeyServerSecret"}
    output = template["Outputs"]["ReferenceKeyServerUrl"]
    assert output["Condition"] == "ReferenceKeyServerOn"
    assert output["Value"] == {"Fn::GetAtt": ["KeyServerFunctionUrl", "FunctionUrl"]}


def test_playback_is_a_streaming_iam_function_url_behind_cloudfront_with_oac(template):
    playback = template["Resources"]["PlaybackFunction"]["Properties"]
    assert playback["FunctionUrlConfig"] == {"AuthType": "AWS_IAM", "InvokeMode": "RESPONSE_STREAM"}
    oac = resources(template, "AWS::CloudFront::OriginAccessControl")
    assert len(oac) == 1
    (oac_name, oac_resource), = oac.items()
    config = oac_resource["Properties"]["OriginAccessControlConfig"]
    assert config["OriginAccessControlOriginType"] == "lambda" and config["SigningBehavior"] == "always"
    origins = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert [o["OriginAccessControlId"] for o in origins] == [{"Fn::GetAtt": [oac_name, "Id"]}]
    # Only this distribution may invoke the URL.
    permission = template["Resources"]["PlaybackUrlPermission"]["Properties"]
    assert permission["Principal"] == "cloudfront.amazonaws.com" and permission["FunctionUrlAuthType"] == "AWS_IAM"
    assert "distribution/${Distribution}" in json.dumps(permission["SourceArn"])


def test_apis_binary_ingest_and_iam_control(template):
    ingest = template["Resources"]["IngestApi"]["Properties"]
    assert ingest["BinaryMediaTypes"] == ["*~1*"]
    control = template["Resources"]["ControlApi"]["Properties"]
    assert control["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    limit = template["Parameters"]["MaxSegmentBytes"]
    assert limit["Default"] <= limit["MaxValue"] <= 4_500_000, "Lambda's 6 MB less base64"


def test_cache_policies_per_path(template):
    policies = {n: r["Properties"]["CachePolicyConfig"] for n, r in resources(template, "AWS::CloudFront::CachePolicy").items()}
    manifests, segments = policies["ManifestCachePolicy"], policies["SegmentCachePolicy"]
    # Manifests: the origin's max-age (half a segment) within a short ceiling; the query
    # parameters Sluice honours are part of the key.
    assert manifests["MinTTL"] == 0 and manifests["DefaultTTL"] <= 2 and manifests["MaxTTL"] <= 30
    keys = manifests["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
    assert keys["QueryStringBehavior"] == "whitelist" and {"start", "end", "aws.manifestfilter"} <= set(keys["QueryStrings"])
    # Segments: 14 days.
    assert segments["DefaultTTL"] == segments["MaxTTL"] == 14 * 86400
    config = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["CachePolicyId"] == {"Ref": "ManifestCachePolicy"}
    by_path = {b["PathPattern"]: b["CachePolicyId"] for b in config["CacheBehaviors"]}
    assert by_path["/out/v1/*.ts"] == by_path["/out/v1/*.mp4"] == {"Ref": "SegmentCachePolicy"}
    assert by_path["/out/v1/utc"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "CachingDisabled"
    errors = config["CustomErrorResponses"]
    assert {e["ErrorCode"] for e in errors} >= {403, 404, 500, 503}
    assert all(1 <= e["ErrorCachingMinTTL"] <= 2 for e in errors)


def test_bucket_private_encrypted_and_expiring_after_the_startover_window(template):
    bucket = template["Resources"]["SegmentBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert template["Parameters"]["RetentionDays"]["Default"] >= 14, "longest startover window is 14 days"
    policy = template["Resources"]["SegmentBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Deny" for s in policy), "the bucket policy grants nothing"


def test_tables_on_demand_with_ttl_and_pitr(template):
    catalog = template["Resources"]["CatalogTable"]["Properties"]
    segments = template["Resources"]["SegmentsTable"]["Properties"]
    assert catalog["BillingMode"] == segments["BillingMode"] == "PAY_PER_REQUEST"
    assert catalog["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert segments["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_iam_is_least_privilege(template):
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        for policy in fn["Properties"]["Policies"]:
            assert set(policy) == {"Statement"}, f"{name}: only explicit statements, no broad policy templates"
            for statement in policy["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert statement["Effect"] == "Allow"
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
                assert statement["Resource"] != "*", (name, statement)
    # Playback reads, except that it may publish settled segments in the segment index:
    # no S3 writes, no catalog writes, no deletes. It may assume roles, and only that
    # (the key providers' roles, whose trust policies decide).
    for policy in template["Resources"]["PlaybackFunction"]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "sts:AssumeRole" in actions:
                assert actions == ["sts:AssumeRole"] and statement["Sid"] == "AssumeKeyProviderRoles", statement
                assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/*"}, statement
                continue
            writes = [a for a in actions if not a.startswith(("dynamodb:Get", "dynamodb:Query", "s3:Get",
                                                               "secretsmanager:Get"))]
            assert not any("Delete" in a or a.startswith("s3:") for a in writes), statement
            if writes:
                assert statement["Resource"] == {"Fn::GetAtt": ["SegmentsTable", "Arn"]}, statement


def test_alarms_dashboard_and_outputs(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for fn in ("IngestFunction", "ControlFunction", "PlaybackFunction"):
        for metric in ("Errors", "Throttles"):
            alarm = alarms[f"{fn}{metric}Alarm"]["Properties"]
            assert alarm["MetricName"] == metric and alarm["Dimensions"][0]["Value"] == {"Ref": fn}
    assert {"IngestApiServerErrorAlarm", "ControlApiServerErrorAlarm", "PlaybackServerErrorAlarm",
            "IngestStalledAlarm"} <= set(alarms)
    # Per-channel alarms: the control function makes them, only under the stack's prefix.
    control = template["Resources"]["ControlFunction"]["Properties"]
    assert control["Environment"]["Variables"]["SLUICE_CHANNEL_ALARMS"] == {"Ref": "AWS::StackName"}
    statement = next(s for p in control["Policies"] for s in p["Statement"] if s.get("Sid") == "ChannelAlarms")
    assert sorted(statement["Action"]) == ["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm"]
    assert statement["Resource"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-IngestStalled-*")
    assert resources(template, "AWS::CloudWatch::Dashboard")
    assert {"ControlApiUrl", "IngestBaseUrl", "PlaybackDomain"} <= set(template["Outputs"])


def test_staged_ingest_is_opt_in_and_wired_as_the_functions_expect(template):
    """StagedIngest=Enabled: PUT/POST bodies from API Gateway straight to S3 under the prefix
    the staged-ingest function reads (store/keys.rs), behind the REQUEST authorizer, with a
    fixed Digest challenge whose nonce the authorizer is given; S3 announces uploads on
    EventBridge. tests/e2e/test_staged_ingest.py drives the functions with these values."""
    assert template["Parameters"]["StagedIngest"]["Default"] == "Disabled"
    staged = {name for name in template["Resources"] if name.startswith("Staged")}
    assert {"StagedIngestApi", "StagedIngestRole", "StagedAuthorizerFunction", "StagedIngestFunction",
            "StagedUploadsRejectedAlarm"} <= staged
    for name in staged:
        assert template["Resources"][name].get("Condition") == "StagedIngestOn", name
    keys_rs = (ROOT / "shared" / "src" / "store" / "keys.rs").read_text()
    prefix = keys_rs.split('pub const STAGED_PREFIX: &str = "', 1)[1].split('"', 1)[0]
    body = template["Resources"]["StagedIngestApi"]["Properties"]["DefinitionBody"]
    path = body["paths"]["/in/v2/{channel}/{ingest}/{file+}"]
    for method in ("put", "post"):
        integration = path[method]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws" and integration["httpMethod"] == "PUT"
        assert integration["uri"]["Fn::Sub"].endswith(f":s3:path/${{SegmentBucket}}/{prefix}{{channel}}/{{ingest}}/{{file}}")
        assert path[method]["security"] == [{"StagedIngestAuthorizer": []}]
    assert path["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    authorizer = body["components"]["securitySchemes"]["StagedIngestAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request" and authorizer["authorizerResultTtlInSeconds"] == 0
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    nonce = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    responses = body["x-amazon-apigateway-gateway-responses"]
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED"):
        assert responses[kind]["statusCode"] == 401
        value, names = responses[kind]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]["Fn::Sub"]
        assert value.startswith("'Digest ") and 'nonce=\"${Nonce}\"' in value and names == {"Nonce": nonce}
    assert responses["REQUEST_TOO_LARGE"]["statusCode"] == 413
    assert "-hls_time" in responses["REQUEST_TOO_LARGE"]["responseTemplates"]["application/json"]
    functions = template["Resources"]
    variables = functions["StagedAuthorizerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SLUICE_STAGED_DIGEST_NONCE"] == nonce
    # What fails every retry is kept in a queue with an alarm, not dropped.
    invoke = functions["StagedIngestFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StagedIngestFailedQueue", "Arn"]}
    alarm = functions["StagedIngestFailedAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StagedIngestFailedQueue", "QueueName"]}
    # API Gateway writes only staged uploads; the staged-ingest function reads only them.
    role = functions["StagedIngestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [(s["Action"], s["Resource"]["Fn::Sub"]) for s in role] == [("s3:PutObject", f"${{SegmentBucket.Arn}}/{prefix}*")]
    statements = functions["StagedIngestFunction"]["Properties"]["Policies"][0]["Statement"]
    read = next(s for s in statements if s["Sid"] == "ReadStagedUploads")
    assert read["Action"] == "s3:GetObject" and read["Resource"]["Fn::Sub"].endswith(f"/{prefix}*")
    # A missing staged object must be a 404 (None), not a 403 (a store error, retried).
    listing = next(s for s in statements if s["Sid"] == "MissingIsNotFound")
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == {"Fn::GetAtt": ["SegmentBucket", "Arn"]}
    send = next(s for s in statements if s["Sid"] == "KeepFailedEvents")
    assert send["Action"] == "sqs:SendMessage" and send["Resource"] == {"Fn::GetAtt": ["StagedIngestFailedQueue", "Arn"]}
    rule = functions["StagedIngestFunction"]["Properties"]["Events"]["StagedUpload"]
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["Pattern"]["detail"]["object"]["key"] == [{"prefix": prefix}]
    bucket = functions["SegmentBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["Fn::If"][1] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    expiry = next(r for r in bucket["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == prefix)
    assert expiry["ExpirationInDays"] == 1
    # CreateChannel hands out the staged API's URLs when it is on.
    control = functions["ControlFunction"]["Properties"]["Environment"]["Variables"]["SLUICE_INGEST_BASE_URL"]
    assert control["Fn::If"][0] == "StagedIngestOn" and "StagedIngestApi" in json.dumps(control["Fn::If"][1])


def references(value):
    """The resources and parameters a template value refers to (Ref, GetAtt, Sub)."""
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield (target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, names = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            import re
            for name in re.findall(r"\$\{([^}!]+)\}", text):
                if name.split(".")[0] not in names:
                    yield name.split(".")[0]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def test_no_dependency_cycle_between_resources(template):
    """CloudFormation refuses a stack whose resources refer to each other in a circle (a
    function's environment naming the API whose definition names the function, say)."""
    resources_ = template["Resources"]
    edges = {}
    for name, resource in resources_.items():
        needs = {r for r in references(resource.get("Properties", {})) if r in resources_}
        depends = resource.get("DependsOn", [])
        needs |= set([depends] if isinstance(depends, str) else depends)
        edges[name] = needs - {name}
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"dependency cycle: {' -> '.join(path + [node])}"
        state[node] = "open"
        for nxt in sorted(edges[node]):
            visit(nxt, path + [node])
        state[node] = "done"

    for name in sorted(edges):
        visit(name, [])
