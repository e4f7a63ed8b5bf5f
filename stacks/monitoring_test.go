package stacks_test

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/stacks"
)

// alarmQuery is what an alarm evaluates: a metric (namespace, name,
// statistic, period) or, for math and Metrics Insights, an expression over
// such metrics.
type alarmQuery struct {
	expression string // flattened; empty for a plain metric
	metrics    []alarmMetric
}

type alarmMetric struct {
	namespace, name, stat string
	period                float64
	dimensions            string // JSON of the dimensions
}

// queryOf reads an alarm's query from either form CloudFormation accepts.
func queryOf(t *testing.T, alarm map[string]any) alarmQuery {
	t.Helper()
	p := props(alarm)
	if name, ok := p["MetricName"].(string); ok {
		stat, _ := p["Statistic"].(string)
		if stat == "" {
			stat, _ = p["ExtendedStatistic"].(string)
		}
		period, _ := p["Period"].(float64)
		return alarmQuery{metrics: []alarmMetric{{p["Namespace"].(string), name, stat, period, mustMarshal(t, p["Dimensions"])}}}
	}
	var q alarmQuery
	for _, m := range asList(p["Metrics"]) {
		entry := m.(map[string]any)
		if expr, ok := entry["Expression"]; ok {
			if entry["ReturnData"] != false {
				q.expression = flatten(t, expr)
				if period, ok := entry["Period"].(float64); ok {
					q.metrics = append(q.metrics, alarmMetric{period: period})
				}
			}
			continue
		}
		stat := entry["MetricStat"].(map[string]any)
		metric := stat["Metric"].(map[string]any)
		q.metrics = append(q.metrics, alarmMetric{metric["Namespace"].(string), metric["MetricName"].(string), stat["Stat"].(string), stat["Period"].(float64), mustMarshal(t, metric["Dimensions"])})
	}
	return q
}

// flatten renders a string or an Fn::Join as text, intrinsic functions
// inside it as their JSON.
func flatten(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if join, ok := x["Fn::Join"].([]any); ok {
			var b strings.Builder
			for i, part := range join[1].([]any) {
				if i > 0 {
					b.WriteString(join[0].(string))
				}
				b.WriteString(flatten(t, part))
			}
			return b.String()
		}
	}
	return mustMarshal(t, v)
}

// alarmsOf returns a template's alarms by logical ID without CDK's hash
// suffix.
func alarmsOf(t *testing.T, tmpl assertions.Template) map[string]map[string]any {
	t.Helper()
	hash := regexp.MustCompile(`[0-9A-F]{8}$`)
	out := map[string]map[string]any{}
	for id, r := range resources(tmpl, "AWS::CloudWatch::Alarm", nil) {
		out[hash.ReplaceAllString(id, "")] = r
	}
	return out
}

// wantAlarm is an alarm the pipeline must have.
type wantAlarm struct {
	id        string
	namespace string
	metrics   []string // metric names, or words of the Metrics Insights query
	stat      string   // of every metric
	threshold float64
	periods   float64
	missing   string
}

// alarmedFunction is a function the process stack's alarms watch.
type alarmedFunction struct {
	name      string
	timeoutMs float64
	streamFed bool
}

// processorWatch is what a processor adds to the process stack's alarms
// and dashboard.
type processorWatch struct {
	// enrichedStream: the processor always has the enriched stream, which
	// its sink reads.
	enrichedStream bool
	// pollsUnifiedStream: the processor reads the unified stream with
	// GetRecords itself, whatever the consumer setting.
	pollsUnifiedStream bool
	functions          []alarmedFunction
	// alarms are its alarms besides those of its functions.
	alarms []wantAlarm
	// dashboardMetrics are metric names its dashboard section shows.
	dashboardMetrics []string
}

