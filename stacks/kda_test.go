package stacks_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	"github.com/unified-streaming-etl/etl/stacks"
)

// The KDA variants and what the shared tests expect of them: registered
// here, so that deleting this file with stacks/kda.go leaves the shared
// tests whole (TestKDAPathIsGatheredForDeletion).
const (
	kdaProcessor variant = "processor=kda-sql"
	// kdaEFO maps both streams through enhanced fan-out consumers.
	kdaEFO variant = "processor=kda-sql consumer=efo"
)

func init() {
	variantContext[kdaProcessor] = map[string]any{stacks.KeyProcessor: string(stacks.ProcessorKDASQL)}
	variantContext[kdaEFO] = map[string]any{stacks.KeyProcessor: string(stacks.ProcessorKDASQL), stacks.KeyConsumer: string(stacks.ConsumerEFO)}
	allVariants = append(allVariants, kdaProcessor, kdaEFO)
	shapeVariants = append(shapeVariants, kdaProcessor)
	twoHopVariants = append(twoHopVariants, kdaProcessor)
	expectedProcessOutputs[kdaProcessor] = []string{"EnrichedStreamName", "OrderEnrichedTableName", "ReferenceDataUri"}
	expectedFunctions[kdaProcessor] = []string{"Sink", "Preprocess", "KdaStart"}
	statefulCases = append(statefulCases, statefulCase{kdaProcessor, slices.Concat(processStateful, sinkPath, rawArchive, []string{"Application"})})
	efoCases = append(efoCases, efoCase{kdaEFO, map[string]string{"Sink": "EnrichedStream"}})
	// The application polls the unified stream itself; the sink reads the
	// enriched stream as consumer says.
	polledStreamCases = append(polledStreamCases,
		polledStreamCase{kdaProcessor, map[string]bool{"OrderStream": true, "EnrichedStream": true}},
		polledStreamCase{kdaEFO, map[string]bool{"OrderStream": true, "EnrichedStream": false}})
	// The enriched stream of the two-hop shape; the default has none
	// (TestDefaultShapeIsOneHop).
	enrichedStreamCases = append(enrichedStreamCases, enrichedStreamCase{kdaProcessor, map[string]any{"ShardCount": 2}, map[string]any{"BillingMode": "PAY_PER_REQUEST"}})
	processorAlarms[stacks.ProcessorKDASQL] = func(cfg stacks.Config) processorWatch {
		age := float64(cfg.Alarms.IteratorAgeSeconds * 1000)
		return processorWatch{
			enrichedStream:     true,
			pollsUnifiedStream: true,
			functions: []alarmedFunction{
				{"Sink", stacks.SinkTimeout.Seconds() * 1000, true},
				{"Preprocess", stacks.PreprocessTimeout.Seconds() * 1000, false},
			},
			alarms: []wantAlarm{
				{"SinkDlqDepthAlarm", "AWS/SQS", []string{"ApproximateNumberOfMessagesVisible"}, "Maximum", 1, 1, "notBreaching"},
				{"ApplicationBehindAlarm", "AWS/KinesisAnalytics", []string{"MAX(MillisBehindLatest)", "WHERE Application ="}, "", age, 3, "breaching"},
			},
			dashboardMetrics: []string{"MillisBehindLatest"},
		}
	}
}

// Removing the KDA SQL path is deleting kda/, stacks/kda.go, this file
// and the SQL file, nothing else (issue 10): with those files deleted
// through a build overlay, every other package and its tests still
// builds and vets, and no build file mentions them.
func TestKDAPathIsGatheredForDeletion(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]string{}
	for _, f := range []string{"stacks/kda.go", "stacks/kda_test.go", stacks.KDASQLFile} {
		deleted[filepath.Join(root, f)] = ""
	}
	err = filepath.WalkDir(filepath.Join(root, "kda"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			deleted[path] = ""
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]any{"Replace": deleted})
	if err != nil {
		t.Fatal(err)
	}
	overlayFile := filepath.Join(t.TempDir(), "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	list := exec.Command("go", "list", "./...")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	args := []string{"vet", "-overlay=" + overlayFile}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.Contains(pkg+"/", "/kda/") {
			args = append(args, pkg)
		}
	}
	vet := exec.Command("go", args...)
	vet.Dir = root
	if out, err := vet.CombinedOutput(); err != nil {
		t.Errorf("without the KDA files the rest does not build: %v\n%s", err, out)
	}
	builds, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*"))
	for _, f := range append(builds, filepath.Join(root, "Makefile"), filepath.Join(root, "cdk.json"), filepath.Join(root, "package.json")) {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), "kda") {
			t.Errorf("%s mentions the KDA path", f)
		}
	}
}

