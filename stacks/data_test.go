package stacks_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/stacks"
)

func TestDataStackVPCIsPrivateWithEndpointsInsteadOfNAT(t *testing.T) {
	tests := []struct {
		variant variant
		cidr    string
	}{{lambdaProcessor, "10.64.0.0/16"}, {customized, "172.20.0.0/20"}}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.DataStackName)
			assertProps(t, tmpl, "AWS::EC2::VPC", map[string]any{"CidrBlock": tt.cidr})
			for _, typ := range []string{"AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"} {
				if n := len(resources(tmpl, typ, nil)); n != 0 {
					t.Errorf("%d %s; the VPC needs none", n, typ)
				}
			}
			subnets := resources(tmpl, "AWS::EC2::Subnet", nil)
			if len(subnets) < 2 {
				t.Errorf("%d subnets; DMS and RDS subnet groups need two Availability Zones", len(subnets))
			}
			for id, sn := range subnets {
				if props(sn)["MapPublicIpOnLaunch"] == true {
					t.Errorf("subnet %s gives instances public addresses", id)
				}
			}
			assertProps(t, tmpl, "AWS::EC2::FlowLog", map[string]any{"LogDestinationType": "cloud-watch-logs", "TrafficType": "ALL"})
		})
	}
}

func TestDataStackReachesAWSServicesThroughVPCEndpoints(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	for _, service := range []string{"secretsmanager", "kinesis-streams", "sts", "logs"} {
		t.Run(service, func(t *testing.T) {
			assertProps(t, tmpl, "AWS::EC2::VPCEndpoint", map[string]any{
				"VpcEndpointType":   "Interface",
				"PrivateDnsEnabled": true,
				"ServiceName":       match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{"." + service})})}),
			})
		})
	}
}

// Every endpoint lets only this account's principals reach this account's
// resources, and there is no S3 gateway endpoint: nothing in the VPC uses S3.
func TestDataStackVPCEndpointsAdmitOnlyThisAccount(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	account := map[string]any{"Ref": "AWS::AccountId"}
	endpoints := resources(tmpl, "AWS::EC2::VPCEndpoint", nil)
	if len(endpoints) != 4 {
		t.Errorf("%d VPC endpoints, want the 4 interface endpoints", len(endpoints))
	}
	for id, ep := range endpoints {
		p := props(ep)
		if p["VpcEndpointType"] != "Interface" {
			t.Errorf("%s is a %v endpoint; nothing in the VPC uses one", id, p["VpcEndpointType"])
		}
		doc, _ := p["PolicyDocument"].(map[string]any)
		if doc == nil {
			t.Errorf("%s has no endpoint policy (the default allows everything)", id)
			continue
		}
		found := false
		for _, st := range asList(doc["Statement"]) {
			st := st.(map[string]any)
			if st["Effect"] != "Allow" {
				continue
			}
			cond := mustMarshal(t, st["Condition"])
			// DMS assumes this account's roles through the STS endpoint,
			// possibly as the DMS service: there only the role's account
			// is checked.
			sts := strings.Contains(mustMarshal(t, p["ServiceName"]), ".sts")
			if !sts && !strings.Contains(cond, `"aws:PrincipalAccount":`+mustMarshal(t, account)) {
				t.Errorf("%s allows %v without aws:PrincipalAccount = this account: %s", id, st["Action"], cond)
			}
			if st["Sid"] == "ThisAccountOnly" {
				found = true
				want := `{"StringEquals":{"aws:PrincipalAccount":` + mustMarshal(t, account) + `,"aws:ResourceAccount":` + mustMarshal(t, account) + `}}`
				if sts {
					want = `{"StringEquals":{"aws:ResourceAccount":` + mustMarshal(t, account) + `}}`
				}
				if cond != want {
					t.Errorf("%s: condition %s, want %s", id, cond, want)
				}
			} else if mustMarshal(t, st["Action"]) != `"secretsmanager:GetRandomPassword"` {
				t.Errorf("%s: statement %v allows more than GetRandomPassword without aws:ResourceAccount", id, st["Sid"])
			}
		}
		if !found {
			t.Errorf("%s: no ThisAccountOnly statement", id)
		}
	}
}

