package stacks_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/stacks"
)

// dependsOn returns a resource's DependsOn logical IDs.
func dependsOn(r map[string]any) []string {
	var out []string
	for _, d := range asList(r["DependsOn"]) {
		if s, ok := d.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// customResource returns the single custom resource of a type.
func customResource(t *testing.T, tmpl assertions.Template, typ string) (string, map[string]any) {
	t.Helper()
	return only(t, tmpl, typ, nil)
}

func TestSchemaSetupRunsInTheIsolatedSubnetsReachingOnlyTheDatabaseAndEndpoints(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	sg := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{"GroupDescription": assertions.Match_StringLikeRegexp(jsii.String("^Schema setup function"))})
	_, fn := only(t, tmpl, "AWS::Lambda::Function", map[string]any{"VpcConfig": match(map[string]any{})})
	vpc := props(fn)["VpcConfig"].(map[string]any)
	if got := mustMarshal(t, vpc["SecurityGroupIds"]); got != mustMarshal(t, []any{getAtt(sg, "GroupId")}) {
		t.Errorf("function security groups = %s, want only %s", got, sg)
	}
	subnets := asList(vpc["SubnetIds"])
	if len(subnets) != 2 || !strings.Contains(mustMarshal(t, subnets), "isolatedSubnet") {
		t.Errorf("function subnets = %v, want the two isolated subnets", subnets)
	}

	_, group := only(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{"GroupDescription": assertions.Match_StringLikeRegexp(jsii.String("^Schema setup function"))})
	inline := asList(props(group)["SecurityGroupEgress"])
	if len(inline) != 1 || !strings.Contains(mustMarshal(t, inline), `"FromPort":443`) || !strings.Contains(mustMarshal(t, inline), "CidrBlock") {
		t.Errorf("inline egress = %v, want HTTPS to the VPC (its endpoints) only", inline)
	}
	egress := resources(tmpl, "AWS::EC2::SecurityGroupEgress", map[string]any{"GroupId": getAtt(sg, "GroupId")})
	if len(egress) != 1 {
		t.Fatalf("%d egress rules to other groups, want one (MySQL to the database)", len(egress))
	}
	dbPort := mustMarshal(t, getAtt(logicalID(t, tmpl, "AWS::RDS::DBInstance", nil), "Endpoint.Port"))
	for _, r := range egress {
		p := props(r)
		if port := mustMarshal(t, p["FromPort"]); (port != "3306" && port != dbPort) || !strings.Contains(mustMarshal(t, p["DestinationSecurityGroupId"]), "DatabaseSecurityGroup") {
			t.Errorf("egress %v, want MySQL to the database's group", p)
		}
	}
}

func TestSchemaSetupAppliesTheScriptOverVerifiedTLSWithTheDMSUsersSecret(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	script, err := os.ReadFile("../sql/ordersdb-setup.sql")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	_, cert := only(t, tmpl, "AWS::DMS::Certificate", nil)
	db := logicalID(t, tmpl, "AWS::RDS::DBInstance", nil)
	var adminSecret, replicationSecret string
	for id, r := range resources(tmpl, "AWS::SecretsManager::SecretTargetAttachment", nil) {
		switch secret := mustMarshal(t, props(r)["SecretId"]); {
		case strings.Contains(secret, "DatabaseSecret"):
			adminSecret = id
		case strings.Contains(secret, "ReplicationSecret"):
			replicationSecret = id
		}
	}
	if adminSecret == "" || replicationSecret == "" {
		t.Fatalf("admin secret %q, replication secret %q", adminSecret, replicationSecret)
	}

	_, schema := customResource(t, tmpl, stacks.ResourceTypeOrdersSchema)
	want := map[string]any{
		"DatabaseSecretArn":    ref(adminSecret),
		"ReplicationSecretArn": ref(replicationSecret),
		"Host":                 getAtt(db, "Endpoint.Address"),
		"Port":                 getAtt(db, "Endpoint.Port"),
		"TlsMode":              "verify-full",
		// An edited script changes this property, so the next deployment
		// applies it again.
		"ScriptSha256": hex.EncodeToString(sum[:]),
		// The roots DMS verifies the database with.
		"CaBundle": props(cert)["CertificatePem"],
	}
	for k, w := range want {
		if got := props(schema)[k]; mustMarshal(t, got) != mustMarshal(t, w) {
			t.Errorf("%s = %.200v, want %.200v", k, got, w)
		}
	}
	if !strings.Contains(mustMarshal(t, props(schema)["ServiceToken"]), "SchemaSetupProviderframeworkonEvent") {
		t.Errorf("service token = %v, want the schema setup provider", props(schema)["ServiceToken"])
	}
	// It connects once the network path exists.
	deps := dependsOn(schema)
	for _, want := range []string{"VpcSecretsManagerEndpoint", "DatabaseSecurityGroupfromUnifiedStreamETLDataStackSchemaSetupSecurityGroup", "SchemaSetupSecurityGrouptoUnifiedStreamETLDataStackDatabaseSecurityGroup"} {
		if !slices.ContainsFunc(deps, func(d string) bool { return strings.HasPrefix(d, want) }) {
			t.Errorf("schema setup does not depend on %s*; DependsOn %v", want, deps)
		}
	}

	statements := policyOf(t, tmpl, "SchemaSetup")
	for _, secret := range []string{adminSecret, replicationSecret} {
		if !allows(t, statements, "secretsmanager:GetSecretValue", secret) {
			t.Errorf("schema setup may not read %s", secret)
		}
	}
	for _, st := range statements {
		for _, a := range asList(st["Action"]) {
			if strings.HasPrefix(a.(string), "secretsmanager:") && strings.Count(mustMarshal(t, st["Resource"]), "Ref") != 2 {
				t.Errorf("%s on %v, want the two database secrets only", a, st["Resource"])
			}
		}
	}
}

func TestSecretRotationsAreScheduledOnlyOnceTheSchemaIsApplied(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	schema, _ := customResource(t, tmpl, stacks.ResourceTypeOrdersSchema)
	schedules := resources(tmpl, "AWS::SecretsManager::RotationSchedule", nil)
	if len(schedules) != 2 {
		t.Fatalf("%d rotation schedules, want the admin's and dms_user's", len(schedules))
	}
	for id, r := range schedules {
		if !slices.Contains(dependsOn(r), schema) {
			t.Errorf("%s may rotate a password while the schema setup logs in with it; DependsOn %v", id, dependsOn(r))
		}
	}
}

func TestDMSTaskStartsAfterTheSchemaAndStopsBeforeItIsChangedOrDeleted(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.DataStackName)
			task, _ := only(t, tmpl, "AWS::DMS::ReplicationTask", nil)
			schema, _ := customResource(t, tmpl, stacks.ResourceTypeOrdersSchema)
			stopper, stop := customResource(t, tmpl, stacks.ResourceTypeTaskStopper)
			lifecycle, life := customResource(t, tmpl, stacks.ResourceTypeTaskLifecycle)

			t.Run("the schema is applied before the task starts", func(t *testing.T) {
				if !slices.Contains(dependsOn(life), schema) {
					t.Errorf("lifecycle DependsOn %v, want %s", dependsOn(life), schema)
				}
			})
			t.Run("the task is stopped before CloudFormation deletes it", func(t *testing.T) {
				// CloudFormation deletes in reverse dependency order: the
				// lifecycle resource (whose Delete stops the task) first.
				if !slices.Contains(dependsOn(life), task) {
					t.Errorf("lifecycle DependsOn %v, want the task %s", dependsOn(life), task)
				}
				p := props(life)
				if p["Mode"] != "lifecycle" || mustMarshal(t, p["ReplicationTaskArn"]) != mustMarshal(t, ref(task)) {
					t.Errorf("lifecycle properties = %v", p)
				}
			})
			t.Run("the task is stopped before it or its endpoints are modified", func(t *testing.T) {
				guarded := []string{task,
					logicalID(t, tmpl, "AWS::DMS::Endpoint", map[string]any{"EndpointType": "source"}),
					logicalID(t, tmpl, "AWS::DMS::Endpoint", map[string]any{"EndpointType": "target"}),
				}
				all := resources(tmpl, "AWS::DMS::ReplicationTask", nil)
				for id, r := range resources(tmpl, "AWS::DMS::Endpoint", nil) {
					all[id] = r
				}
				for _, id := range guarded {
					if !slices.Contains(dependsOn(all[id]), stopper) {
						t.Errorf("%s does not wait for the stopper; DependsOn %v", id, dependsOn(all[id]))
					}
				}
				p := props(stop)
				if p["Mode"] != "stopper" || p["ReplicationTaskLogicalId"] != task {
					t.Errorf("stopper properties = %v, want stopper mode for %s", p, task)
				}
				if _, refers := p["ReplicationTaskArn"]; refers || len(dependsOn(stop)) != 0 {
					t.Error("the stopper must not depend on the task, which depends on it")
				}
				// Both see a change of the task's definition: the stopper
				// stops it, the lifecycle resource starts it again.
				digest, _ := p["ConfigurationSha256"].(string)
				if len(digest) != 64 || props(life)["ConfigurationSha256"] != digest {
					t.Errorf("digests %v and %v, want the same SHA-256", digest, props(life)["ConfigurationSha256"])
				}
			})
			t.Run("one provider polls the handler", func(t *testing.T) {
				if mustMarshal(t, props(stop)["ServiceToken"]) != mustMarshal(t, props(life)["ServiceToken"]) {
					t.Error("the stopper and lifecycle resources use different providers")
				}
				var def string
				for id, sm := range resources(tmpl, "AWS::StepFunctions::StateMachine", nil) {
					if strings.HasPrefix(id, "DmsTaskProvider") {
						def = flatten(t, props(sm)["DefinitionString"])
					}
				}
				wantRetry := `"IntervalSeconds":30,"MaxAttempts":120`
				if !strings.Contains(def, wantRetry) {
					t.Errorf("waiter definition %s, want polling every 30 s for an hour (%s)", def, wantRetry)
				}
			})
			_ = lifecycle
		})
	}
}

