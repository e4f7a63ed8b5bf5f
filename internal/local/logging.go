package local

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// lineLogger logs an emulator's output line by line: the emulators print
// nothing but their start line unless something goes wrong (a crash's
// stack trace).
type lineLogger struct {
	log  *slog.Logger
	name string
	mu   sync.Mutex
	buf  []byte
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
		if line != "" && !strings.Contains(strings.ToLower(line), "listening at") {
			l.log.Warn("emulator output", "emulator", l.name, "line", line)
		}
	}
	return len(b), nil
}