// The rotation functions, which hold the master password, share a group
// that reaches only the VPC endpoints (443 to the VPC) and the database.
func TestDataStackRotationFunctionsReachOnlyEndpointsAndDatabase(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	sgID := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": "Secret rotation functions: MySQL to the database, HTTPS to the VPC endpoints.",
	})
	dbSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": "Orders database: MySQL from DMS and the secret rotation functions only.",
	})
	dbPort := getAtt(logicalID(t, tmpl, "AWS::RDS::DBInstance", nil), "Endpoint.Port")
	apps := resources(tmpl, "AWS::Serverless::Application", nil)
	if len(apps) != 2 {
		t.Fatalf("%d rotation applications, want 2", len(apps))
	}
	for id, app := range apps {
		got := mustMarshal(t, props(app)["Parameters"].(map[string]any)["vpcSecurityGroupIds"])
		if want := mustMarshal(t, getAtt(sgID, "GroupId")); got != want {
			t.Errorf("%s runs in security groups %s, want %s", id, got, want)
		}
	}
	sg := props(resources(tmpl, "AWS::EC2::SecurityGroup", nil)[sgID])
	egress := asList(sg["SecurityGroupEgress"])
	if len(egress) != 1 || mustMarshal(t, egress[0]) != mustMarshal(t, map[string]any{
		"CidrIp": getAtt(logicalID(t, tmpl, "AWS::EC2::VPC", nil), "CidrBlock"), "Description": "AWS service endpoints in the VPC",
		"FromPort": 443, "IpProtocol": "tcp", "ToPort": 443,
	}) {
		t.Errorf("inline egress %s, want only HTTPS to the VPC's CIDR", mustMarshal(t, egress))
	}
	assertProps(t, tmpl, "AWS::EC2::SecurityGroupEgress", map[string]any{
		"GroupId": getAtt(sgID, "GroupId"), "DestinationSecurityGroupId": getAtt(dbSG, "GroupId"),
		"FromPort": dbPort, "ToPort": dbPort, "IpProtocol": "tcp",
	})
	assertProps(t, tmpl, "AWS::EC2::SecurityGroupIngress", map[string]any{
		"GroupId": getAtt(dbSG, "GroupId"), "SourceSecurityGroupId": getAtt(sgID, "GroupId"),
		"FromPort": dbPort, "ToPort": dbPort, "IpProtocol": "tcp",
	})
	for id, e := range resources(tmpl, "AWS::EC2::SecurityGroupEgress", map[string]any{"GroupId": getAtt(sgID, "GroupId")}) {
		if d := props(e)["DestinationSecurityGroupId"]; mustMarshal(t, d) != mustMarshal(t, getAtt(dbSG, "GroupId")) {
			t.Errorf("egress %s of the rotation group goes to %v", id, d)
		}
	}
	// Only the interface endpoints' own groups keep CDK's default egress
	// (endpoint interfaces answer; they open no connections).
	for id, g := range resources(tmpl, "AWS::EC2::SecurityGroup", nil) {
		desc, _ := props(g)["GroupDescription"].(string)
		if strings.Contains(mustMarshal(t, g), "0.0.0.0/0") && !strings.HasSuffix(desc, "Endpoint/SecurityGroup") {
			t.Errorf("security group %s (%s) allows traffic to or from 0.0.0.0/0", id, desc)
		}
	}
}

// The error and slow query logs go to CloudWatch Logs with logRetentionDays.
func TestDataStackDatabaseExportsLogsWithRetention(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.DataStackName)
			assertProps(t, tmpl, "AWS::RDS::DBInstance", map[string]any{
				"EnableCloudwatchLogsExports": []any{"error", "slowquery"},
			})
			for _, log := range stacks.DBLogExports {
				found := resources(tmpl, "Custom::LogRetention", map[string]any{
					"LogGroupName": match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{
						assertions.Match_ArrayWith(&[]any{"/aws/rds/instance/", "/" + log}),
					})}),
					"RetentionInDays": s.cfg.LogRetentionDays,
				})
				if len(found) != 1 {
					t.Errorf("%d retentions of %d days for the %s log, want 1", len(found), s.cfg.LogRetentionDays, log)
				}
			}
		})
	}
}

func TestDataStackParameterGroupIsReadyForDMSChangeDataCapture(t *testing.T) {
	tests := []struct {
		variant variant
		family  string
	}{{lambdaProcessor, "mysql8.4"}, {customized, "mysql8.0"}}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.DataStackName)
			assertProps(t, tmpl, "AWS::RDS::DBParameterGroup", map[string]any{
				"Family": tt.family,
				"Parameters": map[string]any{
					"binlog_format":            "ROW",
					"binlog_row_image":         "FULL",
					"binlog_checksum":          "NONE",
					"require_secure_transport": "1",
				},
			})
		})
	}
}

