package stacks

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/internal/enrich"
)

// newAlarmTopic creates the topic every alarm of the pipeline notifies, in
// state ALARM and back to OK, with the configured e-mail subscription.
//
// It has a key of its own rather than the pipeline key: CloudWatch must be
// allowed to use the topic's key, and that grant should not reach the key
// that protects the change data.
func newAlarmTopic(scope constructs.Construct, cfg Config) awssns.Topic {
	stack := awscdk.Stack_Of(scope)
	key := awskms.NewKey(scope, jsii.String("AlarmTopicKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the unified streaming ETL pipeline's alarm notifications."),
		EnableKeyRotation: jsii.Bool(true),
		PendingWindow:     awscdk.Duration_Days(jsii.Number(AlarmKeyDeletionWindowDays)),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	// CloudWatch alarms in this account and Region only (confused-deputy
	// guard), and only what publishing to an encrypted topic needs.
	fromAlarms := map[string]interface{}{
		"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()},
		"ArnLike":      map[string]interface{}{"aws:SourceArn": alarmArnPattern(stack)},
	}
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsEncryptNotifications"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"), // in a key policy, "*" is this key
		Conditions: &fromAlarms,
	}), nil)

	topic := awssns.NewTopic(scope, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Unified streaming ETL alarms"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	// The topic policy CDK writes for EnforceSSL replaces SNS's default
	// one, which let the account's alarms publish; say so explicitly.
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &fromAlarms,
	}))
	if cfg.Alarms.Email != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(cfg.Alarms.Email), nil))
	}
	return topic
}

// alarmArnPattern matches every CloudWatch alarm of the stack's account
// and Region.
func alarmArnPattern(stack awscdk.Stack) *string {
	return stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("cloudwatch"),
		Resource:     jsii.String("alarm"),
		ResourceName: jsii.String("*"),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
}

// alarmSpec describes one alarm: what it watches and when it fires.
type alarmSpec struct {
	id string
	// description is what an operator reads in the notification: what
	// happened and what to do.
	description string
	metric      awscloudwatch.IMetric
	threshold   float64
	// periods is how many consecutive evaluation periods must breach.
	periods int
	// missing says how a period without data counts; each alarm chooses
	// from what its metric's absence means.
	missing awscloudwatch.TreatMissingData
}

// alarmSet creates alarms that notify a topic.
type alarmSet struct {
	scope  constructs.Construct
	action awscloudwatch.IAlarmAction
	alarms []awscloudwatch.Alarm
}

func newAlarmSet(scope constructs.Construct, topic awssns.ITopic) *alarmSet {
	return &alarmSet{scope: scope, action: awscloudwatchactions.NewSnsAction(topic)}
}

// add creates an alarm that fires when the metric reaches the threshold
// in every one of the spec's periods, and notifies both on ALARM and on the
// way back to OK, so that whoever was paged learns it is over.
func (a *alarmSet) add(s alarmSpec) awscloudwatch.Alarm {
	alarm := awscloudwatch.NewAlarm(a.scope, jsii.String(s.id), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(s.description),
		Metric:             s.metric,
		Threshold:          jsii.Number(s.threshold),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		EvaluationPeriods:  jsii.Number(float64(s.periods)),
		DatapointsToAlarm:  jsii.Number(float64(s.periods)),
		TreatMissingData:   s.missing,
	})
	alarm.AddAlarmAction(a.action)
	alarm.AddOkAction(a.action)
	a.alarms = append(a.alarms, alarm)
	return alarm
}

func metricOptions(stat string, period time.Duration, label string) *awscloudwatch.MetricOptions {
	return &awscloudwatch.MetricOptions{
		Statistic: jsii.String(stat),
		Period:    awscdk.Duration_Seconds(jsii.Number(period.Seconds())),
		Label:     jsii.String(label),
	}
}

// metricsInsights is a CloudWatch Metrics Insights query (usable in alarms
// and graphs) for the maximum of a metric across every series of a
// namespace whose dimension has the given value. It serves metrics whose
// other dimensions the stacks cannot know: DMS task metrics are also keyed
// by the replication instance's name, which CloudFormation generates and
// does not return.
func metricsInsights(metric, namespace, dimension string, value *string, period time.Duration, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String(fmt.Sprintf(`SELECT MAX(%s) FROM "%s" WHERE %s = '`, metric, namespace, dimension)),
			value,
			jsii.String("'"),
		}),
		Period:       awscdk.Duration_Seconds(jsii.Number(period.Seconds())),
		Label:        jsii.String(label),
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
	})
}