func TestLoadConfigAcceptsTheKDASQLProcessor(t *testing.T) {
	c, err := loadConfig(t, map[string]any{"processor": "kda-sql"})
	if err != nil || c.Processor != stacks.ProcessorKDASQL {
		t.Errorf("processor=kda-sql: %v, %v", c.Processor, err)
	}
	_, err = loadConfig(t, map[string]any{"processor": "flink"})
	if err == nil || !strings.Contains(err.Error(), `"lambda", "kda-sql"`) {
		t.Errorf("a bad processor: error %v, want one listing \"lambda\", \"kda-sql\"", err)
	}
}

// sqlColumnsRead parses KDA SQL and returns, per stream or table, the
// columns the statements read from it. Quoted identifiers are columns;
// a qualified one (alias."col") belongs to the aliased source, an
// unqualified one to the statement's only source.
func sqlColumnsRead(sql string) map[string][]string {
	comments := regexp.MustCompile(`--[^\n]*`)
	source := regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+"(\w+)"(?:\s+OVER\s*\([^)]*\))?(?:\s+AS\s+(\w+))?`)
	qualified := regexp.MustCompile(`\b(\w+)\."(\w+)"`)
	quoted := regexp.MustCompile(`"(\w+)"`)
	selectStart := regexp.MustCompile(`(?i)\bSELECT\b`)

	read := map[string]map[string]bool{}
	add := func(table, col string) {
		if read[table] == nil {
			read[table] = map[string]bool{}
		}
		read[table][col] = true
	}
	for _, stmt := range strings.Split(comments.ReplaceAllString(sql, ""), ";") {
		loc := selectStart.FindStringIndex(stmt)
		if loc == nil {
			continue
		}
		query := stmt[loc[0]:]
		aliases := map[string]string{}
		var sources []string
		for _, m := range source.FindAllStringSubmatch(query, -1) {
			sources = append(sources, m[1])
			if m[2] != "" {
				aliases[m[2]] = m[1]
			}
		}
		for _, m := range qualified.FindAllStringSubmatch(query, -1) {
			if table, ok := aliases[m[1]]; ok {
				add(table, m[2])
			}
		}
		if len(sources) != 1 {
			continue
		}
		unqualified := qualified.ReplaceAllString(source.ReplaceAllString(query, ""), "")
		for _, m := range quoted.FindAllStringSubmatch(unqualified, -1) {
			add(sources[0], m[1])
		}
	}
	out := map[string][]string{}
	for table, cols := range read {
		for c := range cols {
			out[table] = append(out[table], c)
		}
		sort.Strings(out[table])
	}
	return out
}

func TestSQLColumnParserFindsQualifiedAndUnqualifiedColumns(t *testing.T) {
	sql := `-- a comment naming "ignored"
CREATE OR REPLACE PUMP "P1" AS INSERT INTO "OUT1"
  SELECT STREAM "a", "b" FROM "SRC" WHERE "c" = 'x';
