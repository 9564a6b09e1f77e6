package eventlog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestCommittedEntriesTogether: the entries one Raft Ready commits are
// written in order with one sync; one whose events conflict with an
// earlier one becomes a NoOp batch and ErrRefused, the others apply; the
// same entries replayed are recognised; and a failed sync leaves the
// readers' state without any of them.
func TestCommittedEntriesTogether(t *testing.T) {
	e := newLogEnv(t, Options{})
	e.append(reg(1, inc1))
	start := e.log.Offset()
	var batches []CommittedBatch
	for _, name := range []string{"a", "b", "a", "c"} {
		b, err := e.log.EncodeBatch(createTopic(name, 1)...)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, CommittedBatch{Batch: b, Epoch: 3})
	}
	next, errs := e.log.AppendCommittedAll(batches, start)
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrRefused) || errs[3] != nil {
		t.Fatalf("outcomes %v, want nil, nil, ErrRefused, nil", errs)
	}
	// a and b are 2 events each, the NoOp 1, c 2.
	if want := []int64{start + 2, start + 4, start + 5, start + 7}; !slices.Equal(next, want) {
		t.Fatalf("positions %v, want %v", next, want)
	}
	if got := topicNames(e.log); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("topics %v", got)
	}
	if e.log.Offset() != start+7 {
		t.Fatalf("state at %d, want %d", e.log.Offset(), start+7)
	}

	// Replayed (a restart re-applying Raft's entries), the refused one
	// included: its NoOp is recognised.
	again, errs := e.log.AppendCommittedAll(batches, start)
	for i, err := range errs {
		if !errors.Is(err, ErrReplayed) {
			t.Fatalf("replaying entry %d: %v", i, err)
		}
	}
	if !slices.Equal(again, next) {
		t.Fatalf("replayed positions %v, want %v", again, next)
	}
	// Another batch where a committed one is stored: ErrDiverged, saying
	// how the two differ.
	other, _ := e.log.EncodeBatch(createTopic("other", 1)...)
	if _, err := e.log.AppendCommitted(other, 4, start); !errors.Is(err, ErrDiverged) ||
		!strings.Contains(err.Error(), fmt.Sprintf("stored at %d: epoch 3, 2 records", start)) || !strings.Contains(err.Error(), "committed: epoch 4, 2 records") {
		t.Fatalf("a diverging batch: %v", err)
	}

	e.fs.FailSyncs(100) // not only the first: a background sync may take one
	var more []CommittedBatch
	for _, name := range []string{"d", "e"} {
		b, _ := e.log.EncodeBatch(createTopic(name, 1)...)
		more = append(more, CommittedBatch{Batch: b, Epoch: 3})
	}
	_, errs = e.log.AppendCommittedAll(more, start+7)
	if !errors.Is(errs[0], ErrFailed) || !errors.Is(errs[1], ErrFailed) {
		t.Fatalf("after a failed sync: %v", errs)
	}
	if got := topicNames(e.log); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("topics after a failed sync %v", got)
	}
}