// dmsTaskID is the replication task's resource ID, the last part of its
// ARN, which DMS uses as the ReplicationTaskIdentifier metric dimension.
func dmsTaskID(task awsdms.CfnReplicationTask) *string {
	return awscdk.Fn_Select(jsii.Number(6), awscdk.Fn_Split(jsii.String(":"), task.Ref(), nil))
}

// dmsTaskHandlerID is the construct ID (in the data stack) of the function
// that stops and starts the replication task for CloudFormation
// (newDMSTaskControl).
const dmsTaskHandlerID = "DmsTask"

// DMSPlannedStopGrace is how long after the task-control function last
// ran the DMS task alarm still keeps quiet: long enough for a resumed task
// to report metrics again and catch up on the changes made while it was
// stopped.
const DMSPlannedStopGrace = 20 * time.Minute

// newDMSAlarms watches the replication task: its CDC latency, and silence
// (no metrics: the task is stopped or failed). They live with the task: a
// task replaced by an update gets a new ID, and another stack importing
// the ID would block that update.
//
// The pipeline stops the task itself, through its task-control function,
// whenever an update changes the task or its endpoints, and the task is
// silent while stopped and behind right after. So the three metric alarms
// notify no one directly: one composite alarm, DmsTaskAlarm, notifies when
// any of them is in ALARM, and its notifications are suppressed while the
// task-control function runs and for DMSPlannedStopGrace after
// (composite alarm action suppression:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html).
// A task that does not come back from a planned stop still notifies once
// the grace period ends, as a composite alarm still in ALARM then performs
// its actions.
// planned are further functions (besides the task-control function) whose
// invocations stop and resume the task on purpose, such as the
// reconnection after a password rotation.
func newDMSAlarms(scope constructs.Construct, task awsdms.CfnReplicationTask, topic awssns.ITopic, cfg Config, planned ...awslambda.IFunction) []awscloudwatch.IAlarm {
	limit := cfg.Alarms.DMSLatencySeconds
	sustained := int(SustainedAlarmPeriods * CountAlarmPeriod / time.Minute)
	newSignal := func(id, description string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, missing awscloudwatch.TreatMissingData) awscloudwatch.Alarm {
		return awscloudwatch.NewAlarm(scope, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: op,
			EvaluationPeriods:  jsii.Number(float64(SustainedAlarmPeriods)),
			DatapointsToAlarm:  jsii.Number(float64(SustainedAlarmPeriods)),
			TreatMissingData:   missing,
		})
	}
	var signals []awscloudwatch.Alarm
	for _, m := range []struct{ id, metric, what, action string }{
		{"DmsSourceLatencyAlarm", "CDCLatencySource",
			"the gap between the last change DMS captured from the MySQL binlog and now",
			"check the database (load, long transactions, binlog retention) and the task's CloudWatch log; a large source latency with a small target latency means DMS cannot read the source fast enough"},
		{"DmsTargetLatencyAlarm", "CDCLatencyTarget",
			"the gap between the oldest change waiting to be written to the unified order stream and now",
			"check WriteProvisionedThroughputExceeded on the unified stream (add shards) and the replication instance's CPU and memory (larger dmsInstanceClass)"},
	} {
		signals = append(signals, newSignal(m.id,
			fmt.Sprintf("Part of DmsTaskAlarm, which notifies. The DMS task's %s (%s) has been %d s or more for %d minutes. Check the task's status in the DMS console, then %s.",
				m.metric, m.what, limit, sustained, m.action),
			metricsInsights(m.metric, "AWS/DMS", "ReplicationTaskIdentifier", dmsTaskID(task), CountAlarmPeriod, m.metric),
			float64(limit), awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// A stopped task reports nothing; silence is DmsTaskSilentAlarm's.
			awscloudwatch.TreatMissingData_NOT_BREACHING))
	}
	// DMS reports task metrics every minute while the task runs; no
	// latency at all for the whole window means it is stopped or failed.
	// Latency is never negative, so only missing data breaches.
	signals = append(signals, newSignal("DmsTaskSilentAlarm",
		fmt.Sprintf("Part of DmsTaskAlarm, which notifies. The DMS task has reported no CDC latency for %d minutes: it is stopped or failed, and nothing reaches the pipeline. "+
			"Check the task's status and its CloudWatch log in the DMS console, and start or resume it.", sustained),
		metricsInsights("CDCLatencySource", "AWS/DMS", "ReplicationTaskIdentifier", dmsTaskID(task), CountAlarmPeriod, "CDCLatencySource"),
		0, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, awscloudwatch.TreatMissingData_BREACHING))

	handler, ok := awscdk.Stack_Of(scope).Node().TryFindChild(jsii.String(dmsTaskHandlerID)).(awslambda.IFunction)
	if !ok {
		panic("stacks: the DMS task alarms need the task-control function " + dmsTaskHandlerID + ", created first")
	}
	controlling := awscloudwatch.NewAlarm(scope, jsii.String("DmsTaskControlActiveAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("Not a fault, notifies no one: in ALARM while the pipeline's task-control function stops, starts or resumes the DMS task " +
			"(on a deployment that changes the task or its endpoints), which suppresses DmsTaskAlarm's notifications for that planned stop."),
		Metric:             plannedStops(append([]awslambda.IFunction{handler}, planned...)),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	rules := make([]awscloudwatch.IAlarmRule, len(signals))
	for i, a := range signals {
		rules[i] = awscloudwatch.AlarmRule_FromAlarm(a, awscloudwatch.AlarmState_ALARM)
	}
	composite := awscloudwatch.NewCompositeAlarm(scope, jsii.String("DmsTaskAlarm"), &awscloudwatch.CompositeAlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf("The DMS task is stopped or failed (no metrics for %d minutes: DmsTaskSilentAlarm), or its CDC latency has been %d s or more for %d minutes (DmsSourceLatencyAlarm, DmsTargetLatencyAlarm). "+
			"Quiet while a deployment stops and resumes the task, and for %d minutes after. Open the task in the DMS console: start or resume it if stopped, read its CloudWatch log if failed; "+
			"for source latency check the database's load and binlog retention, for target latency the unified stream's throttling and the replication instance's size.",
			sustained, limit, sustained, int(DMSPlannedStopGrace/time.Minute))),
		AlarmRule:                        awscloudwatch.AlarmRule_AnyOf(rules...),
		ActionsSuppressor:                controlling,
		ActionsSuppressorExtensionPeriod: awscdk.Duration_Seconds(jsii.Number(DMSPlannedStopGrace.Seconds())),
		// The function runs before the task stops, so it is in ALARM first.
		ActionsSuppressorWaitPeriod: awscdk.Duration_Seconds(jsii.Number(time.Minute.Seconds())),
	})
	action := awscloudwatchactions.NewSnsAction(topic)
	composite.AddAlarmAction(action)
	composite.AddOkAction(action)

	alarms := []awscloudwatch.IAlarm{composite}
	for _, a := range signals {
		alarms = append(alarms, a)
	}
	return append(alarms, controlling)
}

