// Command buildlambdas builds every Lambda function of the module
// (lambdas/<name>) as <out>/<name>/bootstrap for linux/arm64, skipping
// those already up to date. `make lambdas` runs it; `cdk synth` does the
// same through cmd/cdk.
//
//	go run ./cmd/buildlambdas -out build/lambdas [name ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/unified-streaming-etl/etl/internal/lambdabuild"
)

func main() {
	out := flag.String("out", "build/lambdas", "output directory; each function goes to <out>/<name>/bootstrap")
	module := flag.String("module", ".", "root of the Go module")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: buildlambdas [-out dir] [-module dir] [name ...]\n\nWith no names, builds every function under lambdas/ and <tree>/lambdas/.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *module, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "buildlambdas:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, module, out string, names []string) error {
	if len(names) == 0 {
		var err error
		if names, err = lambdabuild.Functions(module); err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("no functions under %[1]s/%[2]s or %[1]s/*/%[2]s", module, lambdabuild.FunctionsDir)
		}
	}
	results, err := lambdabuild.Builder{ModuleDir: module, OutDir: out}.Build(ctx, names...)
	if err != nil {
		return err
	}
	for _, r := range results {
		state := "up to date"
		if r.Built {
			state = "built"
		}
		fmt.Printf("%-12s %-10s %s\n", r.Name, state, r.Dir)
	}
	return nil
}