func TestDataStackDatabaseIsPrivateEncryptedAndBackedUp(t *testing.T) {
	tests := []struct {
		variant variant
		want    map[string]any
	}{
		{lambdaProcessor, map[string]any{
			"EngineVersion": "8.4", "DBInstanceClass": "db.t4g.small", "MultiAZ": false, "DeletionProtection": false,
			"AllocatedStorage": "20", "MaxAllocatedStorage": 100, "StorageType": "gp3",
		}},
		{customized, map[string]any{"EngineVersion": "8.0", "DBInstanceClass": "db.r6g.large", "MultiAZ": true, "DeletionProtection": true}},
	}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.DataStackName)
			want := map[string]any{
				"Engine":                          "mysql",
				"StorageEncrypted":                true,
				"KmsKeyId":                        importOf("Key"),
				"PubliclyAccessible":              false,
				"BackupRetentionPeriod":           7,
				"CACertificateIdentifier":         "rds-ca-rsa2048-g1",
				"EnableIAMDatabaseAuthentication": true,
				"MasterUsername":                  stacks.DBAdminUser,
				"MasterUserPassword":              match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{"{{resolve:secretsmanager:"})})}),
				"DBParameterGroupName":            ref(logicalID(t, tmpl, "AWS::RDS::DBParameterGroup", nil)),
			}
			for k, v := range tt.want {
				want[k] = v
			}
			assertProps(t, tmpl, "AWS::RDS::DBInstance", want)
			assertResource(t, tmpl, "AWS::RDS::DBInstance", map[string]any{"DeletionPolicy": "Snapshot"})
		})
	}
}

func TestDataStackDatabaseAcceptsMySQLOnlyFromDMSRotationAndSchemaSetup(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	dbID, db := only(t, tmpl, "AWS::RDS::DBInstance", nil)
	dbPort := any(map[string]any{"Fn::GetAtt": []any{dbID, "Endpoint.Port"}})
	groups := asList(props(db)["VPCSecurityGroups"])
	if len(groups) != 1 {
		t.Fatalf("database security groups = %v, want one", groups)
	}
	dbSG := groups[0].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	dmsSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{"GroupDescription": assertions.Match_StringLikeRegexp(jsii.String("^DMS replication instance"))})

	var sources []string
	for _, r := range resources(tmpl, "AWS::EC2::SecurityGroupIngress", map[string]any{"GroupId": getAtt(dbSG, "GroupId")}) {
		p := props(r)
		if p["CidrIp"] != nil || p["CidrIpv6"] != nil {
			t.Errorf("database ingress from an address range: %v", p)
		}
		for _, port := range []any{p["FromPort"], p["ToPort"]} {
			if port != float64(3306) && !reflect.DeepEqual(port, dbPort) {
				t.Errorf("database ingress on port %v, want the database's port only", port)
			}
		}
		sources = append(sources, p["SourceSecurityGroupId"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string))
	}
	if !slices.Contains(sources, dmsSG) {
		t.Errorf("database does not admit DMS (%s); sources %v", dmsSG, sources)
	}
	schemaSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{"GroupDescription": assertions.Match_StringLikeRegexp(jsii.String("^Schema setup function"))})
	if !slices.Contains(sources, schemaSG) {
		t.Errorf("database does not admit the schema setup function (%s); sources %v", schemaSG, sources)
	}
	for _, src := range sources {
		if src != dmsSG && src != schemaSG && !strings.Contains(src, "Rotation") {
			t.Errorf("database admits %s, which is neither DMS, a rotation function nor the schema setup", src)
		}
	}
	_, sg := only(t, tmpl, "AWS::EC2::SecurityGroup", map[string]any{"GroupDescription": assertions.Match_StringLikeRegexp(jsii.String("^Orders database"))})
	if egress := asList(props(sg)["SecurityGroupEgress"]); len(egress) != 1 || !strings.Contains(mustMarshal(t, egress), "255.255.255.255/32") {
		t.Errorf("database egress = %v, want none (CDK's disallow-all placeholder)", egress)
	}
}

func TestDataStackCredentialsAreGeneratedAndRotated(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	assertProps(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{
		"GenerateSecretString": map[string]any{"SecretStringTemplate": `{"username":"admin"}`, "GenerateStringKey": "password"},
	})
	assertProps(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{
		"GenerateSecretString": map[string]any{
			"GenerateStringKey":    "password",
			"SecretStringTemplate": `{"username":"dms_user"}`,
		},
	})
	if n := len(resources(tmpl, "AWS::SecretsManager::SecretTargetAttachment", nil)); n != 2 {
		t.Errorf("%d secret attachments, want 2 (host and port for both secrets)", n)
	}
	schedules := resources(tmpl, "AWS::SecretsManager::RotationSchedule", map[string]any{"RotationRules": map[string]any{"ScheduleExpression": "rate(30 days)"}})
	if len(schedules) != 2 {
		t.Fatalf("%d rotation schedules every 30 days, want 2", len(schedules))
	}
	replicationAttachment := logicalID(t, tmpl, "AWS::SecretsManager::SecretTargetAttachment", map[string]any{"SecretId": ref(logicalID(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{"GenerateSecretString": map[string]any{"SecretStringTemplate": `{"username":"dms_user"}`}}))})
	assertProps(t, tmpl, "AWS::SecretsManager::RotationSchedule", map[string]any{
		"SecretId": ref(replicationAttachment),
		// dms_user exists only after the schema setup.
		"RotateImmediatelyOnUpdate": false,
	})
}