// plannedStops is the number of invocations, per minute, of the functions
// that stop and resume the DMS task on purpose.
func plannedStops(fns []awslambda.IFunction) awscloudwatch.IMetric {
	if len(fns) == 1 {
		return fns[0].MetricInvocations(metricOptions("Sum", time.Minute, "task-control invocations"))
	}
	using := map[string]awscloudwatch.IMetric{}
	terms := make([]string, len(fns))
	for i, fn := range fns {
		id := fmt.Sprintf("f%d", i)
		using[id] = fn.MetricInvocations(metricOptions("Sum", time.Minute, ""))
		terms[i] = fmt.Sprintf("FILL(%s, 0)", id)
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(strings.Join(terms, " + ")),
		UsingMetrics: &using,
		Label:        jsii.String("task-control invocations"),
		Period:       awscdk.Duration_Minutes(jsii.Number(1)),
	})
}

// processMonitoring is what the process stack's alarms and dashboard
// watch.
type processMonitoring struct {
	cfg Config
	// flow is the pipeline's path from the unified stream on, as the
	// dashboard's heading shows it.
	flow  string
	topic awssns.ITopic
	// streams are the unified and the enriched stream.
	streams []namedStream
	// functions are the stream processors and the sink.
	functions []watchedFunction
	tables    []watchedTable
	queues    []namedQueue
	// sections are the processor's own dashboard sections and alarms,
	// shown after the functions.
	sections []func(*processMonitor)
	archive  awskinesisfirehose.IDeliveryStream
	// failures is the mappings' on-failure destination.
	failures awss3.IBucket
	// dmsAlarms are the data stack's alarms, shown on the dashboard.
	dmsAlarms []awscloudwatch.IAlarm
}

type namedStream struct {
	name   string
	stream awskinesis.IStream
	// polled is set when something in the pipeline reads the stream with
	// GetRecords (a polling event source mapping, Firehose, KDA), the
	// only reads the stream's iterator age metric reports.
	polled bool
}

type watchedFunction struct {
	name    string
	fn      awslambda.IFunction
	timeout time.Duration
	// streamFed is set for functions an event source mapping invokes, which
	// report IteratorAge.
	streamFed bool
	// loadsCatalogue is set for the function that reads the product
	// catalogue and reports its failed refreshes.
	loadsCatalogue bool
}