func TestDMSTaskHandlerMayStartAndStopOnlyTheTask(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	task, _ := only(t, tmpl, "AWS::DMS::ReplicationTask", nil)
	_, life := customResource(t, tmpl, stacks.ResourceTypeTaskLifecycle)
	control, policy := only(t, tmpl, "AWS::IAM::Policy", map[string]any{"PolicyDocument": map[string]any{"Statement": []any{
		match(map[string]any{"Action": []any{"dms:StartReplicationTask", "dms:StopReplicationTask"}}),
	}}})
	if got := props(policy)["PolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)["Resource"]; mustMarshal(t, got) != mustMarshal(t, ref(task)) {
		t.Errorf("start/stop allowed on %v, want the task only", got)
	}
	if !slices.Contains(dependsOn(life), control) {
		t.Errorf("the lifecycle resource may start the task before its permission exists; DependsOn %v", dependsOn(life))
	}
	var statements []map[string]any
	for id, st := range iamStatements(tmpl) {
		if strings.HasPrefix(id, "DmsTaskRoleDefaultPolicy") {
			statements = st
		}
	}
	for _, st := range statements {
		for _, a := range asList(st["Action"]) {
			action := a.(string)
			res := mustMarshal(t, st["Resource"])
			switch {
			case action == "dms:DescribeReplicationTasks":
				// No resource-level permissions exist for it.
			case strings.HasPrefix(action, "dms:"):
				t.Errorf("the handler's own policy allows %s on %s; start and stop belong to the control policy", action, res)
			case strings.HasPrefix(action, "cloudformation:") && res != `{"Ref":"AWS::StackId"}`:
				t.Errorf("%s on %s, want this stack only", action, res)
			}
		}
	}
	if !allows(t, statements, "cloudformation:DescribeStackResource", "AWS::StackId") || !allows(t, statements, "dms:DescribeReplicationTasks", "*") {
		t.Error("the handler may not find the task or tell an update from a rollback")
	}
}