// processorAlarms says, per processor, what it adds; other test files
// register theirs (kda_test.go).
var processorAlarms = map[stacks.Processor]func(stacks.Config) processorWatch{
	stacks.ProcessorLambda: func(cfg stacks.Config) processorWatch {
		a := cfg.Alarms
		return processorWatch{
			functions: []alarmedFunction{{"Enrich", stacks.EnrichTimeout.Seconds() * 1000, true}},
			alarms: []wantAlarm{
				{"JoinStateThrottledAlarm", "AWS/DynamoDB", []string{"ReadThrottleEvents", "WriteThrottleEvents"}, "Sum", float64(a.Throttles), 3, "notBreaching"},
				{"EnrichDlqDepthAlarm", "AWS/SQS", []string{"ApproximateNumberOfMessagesVisible"}, "Maximum", 1, 1, "notBreaching"},
				{"EnrichReferenceDataAlarm", "UnifiedStreamETL", []string{"ReferenceDataRefreshFailures"}, "Sum", 1, 1, "notBreaching"},
			},
			dashboardMetrics: []string{`"IteratorAge"`},
		}
	},
}

// expectedProcessAlarms lists the process stack's alarms for a
// configuration: docs/design.md §7.5's metrics for what the configuration deploys.
func expectedProcessAlarms(cfg stacks.Config) []wantAlarm {
	a := cfg.Alarms
	age := float64(a.IteratorAgeSeconds * 1000)
	var want []wantAlarm
	// The shapes of docs/design.md §1.1: the enriched stream with KDA or
	// enrichedStream=true, the sink with KDA only.
	proc := processorAlarms[cfg.Processor](cfg)
	// A stream's GetRecords iterator age is reported only while something
	// polls it: missing data breaches only then (polledStreamCases).
	polling := cfg.Consumer == stacks.ConsumerPolling
	streams := []struct {
		name   string
		polled bool
	}{{"OrderStream", polling || cfg.DataLake || proc.pollsUnifiedStream}}
	if proc.enrichedStream || cfg.EnrichedStreamEnabled {
		// Only the sink reads it.
		streams = append(streams, struct {
			name   string
			polled bool
		}{"EnrichedStream", proc.enrichedStream && polling})
	}
	for _, st := range streams {
		s, missing := st.name, "notBreaching"
		if st.polled {
			missing = "breaching"
		}
		want = append(want,
			wantAlarm{s + "IteratorAgeAlarm", "AWS/Kinesis", []string{"GetRecords.IteratorAgeMilliseconds"}, "Maximum", age, 5, missing},
			wantAlarm{s + "WriteThrottledAlarm", "AWS/Kinesis", []string{"WriteProvisionedThroughputExceeded"}, "Sum", float64(a.Throttles), 3, "notBreaching"},
			wantAlarm{s + "ReadThrottledAlarm", "AWS/Kinesis", []string{"ReadProvisionedThroughputExceeded"}, "Sum", float64(a.Throttles), 3, "notBreaching"},
		)
	}
	want = append(want, proc.alarms...)
	for _, f := range proc.functions {
		want = append(want,
			wantAlarm{f.name + "ErrorsAlarm", "AWS/Lambda", []string{"Errors"}, "Sum", float64(a.LambdaErrors), 1, "notBreaching"},
			wantAlarm{f.name + "ThrottlesAlarm", "AWS/Lambda", []string{"Throttles"}, "Sum", float64(a.Throttles), 3, "notBreaching"},
			wantAlarm{f.name + "DurationAlarm", "AWS/Lambda", []string{"Duration"}, "p99", float64(a.DurationPercent) / 100 * f.timeoutMs, 3, "notBreaching"},
		)
		if f.streamFed {
			want = append(want, wantAlarm{f.name + "IteratorAgeAlarm", "AWS/Lambda", []string{"IteratorAge"}, "Maximum", age, 5, "notBreaching"})
		}
	}
	want = append(want,
		wantAlarm{"OrderEnrichedThrottledAlarm", "AWS/DynamoDB", []string{"ReadThrottleEvents", "WriteThrottleEvents"}, "Sum", float64(a.Throttles), 3, "notBreaching"},
	)
	if cfg.DynamoBilling == stacks.BillingProvisioned {
		want = append(want,
			wantAlarm{"OrderEnrichedReadCapacityAlarm", "AWS/DynamoDB", []string{"ConsumedReadCapacityUnits"}, "Sum", float64(a.DynamoCapacityPercent) / 100 * float64(cfg.DynamoReadCapacity), 3, "notBreaching"},
			wantAlarm{"OrderEnrichedWriteCapacityAlarm", "AWS/DynamoDB", []string{"ConsumedWriteCapacityUnits"}, "Sum", float64(a.DynamoCapacityPercent) / 100 * float64(cfg.DynamoWriteCapacity), 3, "notBreaching"},
		)
	}
	// Every shape maps a stream to a function, whose mapping writes the
	// batches it gives up on to the failure bucket.
	want = append(want, wantAlarm{"FailureBucketAlarm", "AWS/S3", []string{"PutRequests"}, "Sum", 1, 1, "notBreaching"})
	if cfg.DataLake {
		want = append(want, wantAlarm{"ArchiveFreshnessAlarm", "AWS/Firehose", []string{"DeliveryToS3.DataFreshness"}, "Maximum", stacks.ArchiveBufferInterval.Seconds() + float64(a.IteratorAgeSeconds), 3, "notBreaching"})
	}
	return want
}

