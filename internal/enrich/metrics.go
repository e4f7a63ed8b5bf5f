package enrich

import (
	"log/slog"
	"os"
	"time"
)

// MetricsNamespace is the CloudWatch namespace of the metrics the enrich
// function reports itself.
const MetricsNamespace = "UnifiedStreamETL"

// MetricReferenceRefreshFailures counts catalogue refreshes that failed
// (object unreadable, empty or unparsable), each of which left the last
// good catalogue in use.
const MetricReferenceRefreshFailures = "ReferenceDataRefreshFailures"

// MetricDimensionFunction is the dimension of the function's metrics: the
// function's name.
const MetricDimensionFunction = "FunctionName"

// emfCount returns log attributes that make a JSON log line also an
// embedded-metric-format document counting one of metric, by function
// name. In Lambda, CloudWatch Logs extracts the metric from the function's
// standard output, where lambdacontext's JSON logger writes, and Lambda's
// JSON log format keeps a line that is already JSON as it is; nothing is
// called on the request path
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html,
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html,
// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html).
func emfCount(now time.Time, metric string) []any {
	function := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	if function == "" {
		function = "enrich"
	}
	return []any{
		slog.Any("_aws", map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricsNamespace,
				"Dimensions": [][]string{{MetricDimensionFunction}},
				"Metrics":    []map[string]string{{"Name": metric, "Unit": "Count"}},
			}},
		}),
		slog.String(MetricDimensionFunction, function),
		slog.Int(metric, 1),
	}
}
