package emulator_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/emulator"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Node processes")
	}
	root := testenv.RepoRoot(t)
	for _, name := range []string{emulator.Dynalite, emulator.Kinesalite} {
		t.Run(name+" answers HTTP on loopback and is gone after Stop", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			e, err := emulator.StartConfig(ctx, emulator.Config{Name: name, Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(e.Endpoint(), "http://127.0.0.1:") {
				t.Fatalf("endpoint %q is not a loopback URL", e.Endpoint())
			}
			// Both emulators answer an unsigned request with an AWS error
			// document, which proves the process behind the port is ours.
			resp, err := http.Post(e.Endpoint(), "application/x-amz-json-1.0", strings.NewReader("{}"))
			if err != nil {
				t.Fatalf("emulator does not answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden {
				t.Errorf("unsigned request got status %d, want an AWS client error (400 or 403)", resp.StatusCode)
			}

			if err := e.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if err := e.Stop(); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			client := http.Client{Timeout: 2 * time.Second}
			if resp, err := client.Post(e.Endpoint(), "application/x-amz-json-1.0", strings.NewReader("{}")); err == nil {
				resp.Body.Close()
				t.Fatal("emulator still answers after Stop")
			}
		})
	}

	t.Run("two emulators get different ports", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := emulator.StartConfig(ctx, emulator.Config{Name: emulator.Dynalite, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop()
		b, err := emulator.StartConfig(ctx, emulator.Config{Name: emulator.Dynalite, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Stop()
		if a.Endpoint() == b.Endpoint() {
			t.Fatalf("both emulators at %s", a.Endpoint())
		}
	})

	t.Run("a fixed port that is taken fails with the emulator's reason", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := emulator.StartConfig(ctx, emulator.Config{Name: emulator.Dynalite, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop()
		u, err := url.Parse(a.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(u.Port())
		if err != nil {
			t.Fatal(err)
		}
		b, err := emulator.StartConfig(ctx, emulator.Config{Name: emulator.Dynalite, Root: root, Port: p})
		if err == nil {
			b.Stop()
			t.Fatal("second emulator started on a port in use")
		}
		if !strings.Contains(err.Error(), "EADDRINUSE") {
			t.Errorf("error does not explain the failure: %v", err)
		}
	})
}

func TestStartWithoutNodeModules(t *testing.T) {
	_, err := emulator.StartConfig(context.Background(), emulator.Config{Name: emulator.Dynalite, Root: t.TempDir()})
	if !errors.Is(err, emulator.ErrNotInstalled) {
		t.Fatalf("got %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "make deps") {
		t.Errorf("error %q does not name the command that installs the emulators", err)
	}
}

func TestStartRejectsUnknownEmulator(t *testing.T) {
	if _, err := emulator.Start(context.Background(), "localstack", 0); err == nil {
		t.Fatal("unknown emulator accepted")
	}
}

func TestEmulatorsSurviveARequestTheClientAbandons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulators")
	}
	for _, name := range []string{emulator.Dynalite, emulator.Kinesalite} {
		t.Run(name, func(t *testing.T) {
			e, err := emulator.Start(context.Background(), name, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Stop()
			host := strings.TrimPrefix(e.Endpoint(), "http://")
			// Half a request, then hang up: what a cancelled SDK call does.
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = conn.Write([]byte("POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 1000\r\n\r\n{\"Tab"))
			time.Sleep(200 * time.Millisecond)
			conn.Close()
			time.Sleep(300 * time.Millisecond)

			resp, err := http.Get(e.Endpoint())
			if err != nil {
				t.Fatalf("%s died after an abandoned request: %v", name, err)
			}
			resp.Body.Close()
		})
	}
}