// checkAlarm compares an alarm with what is wanted.
func checkAlarm(t *testing.T, alarm map[string]any, w wantAlarm) {
	t.Helper()
	p := props(alarm)
	if p["Threshold"] != w.threshold {
		t.Errorf("threshold = %v, want %v", p["Threshold"], w.threshold)
	}
	if p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" {
		t.Errorf("comparison = %v", p["ComparisonOperator"])
	}
	if p["EvaluationPeriods"] != w.periods || p["DatapointsToAlarm"] != w.periods {
		t.Errorf("fires after %v of %v periods, want %v of %v", p["DatapointsToAlarm"], p["EvaluationPeriods"], w.periods, w.periods)
	}
	if p["TreatMissingData"] != w.missing {
		t.Errorf("missing data is %v, want %v", p["TreatMissingData"], w.missing)
	}
	q := queryOf(t, alarm)
	if len(q.metrics) == 0 {
		t.Fatal("alarm has no metric")
	}
	if w.stat == "" { // a Metrics Insights query
		for _, word := range append([]string{`FROM "` + w.namespace + `"`}, w.metrics...) {
			if !strings.Contains(q.expression, word) {
				t.Errorf("query %q does not contain %q", q.expression, word)
			}
		}
		return
	}
	var names []string
	for _, m := range q.metrics {
		if m.namespace != w.namespace || m.stat != w.stat {
			t.Errorf("metric %s/%s %s, want namespace %s statistic %s", m.namespace, m.name, m.stat, w.namespace, w.stat)
		}
		names = append(names, m.name)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, w.metrics) {
		t.Errorf("metrics %v, want %v", names, w.metrics)
	}
}

func TestProcessStackAlarmsWatchTheDesignMetricsWithTheConfiguredThresholds(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			alarms := alarmsOf(t, s.template(stacks.ProcessStackName))
			want := expectedProcessAlarms(s.cfg)
			for _, w := range want {
				t.Run(w.id, func(t *testing.T) {
					alarm, ok := alarms[w.id]
					if !ok {
						t.Fatalf("no alarm %s", w.id)
					}
					checkAlarm(t, alarm, w)
				})
			}
			if len(alarms) != len(want) {
				var got []string
				for id := range alarms {
					got = append(got, id)
				}
				sort.Strings(got)
				t.Errorf("%d alarms %v, want %d", len(alarms), got, len(want))
			}
		})
	}
}

// polledStreamCases say, per variant, whether missing data of each
// stream's iterator age alarm breaches: only where something in the
// pipeline polls the stream, as nothing else reports the metric; other
// test files register theirs (kda_test.go).
var polledStreamCases = []polledStreamCase{
	// The enrich function's mapping polls the unified stream.
	{lambdaProcessor, map[string]bool{"OrderStream": true}},
	// consumer=efo and dataLake=false: enrich reads the unified stream
	// through SubscribeToShard and no Firehose polls it; with
	// enrichedStream=true and no sink, nothing reads the enriched stream.
	{customized, map[string]bool{"OrderStream": false, "EnrichedStream": false}},
}

