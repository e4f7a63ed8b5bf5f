package childproc_test

import (
	"errors"
	"io/fs"
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}

func TestBuffer(t *testing.T) {
	writes := []string{"abc", "defgh", "", "ij"}
	for _, tc := range []struct {
		name string
		buf  *childproc.Buffer
		want string
	}{
		{"a head buffer keeps the first bytes written", childproc.NewHeadBuffer(6), "abcdef"},
		{"a tail buffer keeps the last bytes written", childproc.NewTailBuffer(6), "efghij"},
		{"a head buffer larger than the output keeps all of it", childproc.NewHeadBuffer(100), "abcdefghij"},
		{"a tail buffer larger than the output keeps all of it", childproc.NewTailBuffer(100), "abcdefghij"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range writes {
				// A short count would make exec's copier fail the child.
				if n, err := tc.buf.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := tc.buf.String(); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStartOfAMissingProgramIsAnError(t *testing.T) {
	c, err := childproc.Start(exec.Command("/nonexistent/server"), nil)
	if !errors.Is(err, fs.ErrNotExist) || c != nil {
		t.Fatalf("got %v, %v; want a not-exist error and no child", c, err)
	}
}
