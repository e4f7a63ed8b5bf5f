// Command etl is the operator and local-mode tool. Each subcommand lives in
// its own file and registers itself in commands; main only dispatches.
//
//	etl local [flags]          run the whole pipeline locally on sample data
//	etl local bench [flags]    measure the local pipeline under generated load
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/go-sql-driver/mysql"
)

// command is one subcommand. run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the registry; subcommand files add themselves in init.
var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks a command-line mistake; the command has already printed
// what is wrong, and the exit status is 2.
var errUsage = errors.New("usage")

func main() {
	// The MySQL driver logs some connection failures itself, as raw lines
	// on stderr, besides returning them as errors; the errors are reported.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return exitCode(c.run(ctx, []string{"--help"}, stdout, stderr), stdout, stderr)
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "etl: unknown command %q\nRun `etl --help` for the commands.\n", args[0])
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	if err != nil && ctx.Err() != nil {
		// Ctrl-C: the command has cleaned up; say so instead of showing
		// whatever the cancellation broke.
		fmt.Fprintln(stderr, "etl: interrupted")
		return 130
	}
	return exitCode(err, stdout, stderr)
}

func exitCode(err error, stdout, stderr io.Writer) int {
	var help helpRequest
	switch {
	case errors.As(err, &help):
		// Help is what was asked for, so it goes to stdout (pipe it to less).
		help.fs.SetOutput(stdout)
		help.fs.Usage()
		return 0
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "etl: %v\n", err)
		if keyAccessDenied(err) {
			fmt.Fprintln(stderr, keyUsersHint)
		}
		return 1
	}
}

// keyUsersHint says why a deployed pipeline's data can be out of reach of
// an operator whose IAM policies allow everything: the pipeline key's
// policy lets only the principals it names use the key.
const keyUsersHint = "etl: the pipeline's data is encrypted with its KMS key, which only the pipeline's roles and the principals in the " +
	"CDK context keyUsers may use: add your role's ARN (aws sts get-caller-identity shows its name) and deploy the common stack, " +
	"e.g. npx cdk deploy UnifiedStreamETLCommonStack -c keyUsers=arn:aws:iam::<account>:role/<role> (README, Security)"

// keyAccessDenied reports whether err is AWS refusing the use of a KMS key:
// KMSAccessDeniedException (Kinesis, DynamoDB), KmsAccessDenied (SQS) or
// an AccessDenied naming a kms: action (S3, Secrets Manager).
func keyAccessDenied(err error) bool {
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "kms") {
		return false
	}
	return strings.Contains(msg, "accessdenied") || strings.Contains(msg, "access denied") || strings.Contains(msg, "not authorized")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "etl is the operator and local-mode tool of the unified streaming ETL pipeline.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: etl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `etl <command> --help` for a command's flags.")
}

// newFlagSet returns a flag set whose usage is a description, the command
// line and the flags. Mistakes go to stderr as one line (see parse); the
// usage goes to stdout when asked for with -h or --help.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: etl %s\n\n%s\n\nFlags:\n", synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// helpRequest is parse's answer to -h or --help: exitCode prints the flag
// set's usage to stdout.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string        { return "help requested" }
func (h helpRequest) Is(target error) bool { return target == flag.ErrHelp }

// parse parses args. -h and --help become a helpRequest; a mistake is
// reported by usageError as one line, not buried under the whole usage.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard) // the flag package prints the usage after every error
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return helpRequest{fs}
	case err != nil:
		return usageError(fs, err.Error())
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// usageError prints msg, which should name the flag that fixes it, and a
// pointer to the command's help, and returns errUsage (exit status 2).
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "etl %s: %s\nRun `etl %s --help` for its flags.\n", fs.Name(), msg, fs.Name())
	return errUsage
}
