package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiling writes a CPU profile to $RSFTP_CPUPROFILE and an
// execution trace to $RSFTP_TRACE when they are set (for developers
// measuring a transfer or a server; see DEVELOPERS.md). The returned
// function stops both and must run before the process exits.
func startProfiling() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if p := os.Getenv("RSFTP_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return stop, fmt.Errorf("RSFTP_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("RSFTP_CPUPROFILE: %w", err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if p := os.Getenv("RSFTP_TRACE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			stop()
			return func() {}, fmt.Errorf("RSFTP_TRACE: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return func() {}, fmt.Errorf("RSFTP_TRACE: %w", err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	return stop, nil
}