type watchedTable struct {
	name  string
	table awsdynamodb.ITable
	// operations are the calls the functions make on the table, whose
	// ThrottledRequests the dashboard graphs.
	operations  []awsdynamodb.Operation
	provisioned *provisionedCapacity
}

type provisionedCapacity struct{ read, write int }

type namedQueue struct {
	name  string
	queue awssqs.IQueue
}

// processMonitor builds the process stack's alarms and the pipeline's
// dashboard, one section of the dashboard after the other.
type processMonitor struct {
	processMonitoring
	set            *alarmSet
	d              *dashboardBuilder
	th             AlarmThresholds
	sustained      int // minutes of SustainedAlarmPeriods
	latencyMinutes int // minutes of LatencyAlarmPeriods
}

// newProcessMonitoring creates the process stack's alarms and the
// pipeline's dashboard.
func newProcessMonitoring(scope constructs.Construct, m processMonitoring) ([]awscloudwatch.Alarm, awscloudwatch.Dashboard) {
	pm := &processMonitor{
		processMonitoring: m,
		set:               newAlarmSet(scope, m.topic),
		d:                 newDashboardBuilder(),
		th:                m.cfg.Alarms,
		sustained:         int(SustainedAlarmPeriods * CountAlarmPeriod / time.Minute),
		latencyMinutes:    int(LatencyAlarmPeriods * LatencyAlarmPeriod / time.Minute),
	}
	if len(m.dmsAlarms) > 0 {
		pm.addReplication()
	}
	monitorEach(pm.d, "Streams", "Kinesis: how far behind the consumers read, and throttling.", m.streams, pm.addStream)
	monitorEach(pm.d, "Functions", "Lambda: failed invocations, throttles, duration against the timeout, and how old the records they receive are.", m.functions, func(f watchedFunction) {
		pm.addFunction(f)
		if f.loadsCatalogue {
			pm.addCatalogue(f)
		}
	})
	for _, add := range m.sections {
		add(pm)
	}
	monitorEach(pm.d, "Tables", "DynamoDB: consumed capacity and throttling.", m.tables, pm.addTable)
	monitorEach(pm.d, "Dead-letter queues", "Records the functions could not process, with the reason.", m.queues, pm.addQueue)
	if m.failures != nil {
		pm.addFailureBucket()
	}
	if m.archive != nil {
		pm.addArchive()
	}
	return pm.set.alarms, pm.dashboard(scope)
}

// monitorEach starts a dashboard section and adds each of its resources.
func monitorEach[T any](d *dashboardBuilder, title, text string, resources []T, add func(T)) {
	d.section(title, text)
	for _, r := range resources {
		add(r)
	}
}

// addReplication shows the data stack's DMS alarms.
func (pm *processMonitor) addReplication() {
	d, m := pm.d, pm.processMonitoring
	d.section("Replication", "DMS: CDC latency of the replication task (alarms of the data stack), where the pipeline starts.")
	for _, a := range m.dmsAlarms {
		// Composite alarms have no graph; the status widget shows them.
		if _, isMetricAlarm := a.(awscloudwatch.Alarm); !isMetricAlarm {
			continue
		}
		d.add(awscloudwatch.NewAlarmWidget(&awscloudwatch.AlarmWidgetProps{Alarm: a, Title: a.AlarmName(), Width: jsii.Number(dashboardWidth / 2), Height: jsii.Number(graphHeight)}))
	}
}