type polledStreamCase struct {
	variant variant
	polled  map[string]bool // by stream
}

func TestStreamIteratorAgeAlarmsBreachOnMissingDataOnlyWhereTheStreamIsPolled(t *testing.T) {
	for _, c := range polledStreamCases {
		alarms := alarmsOf(t, synth(t, c.variant).template(stacks.ProcessStackName))
		for stream, polled := range c.polled {
			t.Run(string(c.variant)+"/"+stream, func(t *testing.T) {
				alarm, ok := alarms[stream+"IteratorAgeAlarm"]
				if !ok {
					t.Fatalf("no alarm %sIteratorAgeAlarm", stream)
				}
				p := props(alarm)
				want, says := "notBreaching", "nothing in the pipeline polls the stream"
				if polled {
					want, says = "breaching", "or nothing has read the stream at all"
				}
				if p["TreatMissingData"] != want {
					t.Errorf("missing data is %v, want %v", p["TreatMissingData"], want)
				}
				if d := flatten(t, p["AlarmDescription"]); !strings.Contains(d, says) {
					t.Errorf("description %q does not say %q", d, says)
				}
			})
		}
	}
}

func TestAlarmsAreScopedToThePipelinesOwnResources(t *testing.T) {
	// enrichedStream=true has the enriched stream and enrich; the two-hop
	// shape has the sink.
	for _, v := range append([]variant{customized}, twoHopVariants...) {
		tmpl := synth(t, v).template(stacks.ProcessStackName)
		fnID := map[string]string{}
		for id := range goFunctions(tmpl) {
			for _, name := range []string{"Sink", "Enrich"} {
				if strings.HasPrefix(id, name) {
					fnID[name] = id
				}
			}
		}
		tests := map[string]string{
			"OrderStreamIteratorAgeAlarm":    `"Fn::ImportValue":"UnifiedStreamETLCommonStack:ExportsOutputRefOrderStream`,
			"EnrichedStreamIteratorAgeAlarm": `{"Ref":"` + logicalID(t, tmpl, "AWS::Kinesis::Stream", nil) + `"}`,
		}
		if fnID["Sink"] != "" {
			tests["SinkErrorsAlarm"] = `"Value":{"Ref":"` + fnID["Sink"] + `"}`
			tests["SinkDlqDepthAlarm"] = `"Name":"QueueName"`
		} else {
			tests["JoinStateThrottledAlarm"] = `"Name":"TableName"`
			tests["EnrichReferenceDataAlarm"] = `{"Name":"FunctionName","Value":{"Ref":"` + fnID["Enrich"] + `"}}`
		}
		alarms := alarmsOf(t, tmpl)
		for alarm, dimensions := range tests {
			t.Run(string(v)+"/"+alarm+" names its resource", func(t *testing.T) {
				a, ok := alarms[alarm]
				if !ok {
					t.Fatalf("no alarm %s", alarm)
				}
				for _, m := range queryOf(t, a).metrics {
					if m.name != "" && !strings.Contains(m.dimensions, dimensions) {
						t.Errorf("%s dimensions %s, want %s", m.name, m.dimensions, dimensions)
					}
				}
			})
		}
	}
}

