package kafkatest

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// CommittedTotal returns the sum of a group's committed offsets: for a
// group that consumed its topics from the start, the records it consumed.
func CommittedTotal(ctx context.Context, t testing.TB, adm *kadm.Client, group string) int64 {
	t.Helper()
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	return total
}