// selfSignedCA writes a PEM bundle with one freshly made CA certificate.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDMSTaskDigestChangesWithTheTaskOrItsEndpointsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stacks; skipped with -short")
	}
	stopperDigest := func(v variant) string {
		_, stop := customResource(t, synth(t, v).template(stacks.DataStackName), stacks.ResourceTypeTaskStopper)
		return props(stop)["ConfigurationSha256"].(string)
	}
	defaults := stopperDigest(lambdaProcessor)
	t.Run("it is the same in every synthesis of the same configuration", func(t *testing.T) {
		// A digest that changed from one synthesis to the next would stop
		// and restart replication on every deployment.
		if got := dataStackDigest(t, stacks.DefaultConfig(), false); got != defaults {
			t.Errorf("digest %s in a second synthesis, want %s", got, defaults)
		}
	})
	t.Run("settings that leave the task and its endpoints alone keep it", func(t *testing.T) {
		// The customized variant changes the database, the replication
		// instance and the network, not the task or its endpoints.
		if got := stopperDigest(customized); got != defaults {
			t.Errorf("digest %s, want %s: the task would be stopped for nothing", got, defaults)
		}
	})
	t.Run("a new CA bundle, which changes the source endpoint, changes it", func(t *testing.T) {
		cfg := stacks.DefaultConfig()
		cfg.RDSCABundleFile = selfSignedCA(t)
		if got := dataStackDigest(t, cfg, false); got == defaults {
			t.Error("the digest ignores the certificate the source endpoint verifies the database with")
		}
	})
}

