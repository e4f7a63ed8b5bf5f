package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// sinkFunction is the sink: the function that writes the enriched stream
// to OrderEnriched, its dead-letter queue (records it cannot write, with
// the reason) and its event source mapping.
type sinkFunction struct {
	fn  awslambda.Function
	dlq awssqs.Queue
}

type sinkProps struct {
	cfg      Config
	assetDir string
	key      awskms.IKey
	table    awsdynamodb.ITable
	stream   awskinesis.IStream
	failures awss3.IBucket
}

func newSink(stack awscdk.Stack, p sinkProps) *sinkFunction {
	f := &sinkFunction{dlq: newDeadLetterQueue(stack, "SinkDeadLetterQueue", p.key)}
	f.fn = newGoFunction(stack, "Sink", goFunctionProps{
		AssetDir:    p.assetDir,
		Description: "Writes enriched order-item records to the OrderEnriched table.",
		MemoryMiB:   SinkMemoryMiB,
		Timeout:     SinkTimeout,
		Retention:   p.cfg.logRetention(),
		Environment: map[string]*string{
			sink.EnvTableName: p.table.TableName(),
			dlq.EnvURL:        f.dlq.QueueUrl(),
		},
	})
	// Exactly the calls internal/sink makes: a conditional PutItem for an
	// upsert and a conditional DeleteItem for a delete.
	grantTableCalls(p.table, p.key, f.fn, "dynamodb:PutItem", "dynamodb:DeleteItem")
	f.dlq.GrantSendMessages(f.fn)
	f.fn.AddEventSource(streamEventSource(f.fn, p.stream, p.cfg, &s3FailureDestination{bucket: p.failures, key: p.key}))
	return f
}

func (f *sinkFunction) monitor(m *processMonitoring) {
	m.functions = append(m.functions, watchedFunction{name: "Sink", fn: f.fn, timeout: SinkTimeout, streamFed: true})
	// First among the queues, where the dashboard has always shown it.
	m.queues = append([]namedQueue{{"SinkDlq", f.dlq}}, m.queues...)
}
