package stacks_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/unified-streaming-etl/etl/stacks"
)

// statefulTypes are the resource types whose replacement loses data or
// breaks a deployment: keys, streams, tables, buckets, queues, the
// database with its network and secrets, and the DMS resources whose task
// holds the replication position. CloudFormation replaces a resource whose
// logical ID changes (it creates the new one and deletes the old), so
// these IDs must survive any rework of the construct tree.
var statefulTypes = []string{
	"AWS::KMS::Key", "AWS::Kinesis::Stream", "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue",
	"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::RDS::DBInstance", "AWS::RDS::DBSubnetGroup", "AWS::RDS::DBParameterGroup",
	"AWS::SecretsManager::Secret", "AWS::SecretsManager::SecretTargetAttachment",
	"AWS::DMS::ReplicationInstance", "AWS::DMS::ReplicationSubnetGroup", "AWS::DMS::Endpoint", "AWS::DMS::Certificate",
	"AWS::DMS::ReplicationTask", "AWS::KinesisFirehose::DeliveryStream", "AWS::KinesisAnalytics::Application",
}

// Logical IDs of the stateful resources of every deployment, by stack.
var (
	commonStateful = []string{"Key961B73FD", "AlarmTopicKey57B0D3A7", "OrderStream3FA7969B"}
	dataStateful   = []string{
		"Vpc8378EB38", "VpcisolatedSubnet1SubnetE62B1B9B", "VpcisolatedSubnet2Subnet39217055",
		"DatabaseParameters4609B2CF", "DatabaseSubnetGroup7D60F180", "DatabaseB269D8BB",
		"UnifiedStreamETLDataStackDatabaseSecretBAAB96CD3fdaad7efa858a3daf9490cf0a702aeb", "DatabaseSecretAttachmentE5D1B020",
		"ReplicationSecret4730E2A0", "ReplicationSecretAttachment02B90E99",
		"ReplicationSubnetGroup", "ReplicationInstance", "DatabaseCaCertificate", "SourceEndpoint", "TargetEndpoint", "ReplicationTask",
	}
	// The process stack's, whatever the processor.
	processStateful = []string{"AccessLogsBucket83982689", "ReferenceDataBucketEFE7E31E", "OrderEnrichedA84A32C6", "FailureBucket1DB25638"}
	rawArchive      = []string{"RawArchiveBucket5791F78D", "RawArchiveDEFAA071"}
)

// The logical IDs of the stateful resources are those deployments already
// have: the database, both secrets, the tables, buckets, keys, streams and
// queues, and the network and DMS resources around them, for each
// processor and with and without the raw archive. Nothing else of a
// stateful type exists, so a renamed one fails here too.
func TestStatefulResourcesKeepTheirLogicalIDs(t *testing.T) {
	cases := append([]statefulCase{
		// One hop: no enriched stream and no sink (docs/design.md §1.1).
		{lambdaProcessor, slices.Concat(processStateful, rawArchive, enrichStateful)},
		// dataLake=false and enrichedStream=true among other settings: no
		// archive, the enriched stream (with its ID of the two-hop shape)
		// and still no sink.
		{customized, slices.Concat(processStateful, enrichStateful, []string{"EnrichedStreamDDC7F55D"})},
	}, statefulCases...)
	for _, c := range cases {
		t.Run(string(c.v), func(t *testing.T) {
			s := synth(t, c.v)
			for stack, want := range map[string][]string{
				stacks.CommonStackName:  commonStateful,
				stacks.DataStackName:    dataStateful,
				stacks.ProcessStackName: c.process,
			} {
				got := statefulIDs(templateJSON(s.template(stack)))
				slices.Sort(got)
				want = slices.Sorted(slices.Values(want))
				if !slices.Equal(got, want) {
					t.Errorf("%s: stateful resources\n got  %v\n want %v", stack, got, want)
				}
			}
		})
	}
}

// enrichStateful are the stateful resources only processor=lambda has.
var enrichStateful = []string{"JoinState194F0657", "EnrichDeadLetterQueue47B5F21C"}

// sinkPath are the stateful resources of the two-hop shape's sink path.
var sinkPath = []string{"EnrichedStreamDDC7F55D", "SinkDeadLetterQueue89E84920"}

// statefulCase is a variant's process stack stateful resources.
type statefulCase struct {
	v       variant
	process []string
}

// statefulCases are those of the variants other test files register
// (kda_test.go).
var statefulCases []statefulCase

// statefulIDs lists a template's resources of a stateful type, as
// "logicalID".
func statefulIDs(tmpl map[string]any) []string {
	var ids []string
	resources, _ := tmpl["Resources"].(map[string]any)
	for id, r := range resources {
		typ := fmt.Sprint(r.(map[string]any)["Type"])
		if slices.Contains(statefulTypes, typ) {
			ids = append(ids, id)
		}
	}
	return ids
}
