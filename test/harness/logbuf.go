package harness

import (
	"bytes"
	"sync"
)

// LogBuffer keeps a child process's output for a test to read while the
// process still writes it (as its Stdout and Stderr).
type LogBuffer struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Write(p)
}

// String is what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}
