//! One "ingest stalled" CloudWatch alarm per channel, made by CreateChannel and removed by
//! DeleteChannel, so operators learn which channel's encoder stopped (a stack-wide alarm
//! cannot say, and CloudFormation cannot know channels made later through the API).
//!
//! The alarm watches the channel's `IngressBytes` sample count (the EMF metric each
//! accepted upload writes) and treats missing data as breaching: a channel that receives
//! nothing for `SLUICE_INGEST_STALLED_SECONDS` goes to ALARM and notifies the topic.
//! Off unless `SLUICE_CHANNEL_ALARMS` names the alarm name prefix (the template sets it to
//! the stack name; the control function may only touch alarms with that prefix).

/// What the alarms look like.
#[derive(Clone, Debug)]
pub struct AlarmConfig {
    /// Alarm names are `{prefix}-IngestStalled-{channel}`.
    pub prefix: String,
    /// SNS topic notified on ALARM and OK, if any.
    pub topic_arn: Option<String>,
    /// How long without an accepted upload counts as stalled (whole minutes, ≥ 60 s).
    pub stalled_seconds: u32,
}

impl AlarmConfig {
    pub fn name(&self, channel: &str) -> String {
        format!("{}-IngestStalled-{channel}", self.prefix)
    }

    /// One-minute periods to evaluate.
    pub fn periods(&self) -> i32 {
        (self.stalled_seconds.max(60)).div_ceil(60) as i32
    }
}

/// Creates and deletes the per-channel alarms.
pub struct ChannelAlarms {
    client: aws_sdk_cloudwatch::Client,
    config: AlarmConfig,
}

impl ChannelAlarms {
    /// The alarms the configuration asks for: only with the AWS store.
    pub fn from_config(config: &crate::config::Config, sdk: Option<&aws_config::SdkConfig>) -> Option<ChannelAlarms> {
        Some(ChannelAlarms::new(sdk?, config.channel_alarms.clone()?))
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: AlarmConfig) -> ChannelAlarms {
        ChannelAlarms {
            client: aws_sdk_cloudwatch::Client::new(sdk),
            config,
        }
    }

    /// Creates or replaces the alarm of `channel`.
    pub async fn put(&self, channel: &str) -> Result<(), String> {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};
        let periods = self.config.periods();
        let mut request = self
            .client
            .put_metric_alarm()
            .alarm_name(self.config.name(channel))
            .alarm_description(format!(
                "Sluice channel {channel:?} accepted no upload for {} minutes: its encoders have stopped \
                 or cannot reach the ingest URLs",
                periods
            ))
            .namespace(crate::metrics::NAMESPACE)
            .metric_name("IngressBytes")
            .dimensions(Dimension::builder().name("Channel").value(channel).build())
            .statistic(Statistic::SampleCount)
            .unit(StandardUnit::Bytes)
            .period(60)
            .evaluation_periods(periods)
            .datapoints_to_alarm(periods)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .treat_missing_data("breaching");
        if let Some(topic) = &self.config.topic_arn {
            request = request.alarm_actions(topic).ok_actions(topic);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())
    }

    /// Deletes the alarm of `channel` (nothing if there is none).
    pub async fn delete(&self, channel: &str) -> Result<(), String> {
        self.client
            .delete_alarms()
            .alarm_names(self.config.name(channel))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())
    }
}