func TestDataStackPasswordsNeverHoldCharactersDMSRejects(t *testing.T) {
	// DMS rejects endpoint passwords with these (DMS User Guide, creating
	// endpoints); the first password and every rotated one must avoid them.
	rejected := []string{";", ".", ":", "+"}
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	excludesAll := func(t *testing.T, what string, excluded any) {
		t.Helper()
		s, _ := excluded.(string)
		for _, c := range rejected {
			if !strings.Contains(s, c) {
				t.Errorf("%s may contain %q (excluded: %q)", what, c, s)
			}
		}
	}
	// Only the user DMS logs in as: the admin's first password is left as
	// deployed (see NewDataStack), its rotations are checked below.
	for _, user := range []string{stacks.DMSUser} {
		t.Run("the generated password of "+user, func(t *testing.T) {
			_, secret := only(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{
				"GenerateSecretString": map[string]any{"SecretStringTemplate": `{"username":"` + user + `"}`},
			})
			excludesAll(t, user+"'s first password", props(secret)["GenerateSecretString"].(map[string]any)["ExcludeCharacters"])
		})
	}
	t.Run("the passwords the rotation applications generate", func(t *testing.T) {
		apps := resources(tmpl, "AWS::Serverless::Application", nil)
		if len(apps) != 2 {
			t.Fatalf("%d rotation applications, want the admin's and dms_user's", len(apps))
		}
		for id, app := range apps {
			excludesAll(t, id+"'s rotated passwords", props(app)["Parameters"].(map[string]any)["excludeCharacters"])
		}
	})
}

func TestDataStackDMSServiceRolesAreEnsuredFirstUnlessTheStackMayNotTouchIAM(t *testing.T) {
	roles := map[string]string{
		"dms-vpc-role":             "service-role/AmazonDMSVPCManagementRole",
		"dms-cloudwatch-logs-role": "service-role/AmazonDMSCloudWatchLogsRole",
	}
	t.Run("ensured by default, before DMS networking", func(t *testing.T) {
		tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
		// Declaring the roles fails in any account that has them already,
		// and deleting them with the stack breaks the account's other DMS
		// users: the stack never owns them as AWS::IAM::Role.
		for name := range roles {
			if found := resources(tmpl, "AWS::IAM::Role", map[string]any{"RoleName": name}); len(found) != 0 {
				t.Errorf("%s is declared as an AWS::IAM::Role", name)
			}
		}
		var ids []string
		for name, policy := range roles {
			id, _ := only(t, tmpl, stacks.ResourceTypeDMSRole, map[string]any{
				"RoleName":  name,
				"PolicyArn": match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{":iam::aws:policy/" + policy})})}),
			})
			ids = append(ids, id)
		}
		for _, typ := range []string{"AWS::DMS::ReplicationSubnetGroup", "AWS::DMS::ReplicationInstance"} {
			_, r := only(t, tmpl, typ, nil)
			for _, id := range ids {
				if !slices.Contains(dependsOn(r), id) {
					t.Errorf("%s does not wait for %s; DependsOn %v", typ, id, dependsOn(r))
				}
			}
		}
	})
	t.Run("left to the account with createDmsServiceRoles=false", func(t *testing.T) {
		tmpl := synth(t, customized).template(stacks.DataStackName)
		if n := len(resources(tmpl, stacks.ResourceTypeDMSRole, nil)); n != 0 {
			t.Errorf("%d DMS role resources although the stack may not touch IAM roles", n)
		}
		for name := range roles {
			if found := resources(tmpl, "AWS::IAM::Role", map[string]any{"RoleName": name}); len(found) != 0 {
				t.Errorf("%s created although the stack may not touch IAM roles", name)
			}
		}
		for id := range goFunctions(tmpl) {
			if strings.HasPrefix(id, "DmsRoles") {
				t.Errorf("function %s exists although there are no roles to ensure", id)
			}
		}
	})
}

func TestDataStackReplicationInstanceIsPrivateAndEncrypted(t *testing.T) {
	tests := []struct {
		variant       variant
		engineVersion any
	}{{lambdaProcessor, stacks.MinDMSEngineVersionForMySQL84}, {customized, "3.5.4"}}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.DataStackName)
			_, ri := only(t, tmpl, "AWS::DMS::ReplicationInstance", map[string]any{
				"ReplicationInstanceClass":         "dms.t3.medium",
				"PubliclyAccessible":               false,
				"KmsKeyId":                         importOf("Key"),
				"ReplicationSubnetGroupIdentifier": ref(logicalID(t, tmpl, "AWS::DMS::ReplicationSubnetGroup", nil)),
			})
			if got := props(ri)["EngineVersion"]; !reflect.DeepEqual(got, tt.engineVersion) {
				t.Errorf("EngineVersion = %v, want %v", got, tt.engineVersion)
			}
		})
	}
}