// addStream watches a stream's consumers and throttling.
func (pm *processMonitor) addStream(s namedStream) {
	set, d, th, sustained, latencyMinutes := pm.set, pm.d, pm.th, pm.sustained, pm.latencyMinutes
	// GetRecords.IteratorAgeMilliseconds is reported for GetRecords calls
	// only; enhanced fan-out reads (SubscribeToShard) do not report it
	// (docs/aws-facts.md §6).
	// https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html
	// A polling consumer (a Lambda mapping, KDA, Firehose) calls GetRecords
	// on each shard about once a second, idle or not: there, no data means
	// nobody reads. A stream nothing in the pipeline polls reports nothing
	// at all; its readers' lag is their own IteratorAge alarms'.
	missing := awscloudwatch.TreatMissingData_BREACHING
	stalled := ", or nothing has read the stream at all: the pipeline is falling behind or stopped"
	if !s.polled {
		missing = awscloudwatch.TreatMissingData_NOT_BREACHING
		stalled = " (nothing in the pipeline polls the stream, so no data is not an alarm; the consuming functions' IteratorAge alarms watch their lag): the pipeline is falling behind"
	}
	age := set.add(alarmSpec{
		id: s.name + "IteratorAgeAlarm",
		description: fmt.Sprintf("A consumer of the %s stream has been reading records more than %d s old for %d minutes%s. "+
			"Check the consuming function's Errors, Throttles and Duration (or the KDA application and the archive's delivery); if it is healthy but slow, add shards or raise parallelizationFactor. "+
			"Records older than the stream's retention are lost.", s.name, th.IteratorAgeSeconds, latencyMinutes, stalled),
		metric:    s.stream.MetricGetRecordsIteratorAgeMilliseconds(metricOptions("Maximum", LatencyAlarmPeriod, "iterator age (max)")),
		threshold: float64(th.IteratorAgeSeconds * 1000),
		periods:   LatencyAlarmPeriods,
		missing:   missing,
	})
	var throttled []awscloudwatch.IMetric
	for _, t := range []struct {
		kind, what string
		metric     awscloudwatch.IMetric
	}{
		{"Write", "records DMS or the processor wrote", s.stream.MetricWriteProvisionedThroughputExceeded(metricOptions("Sum", CountAlarmPeriod, "write throttled"))},
		{"Read", "GetRecords calls of its consumers", s.stream.MetricReadProvisionedThroughputExceeded(metricOptions("Sum", CountAlarmPeriod, "read throttled"))},
	} {
		set.add(alarmSpec{
			id: s.name + t.kind + "ThrottledAlarm",
			description: fmt.Sprintf("Kinesis has throttled %d or more %s on the %s stream in each of the last %d minutes: the stream is at its shard limits. "+
				"Writers and readers retry, so nothing is lost yet, but the pipeline slows down; add shards (%s, %s) or switch the stream to on-demand.",
				th.Throttles, t.what, s.name, sustained, KeyUnifiedStreamShards, KeyEnrichedStreamShards),
			metric:    t.metric,
			threshold: float64(th.Throttles),
			periods:   SustainedAlarmPeriods,
			// Reported only while the stream is written or read.
			missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		throttled = append(throttled, t.metric)
	}
	d.graph(s.name+" iterator age (ms)", []awscloudwatch.IMetric{s.stream.MetricGetRecordsIteratorAgeMilliseconds(metricOptions("Maximum", LatencyAlarmPeriod, "iterator age (max)"))}, age)
	d.graph(s.name+" throttled", throttled, nil)
	d.graph(s.name+" records in", []awscloudwatch.IMetric{s.stream.MetricIncomingRecords(metricOptions("Sum", LatencyAlarmPeriod, "incoming records"))}, nil)
}

// addFunction watches a function's errors, throttles, duration and, when
// a stream feeds it, iterator age.
func (pm *processMonitor) addFunction(f watchedFunction) {
	set, d, th, sustained, latencyMinutes := pm.set, pm.d, pm.th, pm.sustained, pm.latencyMinutes
	errs := f.fn.MetricErrors(metricOptions("Sum", CountAlarmPeriod, "errors"))
	throttles := f.fn.MetricThrottles(metricOptions("Sum", CountAlarmPeriod, "throttles"))
	set.add(alarmSpec{
		id: f.name + "ErrorsAlarm",
		description: fmt.Sprintf("The %s function failed %d or more invocations in five minutes: it crashed, timed out or could process nothing in a batch. Lambda retries the batch (splitting it) and then writes it, with its records, to the failure bucket. "+
			"Read the function's log for the error and fix configuration or permission errors (a KMS access denial: the pipeline key's policy does not name the role; README, Security), "+
			"then replay the failure bucket (etl replay --process-stack) or repair (etl repair).", f.name, th.LambdaErrors),
		metric:    errs,
		threshold: float64(th.LambdaErrors),
		periods:   1,
		// Lambda reports errors only for invocations.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	set.add(alarmSpec{
		id: f.name + "ThrottlesAlarm",
		description: fmt.Sprintf("Lambda throttled %d or more invocations of the %s function in each of the last %d minutes: the account's (or the function's reserved) concurrency is exhausted, and the stream falls behind. "+
			"Raise the concurrency quota, or lower %s where other functions need the concurrency.", th.Throttles, f.name, sustained, KeyParallelization),
		metric:    throttles,
		threshold: float64(th.Throttles),
		periods:   SustainedAlarmPeriods,
		missing:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	limitMs := float64(th.DurationPercent) / 100 * float64(f.timeout.Milliseconds())
	duration := set.add(alarmSpec{
		id: f.name + "DurationAlarm",
		description: fmt.Sprintf("The %s function's p99 duration has been at %d%% or more of its %.0f s timeout for %d minutes: slow calls (throttled writes, retries) will soon make invocations time out. "+
			"Check the throttling alarms of what it writes to, and lower %s if batches are simply too large.", f.name, th.DurationPercent, f.timeout.Seconds(), sustained, KeyBatchSize),
		metric:    f.fn.MetricDuration(metricOptions("p99", CountAlarmPeriod, "duration p99")),
		threshold: limitMs,
		periods:   SustainedAlarmPeriods,
		missing:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	d.graph(f.name+" errors and throttles", []awscloudwatch.IMetric{errs, throttles}, nil)
	d.graphWithLimit(f.name+" duration (ms)", []awscloudwatch.IMetric{f.fn.MetricDuration(metricOptions("p99", CountAlarmPeriod, "duration p99"))}, duration, float64(f.timeout.Milliseconds()), "timeout")
	if f.streamFed {
		iteratorAge := f.fn.Metric(jsii.String("IteratorAge"), metricOptions("Maximum", LatencyAlarmPeriod, "iterator age (max)"))
		alarm := set.add(alarmSpec{
			id: f.name + "IteratorAgeAlarm",
			description: fmt.Sprintf("The %s function has been receiving records more than %d s old for %d minutes: it cannot keep up with its stream, or keeps retrying a failing batch. "+
				"Check its Errors and Duration alarms; if it is healthy but slow, raise %s or add shards.", f.name, th.IteratorAgeSeconds, latencyMinutes, KeyParallelization),
			metric:    iteratorAge,
			threshold: float64(th.IteratorAgeSeconds * 1000),
			periods:   LatencyAlarmPeriods,
			// Reported per batch; a stalled stream is the stream
			// alarm's to catch.
			missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		d.graph(f.name+" iterator age (ms)", []awscloudwatch.IMetric{iteratorAge}, alarm)
	}
}

// addCatalogue watches the product catalogue refreshes of the function
// that loads it.
func (pm *processMonitor) addCatalogue(f watchedFunction) {
	set, d := pm.set, pm.d
	// Written by the function itself, as an embedded-metric-format
	// log line, each time a catalogue refresh fails.
	refreshFailures := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(enrich.MetricsNamespace),
		MetricName:    jsii.String(enrich.MetricReferenceRefreshFailures),
		DimensionsMap: &map[string]*string{enrich.MetricDimensionFunction: f.fn.FunctionName()},
		Statistic:     jsii.String("Sum"),
		Period:        awscdk.Duration_Seconds(jsii.Number(CountAlarmPeriod.Seconds())),
		Label:         jsii.String("catalogue refresh failures"),
	})
	alarm := set.add(alarmSpec{
		id: f.name + "ReferenceDataAlarm",
		description: fmt.Sprintf("The %s function could not load a new version of the product catalogue (%s in the reference bucket is unreadable, empty, or has a line that is not a product) "+
			"and keeps joining with the last good one, so new product names and prices are not applied. Its log says what is wrong with the object; fix the file and deploy it again.",
			f.name, ReferenceDataKey),
		metric:    refreshFailures,
		threshold: 1,
		periods:   1,
		// Reported only when a refresh fails.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	d.graph(f.name+" catalogue refresh failures", []awscloudwatch.IMetric{refreshFailures}, alarm)
}

// addTable watches a table's throttling and, when provisioned, its
// capacity use.
func (pm *processMonitor) addTable(t watchedTable) {
	set, d, th, sustained := pm.set, pm.d, pm.th, pm.sustained
	// Read/WriteThrottleEvents count every throttled item access;
	// ThrottledRequests, graphed beside them, misses batches that were
	// only partly throttled, which is all the join state table sees.
	reads := t.table.Metric(jsii.String("ReadThrottleEvents"), metricOptions("Sum", CountAlarmPeriod, "read throttle events"))
	writes := t.table.Metric(jsii.String("WriteThrottleEvents"), metricOptions("Sum", CountAlarmPeriod, "write throttle events"))
	throttled := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String("FILL(reads, 0) + FILL(writes, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{"reads": reads, "writes": writes},
		Period:       awscdk.Duration_Seconds(jsii.Number(CountAlarmPeriod.Seconds())),
		Label:        jsii.String("throttle events"),
	})
	alarm := set.add(alarmSpec{
		id: t.name + "ThrottledAlarm",
		description: fmt.Sprintf("DynamoDB throttled %d or more reads or writes on the %s table in each of the last %d minutes. The functions retry with backoff, so nothing is lost, but they slow down and may time out. "+
			"For on-demand tables this is a hot partition or the table's throughput quota; for provisioned tables raise %s/%s or switch %s to on-demand.",
			th.Throttles, t.name, sustained, KeyDynamoWriteCapacity, KeyDynamoReadCapacity, KeyDynamoBilling),
		metric:    throttled,
		threshold: float64(th.Throttles),
		periods:   SustainedAlarmPeriods,
		// DynamoDB reports throttling only when it happens.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	readCapacity := t.table.MetricConsumedReadCapacityUnits(metricOptions("Sum", CountAlarmPeriod, "consumed RCU"))
	writeCapacity := t.table.MetricConsumedWriteCapacityUnits(metricOptions("Sum", CountAlarmPeriod, "consumed WCU"))
	var capacityAlarms []awscloudwatch.Alarm
	if t.provisioned != nil {
		for _, c := range []struct {
			kind     string
			metric   awscloudwatch.IMetric
			capacity int
			key      string
		}{
			{"Read", readCapacity, t.provisioned.read, KeyDynamoReadCapacity},
			{"Write", writeCapacity, t.provisioned.write, KeyDynamoWriteCapacity},
		} {
			perSecond := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression:   jsii.String("consumed / PERIOD(consumed)"),
				UsingMetrics: &map[string]awscloudwatch.IMetric{"consumed": c.metric},
				Period:       awscdk.Duration_Seconds(jsii.Number(CountAlarmPeriod.Seconds())),
				Label:        jsii.String("consumed " + strings.ToLower(c.kind) + " capacity per second"),
			})
			capacityAlarms = append(capacityAlarms, set.add(alarmSpec{
				id: t.name + c.kind + "CapacityAlarm",
				description: fmt.Sprintf("The %s table has used %d%% or more of its %d provisioned %s capacity units for %d minutes; at 100%% DynamoDB throttles it. Raise %s, or switch %s to on-demand.",
					t.name, th.DynamoCapacityPercent, c.capacity, strings.ToLower(c.kind), sustained, c.key, KeyDynamoBilling),
				metric:    perSecond,
				threshold: float64(th.DynamoCapacityPercent) / 100 * float64(c.capacity),
				periods:   SustainedAlarmPeriods,
				// Consumption is reported only while the table is used.
				missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
			}))
		}
	}
	d.graph(t.name+" consumed capacity", []awscloudwatch.IMetric{readCapacity, writeCapacity}, nil, capacityAlarms...)
	d.graph(t.name+" throttling", []awscloudwatch.IMetric{
		reads, writes, t.table.MetricThrottledRequestsForOperations(&awsdynamodb.OperationsMetricOptions{
			Operations: &t.operations,
			Statistic:  jsii.String("Sum"),
			Period:     awscdk.Duration_Seconds(jsii.Number(CountAlarmPeriod.Seconds())),
			Label:      jsii.String("throttled requests"),
		}),
	}, alarm)
}

// addQueue watches a dead-letter queue's depth.
func (pm *processMonitor) addQueue(q namedQueue) {
	set, d := pm.set, pm.d
	visible := q.queue.MetricApproximateNumberOfMessagesVisible(metricOptions("Maximum", CountAlarmPeriod, "messages visible"))
	alarm := set.add(alarmSpec{
		id: q.name + "DepthAlarm",
		description: fmt.Sprintf("The %s dead-letter queue holds messages: records the function could not process (malformed records, or values DynamoDB cannot store), each with its reason. "+
			"Read the messages, fix the cause, then replay them; messages are kept for %d days.", q.name, int(DLQRetention/(24*time.Hour))),
		metric:    visible,
		threshold: 1,
		periods:   1,
		// SQS stops reporting a queue that has been empty and unused
		// for six hours.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	d.graph(q.name+" dead-letter queue", []awscloudwatch.IMetric{visible}, alarm)
}

// addArchive watches the raw archive's delivery.
func (pm *processMonitor) addArchive() {
	set, d, th, sustained, m := pm.set, pm.d, pm.th, pm.sustained, pm.processMonitoring
	d.section("Raw archive", "Firehose delivery of the unified stream to S3.")
	freshness := m.archive.Metric(jsii.String("DeliveryToS3.DataFreshness"), metricOptions("Maximum", CountAlarmPeriod, "age of the oldest undelivered record (s)"))
	limit := ArchiveBufferInterval.Seconds() + float64(th.IteratorAgeSeconds)
	alarm := set.add(alarmSpec{
		id: "ArchiveFreshnessAlarm",
		description: fmt.Sprintf("The raw archive has held a record for more than %.0f s (its %s buffer plus the iterator-age threshold) for %d minutes: Firehose cannot write to the archive bucket. "+
			"Check the delivery stream's error log and the S3 error prefix; the unified stream keeps records for its retention only, after which they are missing from the archive.",
			limit, fmt.Sprintf("%.0f s", ArchiveBufferInterval.Seconds()), sustained),
		metric:    freshness,
		threshold: limit,
		periods:   SustainedAlarmPeriods,
		// Reported while there is something to deliver.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	d.graph("Archive data freshness (s)", []awscloudwatch.IMetric{freshness}, alarm)
	d.graph("Archive records delivered", []awscloudwatch.IMetric{
		m.archive.Metric(jsii.String("DeliveryToS3.Records"), metricOptions("Sum", CountAlarmPeriod, "records delivered")),
	}, nil)
}

// dashboard creates the dashboard: the alarm status of the whole
// pipeline above the sections.
func (pm *processMonitor) dashboard(scope constructs.Construct) awscloudwatch.Dashboard {
	set, d, m := pm.set, pm.d, pm.processMonitoring
	all := make([]interfacesawscloudwatch.IAlarmRef, 0, len(set.alarms)+len(m.dmsAlarms))
	for _, a := range m.dmsAlarms {
		all = append(all, a)
	}
	for _, a := range set.alarms {
		all = append(all, a)
	}
	dashboard := awscloudwatch.NewDashboard(scope, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	dashboard.AddWidgets(
		awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{
			Markdown: jsii.String("# Unified streaming ETL\nMySQL → DMS → unified stream → " + m.flow + ". " +
				"Every alarm notifies the alarm topic on ALARM and on OK; the README says what each means and what to do."),
			Width: jsii.Number(dashboardWidth), Height: jsii.Number(2),
		}),
	)
	dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Alarms: &all, Width: jsii.Number(dashboardWidth), Height: jsii.Number(alarmStatusHeight(len(all))),
	}))
	for _, row := range d.rows {
		dashboard.AddWidgets(row...)
	}
	return dashboard
}

// Dashboard layout, in CloudWatch's 24-column grid.
const (
	dashboardWidth = 24
	graphWidth     = 8
	graphHeight    = 6
)

// alarmStatusHeight fits n alarms in a status widget, four per row.
func alarmStatusHeight(n int) float64 {
	return float64(2 + (n+3)/4)
}

// dashboardBuilder lays widgets out in titled sections, three graphs a
// row.
type dashboardBuilder struct {
	rows [][]awscloudwatch.IWidget
}

func newDashboardBuilder() *dashboardBuilder { return &dashboardBuilder{} }

func (d *dashboardBuilder) section(title, text string) {
	d.rows = append(d.rows, []awscloudwatch.IWidget{awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{
		Markdown: jsii.String("## " + title + "\n" + text), Width: jsii.Number(dashboardWidth), Height: jsii.Number(2),
	})}, nil)
}

func (d *dashboardBuilder) add(w awscloudwatch.IWidget) {
	if len(d.rows) == 0 {
		d.rows = append(d.rows, nil)
	}
	last := len(d.rows) - 1
	width := 0.0
	for _, x := range d.rows[last] {
		width += *x.Width()
	}
	if width+*w.Width() > dashboardWidth {
		d.rows = append(d.rows, nil)
		last++
	}
	d.rows[last] = append(d.rows[last], w)
}

// graph adds a graph of metrics with the thresholds of the alarms on
// them.
func (d *dashboardBuilder) graph(title string, metrics []awscloudwatch.IMetric, alarm awscloudwatch.Alarm, more ...awscloudwatch.Alarm) {
	var annotations []*awscloudwatch.HorizontalAnnotation
	if alarm != nil {
		annotations = append(annotations, alarm.ToAnnotation())
	}
	for _, a := range more {
		annotations = append(annotations, a.ToAnnotation())
	}
	d.add(awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title), Left: &metrics, LeftAnnotations: &annotations,
		Width: jsii.Number(graphWidth), Height: jsii.Number(graphHeight),
	}))
}

// graphWithLimit is graph with a second line for a hard limit.
func (d *dashboardBuilder) graphWithLimit(title string, metrics []awscloudwatch.IMetric, alarm awscloudwatch.Alarm, limit float64, label string) {
	annotations := []*awscloudwatch.HorizontalAnnotation{alarm.ToAnnotation(), {Value: jsii.Number(limit), Label: jsii.String(label), Color: awscloudwatch.Color_RED()}}
	d.add(awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title), Left: &metrics, LeftAnnotations: &annotations,
		Width: jsii.Number(graphWidth), Height: jsii.Number(graphHeight),
	}))
}
