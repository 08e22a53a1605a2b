package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/rsftp/rsftp"
)

// eventLog appends one JSON object per line to the --events file, for
// scripts that want to know when the link was lost and how the session
// came back. A nil *eventLog writes nothing.
type eventLog struct {
	mu sync.Mutex
	f  *os.File
}

func openEventLog(path string) (*eventLog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--events: %w", err)
	}
	return &eventLog{f: f}, nil
}

func (l *eventLog) write(e rsftp.Event) {
	if l == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Write(append(b, '\n'))
	}
}

func (l *eventLog) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