func TestDataStackSourceEndpointReadsTheSecretOverVerifiedTLS(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	role := logicalID(t, tmpl, "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": map[string]any{"Statement": []any{map[string]any{
			"Principal": map[string]any{"Service": map[string]any{"Fn::Join": []any{"", []any{"dms.", ref("AWS::Region"), ".", ref("AWS::URLSuffix")}}}},
		}}},
	})
	secret := ref(logicalID(t, tmpl, "AWS::SecretsManager::SecretTargetAttachment", map[string]any{"SecretId": ref(logicalID(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{"GenerateSecretString": map[string]any{"SecretStringTemplate": `{"username":"dms_user"}`}}))}))
	_, ep := only(t, tmpl, "AWS::DMS::Endpoint", map[string]any{
		"EndpointType":   "source",
		"EngineName":     "mysql",
		"SslMode":        "verify-full",
		"CertificateArn": ref(logicalID(t, tmpl, "AWS::DMS::Certificate", nil)),
		"MySqlSettings": map[string]any{
			"SecretsManagerSecretId":      secret,
			"SecretsManagerAccessRoleArn": getAtt(role, "Arn"),
		},
		"ExtraConnectionAttributes": match(map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{assertions.Match_ArrayWith(&[]any{"secretsManagerEndpointOverride="})})}),
	})
	for _, clear := range []string{"Username", "Password", "ServerName", "Port"} {
		if _, ok := props(ep)[clear]; ok {
			t.Errorf("source endpoint sets %s; credentials come from the secret only", clear)
		}
	}
	found := false
	for _, st := range iamStatements(tmpl)[logicalID(t, tmpl, "AWS::IAM::Policy", map[string]any{"Roles": []any{ref(role)}})] {
		if slices.Contains(asList(st["Action"]), any("secretsmanager:GetSecretValue")) && reflect.DeepEqual(st["Resource"], secret) {
			found = true
		}
	}
	if !found {
		t.Error("DMS's secret access role cannot read the replication secret")
	}
}

func TestDataStackTrustsTheRDSRootCertificates(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	_, cert := only(t, tmpl, "AWS::DMS::Certificate", nil)
	bundle, _ := props(cert)["CertificatePem"].(string)
	regions := map[string]bool{}
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(c.Subject.CommonName)
		if !strings.HasPrefix(c.Subject.CommonName, "Amazon RDS ") || !strings.HasSuffix(c.Subject.CommonName, " Root CA RSA2048 G1") || len(fields) != 7 {
			t.Errorf("unexpected certificate %q; the database uses rds-ca-rsa2048-g1", c.Subject.CommonName)
			continue
		}
		if err := c.CheckSignatureFrom(c); err != nil || !c.IsCA {
			t.Errorf("%q is not a self-signed root: %v", c.Subject.CommonName, err)
		}
		if time.Now().After(c.NotAfter) {
			t.Errorf("%q expired on %s", c.Subject.CommonName, c.NotAfter)
		}
		regions[fields[2]] = true
	}
	for _, r := range []string{"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1"} {
		if !regions[r] {
			t.Errorf("no root certificate for %s", r)
		}
	}
}

func TestDataStackTargetEndpointWritesOneLineJSONWithTransactionDetails(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	streamRole := logicalID(t, tmpl, "AWS::IAM::Role", map[string]any{"Description": assertions.Match_StringLikeRegexp(jsii.String("unified order stream"))})
	assertProps(t, tmpl, "AWS::DMS::Endpoint", map[string]any{
		"EndpointType": "target",
		"EngineName":   "kinesis",
		"KinesisSettings": map[string]any{
			// One record per line, so the archive and a replay can split
			// records by line.
			"MessageFormat":               "json-unformatted",
			"IncludeTransactionDetails":   true,
			"IncludePartitionValue":       true,
			"PartitionIncludeSchemaTable": false,
			"IncludeNullAndEmpty":         true,
			"StreamArn":                   importOf("OrderStream"),
			"ServiceAccessRoleArn":        getAtt(streamRole, "Arn"),
		},
	})
	var actions []any
	for _, st := range iamStatements(tmpl)[logicalID(t, tmpl, "AWS::IAM::Policy", map[string]any{"Roles": []any{ref(streamRole)}})] {
		if strings.Contains(mustMarshal(t, st["Resource"]), "OrderStream") {
			actions = append(actions, asList(st["Action"])...)
		}
	}
	for _, a := range []string{"kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStream"} {
		if !slices.Contains(actions, any(a)) {
			t.Errorf("DMS's stream role lacks %s on the order stream (has %v)", a, actions)
		}
	}
}