func TestCustomResourceHandlersAreGoFunctionsAndTheirProvidersLog(t *testing.T) {
	for _, v := range shapeVariants {
		s := synth(t, v)
		for name, tmpl := range map[string]assertions.Template{"data": s.template(stacks.DataStackName), "process": s.template(stacks.ProcessStackName)} {
			t.Run(string(v)+" "+name, func(t *testing.T) {
				for id, fn := range goFunctions(tmpl) {
					p := props(fn)
					if p["Runtime"] != "provided.al2023" || mustMarshal(t, p["Architectures"]) != `["arm64"]` || p["LoggingConfig"].(map[string]any)["LogFormat"] != "JSON" {
						t.Errorf("%s: runtime %v on %v, logging %v", id, p["Runtime"], p["Architectures"], p["LoggingConfig"])
					}
				}
				for id, r := range resources(tmpl, "AWS::Lambda::Function", nil) {
					if _, ours := goFunctions(tmpl)[id]; !ours && !strings.Contains(id, "Providerframework") {
						continue // CDK's own singleton handlers
					}
					group, _ := props(r)["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)
					groupID, _ := group["Ref"].(string)
					if len(resources(tmpl, "AWS::Logs::LogGroup", map[string]any{"RetentionInDays": s.cfg.LogRetentionDays})[groupID]) == 0 {
						t.Errorf("%s logs to %v, not to a log group with %d days' retention", id, group, s.cfg.LogRetentionDays)
					}
				}
				for id, sm := range resources(tmpl, "AWS::StepFunctions::StateMachine", nil) {
					logging := props(sm)["LoggingConfiguration"].(map[string]any)
					dest := mustMarshal(t, logging["Destinations"])
					if logging["Level"] != "ALL" || !strings.Contains(dest, "WaiterLogs") {
						t.Errorf("%s logs %v to %s, want ALL to its waiter log group", id, logging["Level"], dest)
					}
				}
			})
		}
	}
}

func TestDMSRolesHandlerMayOnlyReadCreateAndEquipTheTwoDMSRoles(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	statements := policyOf(t, tmpl, "DmsRoles")
	roleArn := func(name string) string { return `:iam::",{"Ref":"AWS::AccountId"},":role/` + name + `"` }
	for _, name := range []string{"dms-vpc-role", "dms-cloudwatch-logs-role"} {
		for _, a := range []string{"iam:GetRole", "iam:CreateRole", "iam:ListAttachedRolePolicies", "iam:AttachRolePolicy"} {
			if !allows(t, statements, a, roleArn(name)) {
				t.Errorf("the handler may not %s on %s", a, name)
			}
		}
	}
	for _, st := range statements {
		res := mustMarshal(t, st["Resource"])
		for _, a := range asList(st["Action"]) {
			action := a.(string)
			if !strings.HasPrefix(action, "iam:") {
				continue
			}
			switch action {
			case "iam:GetRole", "iam:CreateRole", "iam:ListAttachedRolePolicies", "iam:AttachRolePolicy":
			default:
				// No DeleteRole, DetachRolePolicy, PutRolePolicy, UpdateAssumeRolePolicy...
				t.Errorf("the handler may %s; it must never delete or alter a role", action)
			}
			if strings.Count(res, ":role/") != 2 || !strings.Contains(res, roleArn("dms-vpc-role")) || !strings.Contains(res, roleArn("dms-cloudwatch-logs-role")) {
				t.Errorf("%s on %s, want the two DMS roles only", action, res)
			}
			if action == "iam:AttachRolePolicy" {
				cond := mustMarshal(t, st["Condition"])
				if !strings.Contains(cond, `"iam:PolicyARN"`) || !strings.Contains(cond, "AmazonDMSVPCManagementRole") || !strings.Contains(cond, "AmazonDMSCloudWatchLogsRole") {
					t.Errorf("AttachRolePolicy may attach any policy (condition %s), want the two DMS policies only", cond)
				}
			}
		}
	}
	t.Run("the roles resources wait for IAM through the provider's waiter", func(t *testing.T) {
		var tokens []string
		for _, r := range resources(tmpl, stacks.ResourceTypeDMSRole, nil) {
			tokens = append(tokens, mustMarshal(t, props(r)["ServiceToken"]))
		}
		if len(tokens) != 2 || tokens[0] != tokens[1] || !strings.Contains(tokens[0], "DmsRolesProvider") {
			t.Errorf("service tokens %v, want both roles on the DmsRoles provider", tokens)
		}
		found := false
		for id, sm := range resources(tmpl, "AWS::StepFunctions::StateMachine", nil) {
			if strings.HasPrefix(id, "DmsRolesProvider") && strings.Contains(flatten(t, props(sm)["DefinitionString"]), `"IntervalSeconds":15`) {
				found = true
			}
		}
		if !found {
			t.Error("no waiter polls the roles every 15 s until IAM has propagated them")
		}
	})
}

// dataStackDigest builds a data stack for cfg in an app of its own, its
// key the common stack's or, with otherKey, another, and returns the digest its
// task resources carry.
func dataStackDigest(t *testing.T, cfg stacks.Config, otherKey bool) string {
	t.Helper()
	lambdaDir, err := fakeFunctions()
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	common := stacks.NewCommonStack(app, stacks.CommonStackName, stacks.CommonStackProps{Config: cfg})
	key := awskms.IKey(common.Key)
	if otherKey {
		key = awskms.NewKey(common.Stack, jsii.String("AnotherKey"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})
	}
	data, err := stacks.NewDataStack(app, stacks.DataStackName, stacks.DataStackProps{
		Config:          cfg,
		OrderStream:     common.OrderStream,
		Key:             key,
		AlarmTopic:      common.AlarmTopic,
		LambdaDir:       lambdaDir,
		RDSCAPackageDir: "../" + stacks.RDSCAPackageDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := customResource(t, assertions.Template_FromStack(data.Stack, nil), stacks.ResourceTypeTaskStopper)
	return props(stop)["ConfigurationSha256"].(string)
}

// Replacing the replication instance (a new KMS key, say: KmsKeyId
// requires replacement) replaces the task that references it. DMS cannot
// delete a running task, and once the new task exists the control policy
// names only the new one, so the old task must be stopped before: by the
// stopper, while the policy still names the old task.
func TestDMSTaskIsStoppedBeforeAReplacedInstanceReplacesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stacks; skipped with -short")
	}
	defaults := dataStackDigest(t, stacks.DefaultConfig(), false)
	t.Run("a replacement of the instance reaches the stopper", func(t *testing.T) {
		if got := dataStackDigest(t, stacks.DefaultConfig(), true); got == defaults {
			t.Error("the digest ignores a change that replaces the replication instance: the old task would still run when CloudFormation deletes it")
		}
	})
	t.Run("an in-place change of the instance does not", func(t *testing.T) {
		cfg := stacks.DefaultConfig()
		cfg.DMSInstanceClass = "dms.r5.large"
		if got := dataStackDigest(t, cfg, false); got != defaults {
			t.Error("a new instance class (modified in place) would stop the task")
		}
	})
	t.Run("the stop comes before the replacement and is allowed", func(t *testing.T) {
		tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
		task, taskDef := only(t, tmpl, "AWS::DMS::ReplicationTask", nil)
		instance, _ := only(t, tmpl, "AWS::DMS::ReplicationInstance", nil)
		stopper, stop := customResource(t, tmpl, stacks.ResourceTypeTaskStopper)
		if mustMarshal(t, props(taskDef)["ReplicationInstanceArn"]) != mustMarshal(t, ref(instance)) || !slices.Contains(dependsOn(taskDef), stopper) {
			t.Errorf("task on %v, DependsOn %v; want the instance and the stopper first", props(taskDef)["ReplicationInstanceArn"], dependsOn(taskDef))
		}
		if len(dependsOn(stop)) != 0 || strings.Contains(mustMarshal(t, props(stop)), `"Ref":"`+task+`"`) {
			t.Error("the stopper waits for the task; it must run before the task is replaced")
		}
		// The control policy names the task by reference, so CloudFormation
		// updates it to the new task only after the stopper ran.
		_, policy := only(t, tmpl, "AWS::IAM::Policy", map[string]any{"PolicyDocument": map[string]any{"Statement": []any{
			match(map[string]any{"Action": []any{"dms:StartReplicationTask", "dms:StopReplicationTask"}}),
		}}})
		if got := mustMarshal(t, props(policy)["PolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)["Resource"]); got != mustMarshal(t, ref(task)) {
			t.Errorf("task control allowed on %s, want the task by reference", got)
		}
	})
}
