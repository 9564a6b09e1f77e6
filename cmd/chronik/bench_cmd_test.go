package main

import (
	"strings"
	"testing"
)

// TestBenchTargets: `chronik bench` runs a workload against the targets
// it starts in the process, and says which workloads the sync floor
// serves.
func TestBenchTargets(t *testing.T) {
	for _, target := range []string{"chronik", "kfake", "sync-floor"} {
		out, errOut, code := run(t, "bench", "create-topics", "--target", target, "--count", "50", "--data-dir", t.TempDir())
		if code != 0 || !strings.Contains(out, "create-topics (1 per request): 50 ops") || !strings.Contains(out, "against "+target) {
			t.Fatalf("create-topics against %s (exit %d):\n%s%s", target, code, out, errOut)
		}
	}
	for _, target := range []string{"chronik", "kfake-blackhole"} {
		out, errOut, code := run(t, "bench", "produce", "--pre-encoded", "--target", target, "--records", "3000", "--record-size", "1024")
		if code != 0 || !strings.Contains(out, "produce 1024 B records in pre-encoded batches, acks=all: 4") || !strings.Contains(out, "against "+target) {
			t.Fatalf("produce --pre-encoded against %s (exit %d):\n%s%s", target, code, out, errOut)
		}
	}
	_, errOut, code := run(t, "bench", "single-message", "--target", "sync-floor")
	if code != 2 || !strings.Contains(errOut, "sync-floor serves create-topics only") {
		t.Fatalf("single-message against sync-floor: exit %d, %s", code, errOut)
	}
	_, errOut, code = run(t, "bench", "create-topics", "--target", "redpanda")
	if code != 2 || !strings.Contains(errOut, `--target "redpanda" is not one of`) {
		t.Fatalf("an unknown target: exit %d, %s", code, errOut)
	}
}