func TestDataStackAlarmsOnTheReplicationTaskButNotOnItsPlannedStops(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.DataStackName)
			alarms := alarmsOf(t, tmpl)
			task := logicalID(t, tmpl, "AWS::DMS::ReplicationTask", nil)
			// The task's resource ID, the last part of its ARN, is the
			// ReplicationTaskIdentifier dimension.
			wantWhere := `WHERE ReplicationTaskIdentifier = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"` + task + `"}]}]}'`
			for id, metric := range map[string]string{"DmsSourceLatencyAlarm": "CDCLatencySource", "DmsTargetLatencyAlarm": "CDCLatencyTarget"} {
				t.Run(id, func(t *testing.T) {
					alarm, ok := alarms[id]
					if !ok {
						t.Fatalf("no alarm %s", id)
					}
					// Latency alarms fire on latency; a stopped task's
					// silence is the silent alarm's.
					checkAlarm(t, alarm, wantAlarm{id, "AWS/DMS", []string{"MAX(" + metric + ")"}, "", float64(s.cfg.Alarms.DMSLatencySeconds), 3, "notBreaching"})
					q := queryOf(t, alarm)
					if !strings.Contains(q.expression, wantWhere) {
						t.Errorf("query %q does not select the task by its resource ID", q.expression)
					}
					if q.metrics[0].period != stacks.CountAlarmPeriod.Seconds() {
						t.Errorf("query period %v, want %v", q.metrics[0].period, stacks.CountAlarmPeriod.Seconds())
					}
				})
			}

			// A stopped or failed task reports nothing: only missing data
			// breaches (latency is never below 0), for 15 minutes.
			silent, ok := alarms["DmsTaskSilentAlarm"]
			if !ok {
				t.Fatal("no DmsTaskSilentAlarm")
			}
			sp := props(silent)
			if sp["ComparisonOperator"] != "LessThanThreshold" || sp["Threshold"] != 0.0 || sp["TreatMissingData"] != "breaching" ||
				sp["EvaluationPeriods"] != 3.0 || sp["DatapointsToAlarm"] != 3.0 {
				t.Errorf("DmsTaskSilentAlarm = %v %v, missing %v, %v of %v periods; want < 0, missing breaching, 3 of 3",
					sp["ComparisonOperator"], sp["Threshold"], sp["TreatMissingData"], sp["DatapointsToAlarm"], sp["EvaluationPeriods"])
			}
			if q := queryOf(t, silent); !strings.Contains(q.expression, wantWhere) || !strings.Contains(q.expression, "CDCLatencySource") {
				t.Errorf("DmsTaskSilentAlarm query %q does not watch the task's CDCLatencySource", q.expression)
			}

			// The suppressor: in ALARM while the task-control function or the
			// reconnection after a password rotation runs: both stop and
			// resume the task on purpose.
			control, ok := alarms["DmsTaskControlActiveAlarm"]
			if !ok {
				t.Fatal("no DmsTaskControlActiveAlarm")
			}
			planned := []string{
				logicalID(t, tmpl, "AWS::Lambda::Function", map[string]any{"Description": assertions.Match_StringLikeRegexp(ptr("starts, stops and resumes the DMS replication task"))}),
				logicalID(t, tmpl, "AWS::Lambda::Function", map[string]any{"Description": assertions.Match_StringLikeRegexp(ptr("stops and resumes the replication task so that it logs in with the new password"))}),
			}
			cq := queryOf(t, control)
			var watched []string
			for _, m := range cq.metrics {
				if m.namespace == "AWS/Lambda" && m.name == "Invocations" && m.stat == "Sum" {
					watched = append(watched, m.dimensions)
				}
			}
			if len(watched) != len(planned) || cq.expression != "FILL(f0, 0) + FILL(f1, 0)" {
				t.Errorf("DmsTaskControlActiveAlarm watches %+v (%q), want the sum of the Invocations of %v", cq.metrics, cq.expression, planned)
			}
			for i, fn := range planned {
				if i < len(watched) && watched[i] != `[{"Name":"FunctionName","Value":{"Ref":"`+fn+`"}}]` {
					t.Errorf("DmsTaskControlActiveAlarm metric %d has dimensions %s, want function %s", i, watched[i], fn)
				}
			}
			cp := props(control)
			if cp["Threshold"] != 1.0 || cp["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || cp["TreatMissingData"] != "notBreaching" {
				t.Errorf("DmsTaskControlActiveAlarm = %v %v, missing %v; want >= 1 invocation, missing not breaching", cp["ComparisonOperator"], cp["Threshold"], cp["TreatMissingData"])
			}

			// One composite alarm notifies: any of the three, suppressed
			// while the task-control function runs and for the grace period.
			composites := resources(tmpl, "AWS::CloudWatch::CompositeAlarm", nil)
			if len(composites) != 1 {
				t.Fatalf("%d composite alarms, want DmsTaskAlarm", len(composites))
			}
			for id, c := range composites {
				if !strings.HasPrefix(id, "DmsTaskAlarm") {
					t.Errorf("composite alarm %s, want DmsTaskAlarm", id)
				}
				p := props(c)
				rule := flatten(t, p["AlarmRule"])
				for _, child := range []string{"DmsSourceLatencyAlarm", "DmsTargetLatencyAlarm", "DmsTaskSilentAlarm"} {
					if !regexp.MustCompile(`ALARM\("\{"Fn::GetAtt":\["` + child + `[0-9A-F]{8}","Arn"\]\}"\)`).MatchString(rule) {
						t.Errorf("rule %s does not fire on %s", rule, child)
					}
				}
				if strings.Contains(rule, " AND ") {
					t.Errorf("rule %s: any one of its alarms must fire it", rule)
				}
				if !strings.Contains(mustMarshal(t, p["ActionsSuppressor"]), `"DmsTaskControlActiveAlarm`) {
					t.Errorf("suppressor %v, want DmsTaskControlActiveAlarm", p["ActionsSuppressor"])
				}
				if p["ActionsSuppressorExtensionPeriod"] != stacks.DMSPlannedStopGrace.Seconds() {
					t.Errorf("extension period %v, want %v", p["ActionsSuppressorExtensionPeriod"], stacks.DMSPlannedStopGrace.Seconds())
				}
			}
			if len(alarms) != 5 {
				t.Errorf("%d alarms in the data stack, want the two latency alarms, the silent alarm, the control alarm and the reconnection alarm", len(alarms))
			}
		})
	}
}

