// Command cdk is the CDK app (cdk.json runs it): it reads the configuration
// from context, builds the Lambda functions, creates the three stacks and
// synthesizes them. Run it through the CDK CLI: `npx cdk synth`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/internal/lambdabuild"
	"github.com/unified-streaming-etl/etl/stacks"
)

// Paths relative to the module root, where the CDK CLI runs the app.
const (
	lambdaDir        = "build/lambdas"
	referenceDataDir = "reference-data"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		// On its way out the jsii runtime sometimes reports its own exit
		// without a newline; start on a fresh line so the error stands out.
		fmt.Fprintln(os.Stderr, "\ncdk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	defer jsii.Close()
	// jsii reports synthesis failures (such as a template that fails
	// CloudFormation validation) as panics; report them as errors.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synth: %v", r)
		}
	}()
	app := awscdk.NewApp(nil)
	cfg, err := stacks.LoadConfig(app)
	if err != nil {
		return err
	}

	names, err := lambdabuild.Functions(".")
	if err != nil {
		return err
	}
	results, err := lambdabuild.Builder{ModuleDir: ".", OutDir: lambdaDir}.Build(ctx, names...)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Built {
			fmt.Fprintf(os.Stderr, "built Lambda %s\n", r.Name)
		}
	}

	_, err = stacks.NewPipeline(app, cfg, stacks.Inputs{
		LambdaDir:        lambdaDir,
		ReferenceDataDir: referenceDataDir,
		RootDir:          ".",
		RDSCAPackageDir:  stacks.RDSCAPackageDir,
	}, stacks.EnvironmentFrom(os.Getenv))
	if err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}