CREATE OR REPLACE PUMP "P2" AS INSERT INTO "OUT2"
  SELECT STREAM s."d", r."e" FROM "SRC" AS s LEFT JOIN "REF" AS r ON s."f" = r."g";`
	got := sqlColumnsRead(sql)
	want := map[string][]string{"SRC": {"a", "b", "c", "d", "f"}, "REF": {"e", "g"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sqlColumnsRead = %v, want %v", got, want)
	}
}

// sqlDeclaredTypes returns the SQL type of every column declared by the
// CREATE STREAM statements, per column name.
func sqlDeclaredTypes(sql string) map[string][]string {
	column := regexp.MustCompile(`(?m)^\s*"(\w+)"\s+([A-Z]+(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?)`)
	out := map[string][]string{}
	for _, m := range column.FindAllStringSubmatch(sql, -1) {
		out[m[1]] = append(out[m[1]], strings.Join(strings.Fields(m[2]), ""))
	}
	return out
}

func kdaSQL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", stacks.KDASQLFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The KDA SQL splits into statements like the project's other scripts
// (moved here from internal/sqlscript with the file's embedding).
func TestKDASQLSplitsIntoStatements(t *testing.T) {
	stmts, err := sqlscript.Split(kdaSQL(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) == 0 {
		t.Fatal("no statements")
	}
	for _, st := range stmts {
		if strings.HasSuffix(st.SQL, ";") {
			t.Errorf("statement at line %d kept its delimiter", st.Line)
		}
	}
}

// recordColumns returns name → mapping and name → type of a KDA schema.
func recordColumns(t *testing.T, schema any) (mappings, types map[string]string) {
	t.Helper()
	mappings, types = map[string]string{}, map[string]string{}
	cols, _ := schema.(map[string]any)["RecordColumns"].([]any)
	for _, c := range cols {
		col := c.(map[string]any)
		name := col["Name"].(string)
		mappings[name], _ = col["Mapping"].(string)
		types[name], _ = col["SqlType"].(string)
	}
	return mappings, types
}

func TestKDAApplicationReadsTheUnifiedStreamThroughPreprocess(t *testing.T) {
	s := synth(t, kdaProcessor)
	tmpl := s.template(stacks.ProcessStackName)
	role := logicalID(t, tmpl, "AWS::IAM::Role", map[string]any{"AssumeRolePolicyDocument": map[string]any{"Statement": []any{
		map[string]any{"Principal": map[string]any{"Service": "kinesisanalytics.amazonaws.com"}},
	}}})
	preprocess := ""
	for id := range goFunctions(tmpl) {
		if strings.HasPrefix(id, "Preprocess") {
			preprocess = id
		}
	}
	_, app := only(t, tmpl, "AWS::KinesisAnalytics::Application", map[string]any{
		"ApplicationCode": kdaSQL(t),
		"Inputs": []any{map[string]any{
			"NamePrefix":          "SOURCE_SQL_STREAM",
			"KinesisStreamsInput": map[string]any{"ResourceARN": importOf("OrderStream"), "RoleARN": getAtt(role, "Arn")},
			"InputProcessingConfiguration": map[string]any{"InputLambdaProcessor": map[string]any{
				"ResourceARN": getAtt(preprocess, "Arn"), "RoleARN": getAtt(role, "Arn"),
			}},
			"InputSchema": map[string]any{
				"RecordEncoding": "UTF-8",
				"RecordFormat": map[string]any{
					"RecordFormatType":  "JSON",
					"MappingParameters": map[string]any{"JSONMappingParameters": map[string]any{"RecordRowPath": "$"}},
				},
			},
		}},
	})
	assertResource(t, tmpl, "AWS::KinesisAnalytics::Application", map[string]any{"DependsOn": assertions.Match_ArrayWith(&[]any{role})})

	schema := props(app)["Inputs"].([]any)[0].(map[string]any)["InputSchema"]
	mappings, types := recordColumns(t, schema)
	t.Run("the input schema maps every column the SQL reads from SOURCE_SQL_STREAM_001", func(t *testing.T) {
		read := sqlColumnsRead(kdaSQL(t))["SOURCE_SQL_STREAM_001"]
		if len(read) == 0 {
			t.Fatal("found no column read from SOURCE_SQL_STREAM_001; is the SQL parser still right?")
		}
		for _, c := range read {
			if mappings[c] != "$."+c {
				t.Errorf("column %s is mapped from %q, want $.%s", c, mappings[c], c)
			}
		}
	})
	t.Run("the input schema maps every field of the flat CDC record", func(t *testing.T) {
		for _, field := range jsonFields(reflect.TypeOf(order.Change{})) {
			if mappings[field] != "$."+field {
				t.Errorf("flat record field %s is mapped from %q", field, mappings[field])
			}
		}
	})
	t.Run("column types agree with the streams the SQL declares", func(t *testing.T) {
		declared := sqlDeclaredTypes(kdaSQL(t))
		for name, typ := range types {
			for _, d := range declared[name] {
				if d != typ {
					t.Errorf("column %s is %s in the input schema but %s in the SQL", name, typ, d)
				}
			}
		}
	})
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func TestKDAReferenceTableMapsTheProductsTheSQLReads(t *testing.T) {
	s := synth(t, kdaProcessor)
	tmpl := s.template(stacks.ProcessStackName)
	bucket := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"LoggingConfiguration": map[string]any{"LogFilePrefix": "reference-data/"}, "VersioningConfiguration": map[string]any{"Status": "Enabled"}, "BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}}}}})
	_, source := only(t, tmpl, "AWS::KinesisAnalytics::ApplicationReferenceDataSource", map[string]any{
		"ApplicationName": ref(logicalID(t, tmpl, "AWS::KinesisAnalytics::Application", nil)),
		"ReferenceDataSource": map[string]any{
			"TableName":             "products",
			"S3ReferenceDataSource": map[string]any{"BucketARN": getAtt(bucket, "Arn"), "FileKey": "products.json"},
			"ReferenceSchema": map[string]any{"RecordFormat": map[string]any{
				"RecordFormatType":  "JSON",
				"MappingParameters": map[string]any{"JSONMappingParameters": map[string]any{"RecordRowPath": "$"}},
			}},
		},
	})
	// KDA reads the object when the source is added, so it must be deployed first.
	deployment := logicalID(t, tmpl, "Custom::CDKBucketDeployment", nil)
	assertResource(t, tmpl, "AWS::KinesisAnalytics::ApplicationReferenceDataSource", map[string]any{"DependsOn": assertions.Match_ArrayWith(&[]any{deployment})})

	mappings, _ := recordColumns(t, props(source)["ReferenceDataSource"].(map[string]any)["ReferenceSchema"])
	read := sqlColumnsRead(kdaSQL(t))["products"]
	if len(read) == 0 {
		t.Fatal("found no column read from products; is the SQL parser still right?")
	}
	for _, c := range append(read, jsonFields(reflect.TypeOf(order.Product{}))...) {
		if mappings[c] != "$."+c {
			t.Errorf("products column %s is mapped from %q, want $.%s", c, mappings[c], c)
		}
	}
}

func TestKDAOutputWritesJSONToTheEnrichedStream(t *testing.T) {
	tmpl := synth(t, kdaProcessor).template(stacks.ProcessStackName)
	stream := logicalID(t, tmpl, "AWS::Kinesis::Stream", nil)
	assertProps(t, tmpl, "AWS::KinesisAnalytics::ApplicationOutput", map[string]any{
		"ApplicationName": ref(logicalID(t, tmpl, "AWS::KinesisAnalytics::Application", nil)),
		"Output": map[string]any{
			"Name":                 "ORDER_ITEM_ENRICHED_STREAM",
			"DestinationSchema":    map[string]any{"RecordFormatType": "JSON"},
			"KinesisStreamsOutput": map[string]any{"ResourceARN": getAtt(stream, "Arn")},
		},
	})
	if !strings.Contains(kdaSQL(t), `"ORDER_ITEM_ENRICHED_STREAM"`) {
		t.Error("the SQL no longer defines the output stream ORDER_ITEM_ENRICHED_STREAM")
	}
}

func TestKDARoleHoldsExactlyWhatTheApplicationUses(t *testing.T) {
	tmpl := synth(t, kdaProcessor).template(stacks.ProcessStackName)
	role := logicalID(t, tmpl, "AWS::IAM::Role", map[string]any{"AssumeRolePolicyDocument": map[string]any{"Statement": []any{
		map[string]any{"Principal": map[string]any{"Service": "kinesisanalytics.amazonaws.com"}},
	}}})
	statements := iamStatements(tmpl)[logicalID(t, tmpl, "AWS::IAM::Policy", map[string]any{"Roles": []any{ref(role)}})]
	got := map[string][]string{}
	for _, st := range statements {
		resource := mustMarshal(t, st["Resource"])
		var target string
		switch {
		case strings.Contains(resource, "OrderStream"):
			target = "unified stream"
		case strings.Contains(resource, "EnrichedStream"):
			target = "enriched stream"
		case strings.Contains(resource, "Preprocess"):
			target = "preprocess function"
		case strings.Contains(resource, "ReferenceDataBucket"):
			target = "products object"
			if !strings.Contains(resource, "/products.json") {
				t.Errorf("S3 access beyond products.json: %s", resource)
			}
		case strings.Contains(resource, "Key"):
			target = "pipeline key"
		default:
			t.Errorf("unexpected resource %s", resource)
			continue
		}
		for _, a := range asList(st["Action"]) {
			got[target] = append(got[target], a.(string))
		}
	}
	want := map[string][]string{
		"unified stream":      {"kinesis:DescribeStream", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"},
		"enriched stream":     {"kinesis:DescribeStream", "kinesis:PutRecord", "kinesis:PutRecords"},
		"preprocess function": {"lambda:GetFunctionConfiguration", "lambda:InvokeFunction"},
		"products object":     {"s3:GetObject*"},
		"pipeline key":        {"kms:Decrypt", "kms:GenerateDataKey*"},
	}
	for target, actions := range want {
		for _, a := range actions {
			if !slices.Contains(got[target], a) {
				t.Errorf("the KDA role may not %s on the %s", a, target)
			}
		}
	}
	for target, actions := range got {
		for _, a := range actions {
			if strings.HasPrefix(a, "kinesis:Put") && target != "enriched stream" {
				t.Errorf("the KDA role may write (%s) to the %s", a, target)
			}
		}
	}
}

func TestKDAProcessorWarnsThatItCannotBeCreated(t *testing.T) {
	s := synth(t, kdaProcessor)
	found := false
	for _, w := range s.warnings {
		if strings.Contains(w, "cannot be created since 2025-10-15") {
			found = true
		}
	}
	if !found {
		t.Errorf("no discontinuation warning among %v", s.warnings)
	}
	for _, w := range synth(t, lambdaProcessor).warnings {
		if strings.Contains(w, "2025-10-15") {
			t.Errorf("processor=lambda warns about KDA: %s", w)
		}
	}
	tmpl := s.template(stacks.ProcessStackName)
	if n := len(resources(tmpl, "AWS::Lambda::EventSourceMapping", map[string]any{"EventSourceArn": importOf("OrderStream")})); n != 0 {
		t.Errorf("%d functions read the unified stream with processor=kda-sql; KDA does", n)
	}
	if tables := resources(tmpl, "AWS::DynamoDB::Table", nil); len(tables) != 1 {
		t.Errorf("%d tables with processor=kda-sql, want only OrderEnriched", len(tables))
	}
}

func TestKDAApplicationStartsOnceConfiguredAndStopsBeforeDeletion(t *testing.T) {
	tmpl := synth(t, kdaProcessor).template(stacks.ProcessStackName)
	app := logicalID(t, tmpl, "AWS::KinesisAnalytics::Application", nil)
	output := logicalID(t, tmpl, "AWS::KinesisAnalytics::ApplicationOutput", nil)
	_, start := customResource(t, tmpl, stacks.ResourceTypeKDAStart)
	if mustMarshal(t, props(start)["ApplicationName"]) != mustMarshal(t, ref(app)) {
		t.Errorf("ApplicationName = %v, want %s", props(start)["ApplicationName"], app)
	}
	deps := dependsOn(start)
	for _, d := range []string{app, output} {
		if !slices.Contains(deps, d) {
			t.Errorf("start DependsOn %v, want %s: the application is started once fully configured and stopped before deletion", deps, d)
		}
	}
	statements := policyOf(t, tmpl, "KdaStart")
	for _, a := range []string{"kinesisanalytics:DescribeApplication", "kinesisanalytics:StartApplication", "kinesisanalytics:StopApplication"} {
		if !allows(t, statements, a, `":application/",{"Ref":"`+app+`"}`) {
			t.Errorf("kda-start may not %s on the application", a)
		}
	}
	for _, st := range statements {
		if strings.Contains(mustMarshal(t, st["Action"]), "kinesisanalytics:") && !strings.Contains(mustMarshal(t, st["Resource"]), app) {
			t.Errorf("KDA actions on %v, want the application only", st["Resource"])
		}
	}
	if n := len(resources(synth(t, lambdaProcessor).template(stacks.ProcessStackName), stacks.ResourceTypeKDAStart, nil)); n != 0 {
		t.Errorf("%d KDA start resources with processor=lambda", n)
	}
}