// compositesOf returns a template's composite alarms by logical ID
// without CDK's hash suffix.
func compositesOf(tmpl assertions.Template) map[string]map[string]any {
	hash := regexp.MustCompile(`[0-9A-F]{8}$`)
	out := map[string]map[string]any{}
	for id, r := range resources(tmpl, "AWS::CloudWatch::CompositeAlarm", nil) {
		out[hash.ReplaceAllString(id, "")] = r
	}
	return out
}

// TestEveryAlarmNotifiesTheAlarmTopicOnAlarmAndOnOK: every alarm notifies
// the topic directly, or is part of (or suppresses) a composite alarm that
// does.
func TestEveryAlarmNotifiesTheAlarmTopicOnAlarmAndOnOK(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			topic := logicalID(t, s.template(stacks.CommonStackName), "AWS::SNS::Topic", nil)
			n := 0
			for name, tmpl := range s.templates {
				notifying := map[string]map[string]any{}
				viaComposite := map[string]bool{}
				for id, c := range compositesOf(tmpl) {
					notifying[id] = c
					refs := flatten(t, props(c)["AlarmRule"]) + mustMarshal(t, props(c)["ActionsSuppressor"])
					for child := range resources(tmpl, "AWS::CloudWatch::Alarm", nil) {
						if strings.Contains(refs, `"Fn::GetAtt":["`+child+`","Arn"]`) {
							viaComposite[regexp.MustCompile(`[0-9A-F]{8}$`).ReplaceAllString(child, "")] = true
						}
					}
				}
				for id, alarm := range alarmsOf(t, tmpl) {
					if viaComposite[id] {
						if p := props(alarm); p["AlarmActions"] != nil || p["OKActions"] != nil {
							t.Errorf("%s: %s notifies directly besides through its composite alarm", name, id)
						}
						continue
					}
					notifying[id] = alarm
				}
				for id, alarm := range notifying {
					n++
					p := props(alarm)
					for _, key := range []string{"AlarmActions", "OKActions"} {
						actions := asList(p[key])
						if len(actions) != 1 || !strings.Contains(mustMarshal(t, actions[0]), "ExportsOutputRef"+topic) {
							t.Errorf("%s: %s %s = %v, want the alarm topic only", name, id, key, p[key])
						}
					}
				}
				for id, alarm := range alarmsOf(t, tmpl) {
					if desc, _ := props(alarm)["AlarmDescription"].(string); len(desc) < 100 || len(desc) > 1024 {
						t.Errorf("%s: %s description has %d characters; it must tell an operator what happened and what to do, within CloudWatch's 1024", name, id, len(desc))
					}
				}
				for id, alarm := range compositesOf(tmpl) {
					if desc, _ := props(alarm)["AlarmDescription"].(string); len(desc) < 100 || len(desc) > 1024 {
						t.Errorf("%s: %s description has %d characters; it must tell an operator what happened and what to do, within CloudWatch's 1024", name, id, len(desc))
					}
				}
			}
			if n == 0 {
				t.Error("no alarms")
			}
		})
	}
}