func TestDataStackTaskReplicatesBothTablesPartitionedByOrderID(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	_, task := only(t, tmpl, "AWS::DMS::ReplicationTask", map[string]any{
		"MigrationType":          "full-load-and-cdc",
		"ReplicationInstanceArn": ref(logicalID(t, tmpl, "AWS::DMS::ReplicationInstance", nil)),
		"SourceEndpointArn":      ref(logicalID(t, tmpl, "AWS::DMS::Endpoint", map[string]any{"EndpointType": "source"})),
		"TargetEndpointArn":      ref(logicalID(t, tmpl, "AWS::DMS::Endpoint", map[string]any{"EndpointType": "target"})),
	})

	var mappings stacks.TableMappings
	if err := json.Unmarshal([]byte(props(task)["TableMappings"].(string)), &mappings); err != nil {
		t.Fatal(err)
	}
	selected := map[string]bool{}
	partitioned := map[string]string{}
	ids := map[string]bool{}
	for _, r := range mappings.Rules {
		if ids[r.RuleID] {
			t.Errorf("rule-id %s used twice", r.RuleID)
		}
		ids[r.RuleID] = true
		table := r.ObjectLocator.SchemaName + "." + r.ObjectLocator.TableName
		switch r.RuleType {
		case "selection":
			selected[table] = r.RuleAction == "include"
		case "object-mapping":
			if r.MappingParameters != nil && r.MappingParameters.PartitionKeyType == "attribute-name" {
				partitioned[table] = r.MappingParameters.PartitionKeyName
			}
		}
	}
	for _, table := range []string{"orders.order", "orders.order_item"} {
		if !selected[table] {
			t.Errorf("%s is not selected", table)
		}
		if partitioned[table] != "orderId" {
			t.Errorf("%s is partitioned by %q, want attribute orderId", table, partitioned[table])
		}
	}
	if len(selected) != 2 {
		t.Errorf("selection rules cover %v, want exactly the two tables", selected)
	}

	var settings map[string]any
	if err := json.Unmarshal([]byte(props(task)["ReplicationTaskSettings"].(string)), &settings); err != nil {
		t.Fatal(err)
	}
	if got := settings["TargetMetadata"].(map[string]any)["BatchApplyEnabled"]; got != false {
		t.Errorf("BatchApplyEnabled = %v; it can lose data with a Kinesis target", got)
	}
	// The enrich join takes the message timestamp as a row's version and
	// skips a change older than the stored row (docs/design.md §3.6): that
	// holds while one apply thread builds the messages in commit order.
	// Parallel apply would let a later change carry an earlier timestamp.
	for name := range settings["TargetMetadata"].(map[string]any) {
		if strings.HasPrefix(name, "ParallelApply") {
			t.Errorf("TargetMetadata.%s is set; versions rely on a single apply thread", name)
		}
	}
	if got := settings["Logging"].(map[string]any)["EnableLogging"]; got != true {
		t.Errorf("task logging = %v, want on", got)
	}
}

