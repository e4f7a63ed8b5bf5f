package stacks

import (
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/enrich"
)

// enrichProcessor is processor=lambda: the enrich function with its join
// state table, dead-letter queue and event source mapping on the unified
// stream.
type enrichProcessor struct {
	fn    awslambda.Function
	dlq   awssqs.Queue
	state awsdynamodb.Table
}

func newEnrichProcessor(stack awscdk.Stack, in processorInputs) (processor, error) {
	cfg, key := in.cfg, in.props.Key
	// TTL on "ttl" expires tombstones only: live rows carry none and
	// never expire (internal/enrich/state.go).
	// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
	stateProps := tableProps(key,
		&awsdynamodb.Attribute{Name: jsii.String(StatePartitionKey), Type: awsdynamodb.AttributeType_STRING},
		&awsdynamodb.Attribute{Name: jsii.String(StateSortKey), Type: awsdynamodb.AttributeType_STRING})
	stateProps.TimeToLiveAttribute = jsii.String(StateTTLAttribute)
	e := &enrichProcessor{state: awsdynamodb.NewTable(stack, jsii.String("JoinState"), stateProps)}
	e.dlq = newDeadLetterQueue(stack, "EnrichDeadLetterQueue", key)
	e.fn = newGoFunction(stack, "Enrich", goFunctionProps{
		AssetDir:    in.assets[FunctionEnrich],
		Description: "Joins orders with their items and products, with state in DynamoDB, into the OrderEnriched table.",
		MemoryMiB:   EnrichMemoryMiB,
		Timeout:     EnrichTimeout,
		Retention:   cfg.logRetention(),
		Environment: e.environment(in),
	})
	// Exactly the calls internal/enrich makes on its state: Query and
	// BatchGetItem to read, BatchWriteItem (puts only) to write; rows
	// expire through the table's TTL, never by DeleteItem.
	grantTableCalls(e.state, key, e.fn, "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
	// One hop: exactly the sink's calls on OrderEnriched, which enrich
	// makes through the same code (internal/sink): a conditional PutItem
	// for an upsert and a conditional DeleteItem for a delete.
	grantTableCalls(in.table, key, e.fn, "dynamodb:PutItem", "dynamodb:DeleteItem")
	if in.output != nil {
		in.output.GrantWrite(e.fn)
	}
	// The old key's delete of a row moved to another order goes back
	// on the order stream, keyed by the old orderId (internal/enrich/rekey.go).
	in.props.OrderStream.GrantWrite(e.fn)
	in.reference.bucket.GrantRead(e.fn, jsii.String(ReferenceDataKey))
	suppressObjectReadWildcards(e.fn.Role(), "the products object ("+ReferenceDataKey+")")
	e.dlq.GrantSendMessages(e.fn)
	e.addEventSource(in)
	return e, nil
}

// environment is the function's configuration (internal/enrich
// ConfigFromEnv): OUTPUT_STREAM only when there is an enriched stream.
func (e *enrichProcessor) environment(in processorInputs) map[string]*string {
	env := map[string]*string{
		enrich.EnvStateTable:       e.state.TableName(),
		enrich.EnvTombstoneDays:    jsii.String(strconv.Itoa(in.cfg.JoinStateTombstoneDays)),
		enrich.EnvOutputTable:      in.table.TableName(),
		enrich.EnvSourceStream:     in.props.OrderStream.StreamName(),
		enrich.EnvReferenceDataURI: in.reference.uri,
		dlq.EnvURL:                 e.dlq.QueueUrl(),
	}
	if in.output != nil {
		env[enrich.EnvOutputStream] = in.output.StreamName()
	}
	return env
}

// addEventSource maps the unified stream to the function.
func (e *enrichProcessor) addEventSource(in processorInputs) {
	// No event filter: Lambda discards every record a filter does not
	// match, a record whose data is not JSON among them, without a trace
	// in the dead-letter queue, and patterns compare names case-
	// sensitively where DMS and MySQL do not
	// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html,
	// https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html).
	// The handler sees every record: it joins it, skips and counts a
	// control or foreign-table record, or dead-letters it with the reason.
	e.fn.AddEventSource(streamEventSource(e.fn, in.props.OrderStream, in.cfg, &s3FailureDestination{bucket: in.failures, key: in.props.Key}))
	// The function cannot start without products.json: its event
	// source mapping (which starts invoking it as soon as it exists)
	// waits for the reference data deployment.
	for _, c := range *e.fn.Node().Children() {
		if strings.HasPrefix(*c.Node().Id(), "KinesisEventSource") || strings.HasPrefix(*c.Node().Id(), "KinesisConsumerEventSource") {
			c.Node().AddDependency(in.reference.deployment)
		}
	}
}

func (e *enrichProcessor) monitor(m *processMonitoring) {
	m.functions = append(m.functions, watchedFunction{name: "Enrich", fn: e.fn, timeout: EnrichTimeout, streamFed: true, loadsCatalogue: true})
	m.tables = append(m.tables, watchedTable{name: "JoinState", table: e.state,
		operations: []awsdynamodb.Operation{awsdynamodb.Operation_QUERY, awsdynamodb.Operation_BATCH_GET_ITEM, awsdynamodb.Operation_BATCH_WRITE_ITEM}})
	m.queues = append(m.queues, namedQueue{"EnrichDlq", e.dlq})
}