func TestAlarmTopicIsEncryptedTLSOnlyAndOpenToTheAccountsAlarms(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.CommonStackName)
	topicID, topic := only(t, tmpl, "AWS::SNS::Topic", nil)
	keyRef, _ := props(topic)["KmsMasterKeyId"].(map[string]any)
	keyID, _ := keyRef["Fn::GetAtt"].([]any)
	if len(keyID) == 0 {
		t.Fatalf("topic key = %v, want a key of the stack", props(topic)["KmsMasterKeyId"])
	}
	alarmKey := keyID[0].(string)
	pipelineKey := logicalID(t, tmpl, "AWS::KMS::Key", map[string]any{"PendingWindowInDays": 30})
	if alarmKey == pipelineKey {
		t.Error("the topic uses the pipeline key; CloudWatch's grant on it would reach the change data")
	}

	fromAlarms := map[string]any{
		"StringEquals": map[string]any{"aws:SourceAccount": map[string]any{"Ref": "AWS::AccountId"}},
		"ArnLike":      map[string]any{"aws:SourceArn": match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{":alarm:*"})})})},
	}
	assertResource(t, tmpl, "AWS::KMS::Key", map[string]any{
		"Properties": map[string]any{
			"EnableKeyRotation": true,
			"KeyPolicy": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{match(map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey*"},
				"Condition": fromAlarms,
			})})},
		},
	})
	assertProps(t, tmpl, "AWS::SNS::TopicPolicy", map[string]any{
		"Topics": []any{ref(topicID)},
		"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{
			match(map[string]any{"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}}),
			match(map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    "sns:Publish",
				"Condition": fromAlarms,
			}),
		})},
	})
	if found := *tmpl.FindOutputs(ptr("AlarmTopicArn"), nil); len(found) != 1 {
		t.Error("the common stack does not output the alarm topic's ARN")
	}
}

func ptr(s string) *string { return &s }

func TestAlarmEmailSubscribesOnlyWhenConfigured(t *testing.T) {
	tests := []struct {
		variant variant
		email   string
	}{{lambdaProcessor, ""}, {customized, "ops@example.com"}}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.CommonStackName)
			subs := resources(tmpl, "AWS::SNS::Subscription", nil)
			if tt.email == "" {
				if len(subs) != 0 {
					t.Errorf("%d subscriptions without alarmEmail", len(subs))
				}
				return
			}
			topic := logicalID(t, tmpl, "AWS::SNS::Topic", nil)
			assertProps(t, tmpl, "AWS::SNS::Subscription", map[string]any{"Protocol": "email", "Endpoint": tt.email, "TopicArn": ref(topic)})
		})
	}
}