func TestDataStackRefusesABadCABundle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stacks; skipped with -short")
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		file   string
		region string
		want   string
	}{
		{"a file without certificates", notPEM, "", "no certificates"},
		{"a missing file", filepath.Join(dir, "missing.pem"), "", `context "rdsCaBundleFile"`},
		{"a Region the RDS CA bundle does not cover", "", "mx-central-1", `context "rdsCaBundleFile": the RDS CA bundle has no root certificate for mx-central-1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := awscdk.NewApp(nil)
			cfg := stacks.DefaultConfig()
			cfg.RDSCABundleFile = tt.file
			common := awscdk.NewStack(app, jsii.String("Common"), nil)
			var env *awscdk.Environment
			if tt.region != "" {
				env = &awscdk.Environment{Region: jsii.String(tt.region)}
			}
			_, err := stacks.NewDataStack(app, "Data", stacks.DataStackProps{
				StackProps:      awscdk.StackProps{Env: env},
				Config:          cfg,
				OrderStream:     awskinesis.NewStream(common, jsii.String("S"), nil),
				Key:             awskms.NewKey(common, jsii.String("K"), nil),
				RDSCAPackageDir: "../" + stacks.RDSCAPackageDir,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewDataStack error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestOrderTableMappingsMarshalToDMSRuleSyntax(t *testing.T) {
	got, err := json.Marshal(stacks.OrderTableMappings())
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/table-mappings.json")
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("table mappings = %s\nwant (testdata/table-mappings.json) %s", got, want)
	}
}

func TestDataStackLogGroupsAllHaveTheConfiguredRetention(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.DataStackName)
			groups := resources(tmpl, "AWS::Logs::LogGroup", nil)
			for id, g := range groups {
				if got := props(g)["RetentionInDays"]; got != float64(s.cfg.LogRetentionDays) {
					t.Errorf("log group %s keeps logs %v days, want %d", id, got, s.cfg.LogRetentionDays)
				}
			}
			// Where each function logs: its own group, or the group Lambda
			// creates, /aws/lambda/<name>, made beforehand or given a
			// retention by CDK's LogRetention (for groups that may exist
			// from before).
			kept := func(fnName string) bool {
				for _, g := range groups {
					name := mustMarshal(t, props(g)["LogGroupName"])
					if strings.Contains(name, `"/aws/lambda/"`) && strings.Contains(name, fnName) {
						return true
					}
				}
				for _, r := range resources(tmpl, "Custom::LogRetention", nil) {
					name := mustMarshal(t, props(r)["LogGroupName"])
					if strings.Contains(name, `"/aws/lambda/"`) && strings.Contains(name, fnName) && mustMarshal(t, props(r)["RetentionInDays"]) == fmt.Sprint(s.cfg.LogRetentionDays) {
						return true
					}
				}
				return false
			}
			functions := 0
			for id, fn := range resources(tmpl, "AWS::Lambda::Function", nil) {
				functions++
				logging, _ := props(fn)["LoggingConfig"].(map[string]any)
				group, _ := logging["LogGroup"].(map[string]any)
				if ref, _ := group["Ref"].(string); groups[ref] != nil {
					continue
				}
				if !kept(mustMarshal(t, ref(id))) {
					t.Errorf("function %s logs to a log group without the configured retention", id)
				}
			}
			// The rotation functions come from the Serverless Application
			// Repository; their names are the applications' outputs.
			apps := resources(tmpl, "AWS::Serverless::Application", nil)
			for id := range apps {
				if !kept(mustMarshal(t, map[string]any{"Fn::GetAtt": []any{id, "Outputs.RotationLambdaARN"}})) {
					t.Errorf("rotation application %s's function logs to a log group without the configured retention", id)
				}
			}
			if functions < 8 || len(apps) != 2 {
				t.Errorf("%d functions and %d rotation applications: the test looks at too little", functions, len(apps))
			}
		})
	}
}

func TestDataStackCreatesTheDMSTaskLogGroupBeforeTheInstance(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	instanceID, instance := only(t, tmpl, "AWS::DMS::ReplicationInstance", nil)
	ident := props(instance)["ReplicationInstanceIdentifier"]
	if _, literal := ident.(string); ident == nil || literal {
		t.Fatalf("ReplicationInstanceIdentifier = %v, want one derived from the stack (DMS names the task log group after it)", ident)
	}
	var group string
	for id, g := range resources(tmpl, "AWS::Logs::LogGroup", nil) {
		name := mustMarshal(t, props(g)["LogGroupName"])
		if strings.Contains(name, `"`+stacks.DMSTaskLogGroupPrefix+`"`) && strings.Contains(name, mustMarshal(t, ident)) {
			group = id
		}
	}
	if group == "" {
		t.Fatalf("no log group named %s<instance identifier>", stacks.DMSTaskLogGroupPrefix)
	}
	if !slices.Contains(dependsOn(resources(tmpl, "AWS::DMS::ReplicationInstance", nil)[instanceID]), group) {
		t.Errorf("the instance (and its task) may log before %s exists, and DMS would create it without retention", group)
	}
}

func TestReplicationTaskReconnectsAfterEveryRotationOfItsSecret(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.DataStackName)
	task, _ := only(t, tmpl, "AWS::DMS::ReplicationTask", nil)
	secret := ref(logicalID(t, tmpl, "AWS::SecretsManager::SecretTargetAttachment", map[string]any{"SecretId": ref(logicalID(t, tmpl, "AWS::SecretsManager::Secret", map[string]any{"GenerateSecretString": map[string]any{"SecretStringTemplate": `{"username":"dms_user"}`}}))}))
	fnID, fn := only(t, tmpl, "AWS::Lambda::Function", map[string]any{"Environment": map[string]any{"Variables": map[string]any{"REPLICATION_TASK_ARN": ref(task)}}})

	t.Run("a rule matches a successful rotation of the DMS user's secret only", func(t *testing.T) {
		_, rule := only(t, tmpl, "AWS::Events::Rule", nil)
		p := props(rule)
		want := map[string]any{
			"source":      []any{"aws.secretsmanager"},
			"detail-type": []any{"AWS Service Event via CloudTrail"},
			"detail": map[string]any{
				"eventSource":         []any{"secretsmanager.amazonaws.com"},
				"eventName":           []any{"RotationSucceeded"},
				"additionalEventData": map[string]any{"SecretId": []any{secret}},
			},
		}
		if got := mustMarshal(t, p["EventPattern"]); got != mustMarshal(t, want) {
			t.Errorf("event pattern %s\nwant %s", got, mustMarshal(t, want))
		}
		if got := mustMarshal(t, p["Targets"]); !strings.Contains(got, mustMarshal(t, getAtt(fnID, "Arn"))) || p["State"] != "ENABLED" {
			t.Errorf("rule targets %s (state %v), want the reconnect function", got, p["State"])
		}
	})
	t.Run("the function may stop and resume that task only", func(t *testing.T) {
		statements := policyOf(t, tmpl, fnID)
		for _, a := range []string{"dms:StartReplicationTask", "dms:StopReplicationTask"} {
			if !allows(t, statements, a, mustMarshal(t, ref(task))) {
				t.Errorf("the function may not %s the task", a)
			}
		}
		for _, st := range statements {
			res := mustMarshal(t, st["Resource"])
			for _, a := range asList(st["Action"]) {
				if a == "dms:StartReplicationTask" || a == "dms:StopReplicationTask" {
					if res != mustMarshal(t, ref(task)) {
						t.Errorf("%s on %s, want the task only", a, res)
					}
				}
			}
		}
		if mustMarshal(t, props(fn)["Timeout"]) != "900" {
			t.Errorf("timeout %v, want 15 minutes to stop and resume the task", props(fn)["Timeout"])
		}
	})
	t.Run("an alarm fires when the task does not come back", func(t *testing.T) {
		var p map[string]any
		for _, a := range resources(tmpl, "AWS::CloudWatch::Alarm", nil) {
			if strings.Contains(mustMarshal(t, props(a)["Metrics"]), `"Metric":{"Dimensions":[{"Name":"FunctionName","Value":{"Ref":"`+fnID+`"}}],"MetricName":"Errors","Namespace":"AWS/Lambda"}`) {
				p = props(a)
			}
		}
		if p == nil {
			t.Fatalf("no alarm on the Errors of %s", fnID)
		}
		if p["Threshold"] != float64(1) || p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || p["TreatMissingData"] != "notBreaching" || p["EvaluationPeriods"] != float64(1) {
			t.Errorf("alarm %v, want one failed reconnection of %s", p, fnID)
		}
		if len(asList(p["AlarmActions"])) != 1 {
			t.Errorf("alarm actions %v, want the alarm topic", p["AlarmActions"])
		}
		_, cfg := only(t, tmpl, "AWS::Lambda::EventInvokeConfig", nil)
		if props(cfg)["MaximumRetryAttempts"] != float64(stacks.DMSReconnectRetries) {
			t.Errorf("retries %v, want %d", props(cfg)["MaximumRetryAttempts"], stacks.DMSReconnectRetries)
		}
	})
}

// Data stacks deployed before the dms-roles custom resource declared the
// service roles as AWS::IAM::Role resources under these logical IDs (CDK's
// ID for the paths DmsVpcRole/Resource and DmsCloudWatchLogsRole/Resource).
// A template without them makes CloudFormation delete the roles, so the
// upgrade deploy must declare them again, unchanged, and retained.
func TestUpgradeDeployRetainsTheServiceRolesOlderStacksDeclared(t *testing.T) {
	legacy := map[string]struct{ name, policy string }{
		"DmsVpcRoleD1DE47F7":            {"dms-vpc-role", "service-role/AmazonDMSVPCManagementRole"},
		"DmsCloudWatchLogsRole186DDAAD": {"dms-cloudwatch-logs-role", "service-role/AmazonDMSCloudWatchLogsRole"},
	}
	t.Run("with retainLegacyDmsRoles=true, the same roles are declared and retained", func(t *testing.T) {
		tmpl := synth(t, upgradingRoles).template(stacks.DataStackName)
		roles := resources(tmpl, "AWS::IAM::Role", nil)
		for id, want := range legacy {
			role, ok := roles[id]
			if !ok {
				t.Errorf("no role %s (%s): CloudFormation would delete the one the stack created", id, want.name)
				continue
			}
			if role["DeletionPolicy"] != "Retain" || role["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v, want Retain", id, role["DeletionPolicy"], role["UpdateReplacePolicy"])
			}
			p := mustMarshal(t, props(role))
			for _, part := range []string{`"RoleName":"` + want.name + `"`, `"Service":"dms.amazonaws.com"`, `:iam::aws:policy/` + want.policy} {
				if !strings.Contains(p, part) {
					t.Errorf("%s lacks %s: %s", id, part, p)
				}
			}
		}
	})
	t.Run("by default they are not declared", func(t *testing.T) {
		roles := resources(synth(t, lambdaProcessor).template(stacks.DataStackName), "AWS::IAM::Role", nil)
		for id := range legacy {
			if _, ok := roles[id]; ok {
				t.Errorf("role %s is declared by default", id)
			}
		}
	})
}
