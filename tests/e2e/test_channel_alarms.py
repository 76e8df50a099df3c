"""Per-channel "ingest stalled" alarms: with SLUICE_CHANNEL_ALARMS (the template sets it
to the stack name) CreateChannel puts a CloudWatch alarm on the channel's IngressBytes and
DeleteChannel removes it; here against CloudWatch in moto, through the AWS SDK."""

import os

import boto3

from conftest import Server, aws_env, free_port

TOPIC = "arn:aws:sns:us-east-1:000000000000:sluice-alarms"


def test_create_and_delete_channel_manage_its_alarm(moto):
    env = {**aws_env(moto, f"alarms-{os.getpid()}-{free_port()}"),
           "SLUICE_CHANNEL_ALARMS": "sluice-test", "SLUICE_ALARM_TOPIC_ARN": TOPIC,
           "SLUICE_INGEST_STALLED_SECONDS": "150"}
    srv = Server(args=["--create-aws-resources"], env=env)
    try:
        cloudwatch = boto3.client("cloudwatch", endpoint_url=moto, region_name="us-east-1",
                                  aws_access_key_id="test", aws_secret_access_key="test")
        mp = srv.mediapackage()
        mp.create_channel(Id="news")
        mp.create_channel(Id="sport")
        alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNamePrefix="sluice-test-")["MetricAlarms"]}
        assert set(alarms) == {"sluice-test-IngestStalled-news", "sluice-test-IngestStalled-sport"}
        alarm = alarms["sluice-test-IngestStalled-news"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("Sluice", "IngressBytes")
        assert alarm["Dimensions"] == [{"Name": "Channel", "Value": "news"}]
        assert alarm["Statistic"] == "SampleCount" and alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == 3, "150 s rounds up to three one-minute periods"
        assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
        assert alarm["TreatMissingData"] == "breaching", "no uploads at all is the stall"
        assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC]

        mp.delete_channel(Id="news")
        names = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="sluice-test-")["MetricAlarms"]]
        assert names == ["sluice-test-IngestStalled-sport"]
    finally:
        srv.stop()