func TestDashboardShowsEveryAlarmAndTheDesignMetrics(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			_, dash := only(t, tmpl, "AWS::CloudWatch::Dashboard", nil)
			body := flatten(t, props(dash)["DashboardBody"])
			for id := range resources(tmpl, "AWS::CloudWatch::Alarm", nil) {
				if !strings.Contains(body, `{"Fn::GetAtt":["`+id+`","Arn"]}`) {
					t.Errorf("the dashboard does not show alarm %s", id)
				}
			}
			// The data stack's DMS alarms, imported by ARN.
			for id := range resources(s.template(stacks.DataStackName), "AWS::CloudWatch::Alarm", nil) {
				if !strings.Contains(body, "ExportsOutputFnGetAtt"+id+"Arn") {
					t.Errorf("the dashboard does not show the data stack's alarm %s", id)
				}
			}
			metrics := []string{
				`"GetRecords.IteratorAgeMilliseconds"`, `"WriteProvisionedThroughputExceeded"`, `"ReadProvisionedThroughputExceeded"`,
				`"Errors"`, `"Throttles"`, `"Duration"`, `"ConsumedReadCapacityUnits"`, `"ConsumedWriteCapacityUnits"`,
				`"ThrottledRequests"`, `"ApproximateNumberOfMessagesVisible"`,
			}
			metrics = append(metrics, processorAlarms[s.cfg.Processor](s.cfg).dashboardMetrics...)
			if s.cfg.DataLake {
				metrics = append(metrics, `"DeliveryToS3.DataFreshness"`)
			}
			for _, m := range metrics {
				if !strings.Contains(body, m) {
					t.Errorf("the dashboard has no graph of %s", m)
				}
			}
			if found := *tmpl.FindOutputs(ptr("DashboardName"), nil); len(found) != 1 {
				t.Error("the process stack does not output the dashboard's name")
			}
		})
	}
}

func TestLoadConfigValidatesTheMonitoringAndArchiveKeys(t *testing.T) {
	accepted := []struct {
		name  string
		ctx   map[string]any
		check func(stacks.Config) bool
	}{
		{"an e-mail address", map[string]any{"alarmEmail": "ops@example.com"},
			func(c stacks.Config) bool { return c.Alarms.Email == "ops@example.com" }},
		{"an empty e-mail address for no subscription", map[string]any{"alarmEmail": ""},
			func(c stacks.Config) bool { return c.Alarms.Email == "" }},
		{"the archive turned off from the command line", map[string]any{"dataLake": "false"},
			func(c stacks.Config) bool { return !c.DataLake }},
		{"thresholds as numbers and as text", map[string]any{
			"alarmIteratorAgeSeconds": float64(60), "alarmDmsLatencySeconds": "900", "alarmLambdaErrors": float64(3),
			"alarmThrottles": "20", "alarmDurationPercent": float64(95), "alarmDynamoCapacityPercent": float64(50),
		}, func(c stacks.Config) bool {
			return c.Alarms == stacks.AlarmThresholds{IteratorAgeSeconds: 60, DMSLatencySeconds: 900, LambdaErrors: 3, Throttles: 20, DurationPercent: 95, DynamoCapacityPercent: 50}
		}},
	}
	for _, tt := range accepted {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			got, err := loadConfig(t, tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("context %v gave %+v", tt.ctx, got)
			}
		})
	}
	rejected := []struct {
		key   string
		value any
		want  string
	}{
		{"alarmEmail", "ops", "an e-mail address"},
		{"alarmEmail", "Ops <ops@example.com>", "an e-mail address"},
		{"alarmEmail", "ops@localhost", "an e-mail address"},
		{"alarmEmail", "ops@example..com", "an e-mail address"},
		{"alarmEmail", float64(1), "an e-mail address"},
		{"dataLake", "yes", "true or false"},
		{"alarmIteratorAgeSeconds", float64(0), "an integer from 1 to 86400"},
		{"alarmDmsLatencySeconds", float64(86401), "an integer from 1 to 86400"},
		{"alarmLambdaErrors", float64(0), "an integer from 1 to 100000"},
		{"alarmThrottles", "many", "an integer from 1 to 1000000"},
		{"alarmDurationPercent", float64(101), "an integer from 1 to 100"},
		{"alarmDynamoCapacityPercent", float64(0), "an integer from 1 to 100"},
	}
	for _, tt := range rejected {
		t.Run(fmt.Sprintf("rejects %s set to %v", tt.key, tt.value), func(t *testing.T) {
			_, err := loadConfig(t, map[string]any{tt.key: tt.value})
			if err == nil {
				t.Fatalf("LoadConfig accepted %s=%v", tt.key, tt.value)
			}
			if msg := err.Error(); !strings.Contains(msg, `context "`+tt.key+`"`) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %s and what it accepts (%s)", msg, tt.key, tt.want)
			}
		})
	}
}
