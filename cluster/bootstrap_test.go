package cluster

import (
	"slices"

	"github.com/chronik-stream/chronik/gossip"
	"testing"
)

func TestParseVoters(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int32
	}{
		{"1\n2\n3\n", []int32{1, 2, 3}},
		{"3 1\n2", []int32{1, 2, 3}},
		{"0\n1\n", nil},           // 0 is no node to Raft
		{"", nil},                 // self missing
		{"2\n3\n", []int32{2, 3}}, // this node a broker that is not a voter
		{"1\n1\n2\n", nil},        // twice
		{"1\nx\n", nil},           // not a number
		{"1\n-2\n", nil},          // negative
		{"1\n4294967297", nil},    // beyond int32
	} {
		got, err := parseVoters([]byte(c.in), 1)
		if c.want == nil && err == nil || c.want != nil && (err != nil || !slices.Equal(got, c.want)) {
			t.Errorf("parseVoters(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseVoters: any voters file is read as distinct positive ids, or
// refused with an error.
func FuzzParseVoters(f *testing.F) {
	f.Add([]byte("1\n2\n3\n"))
	f.Add([]byte("1 1"))
	f.Add([]byte("\x00-1\n99999999999"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := parseVoters(b, 1)
		if err != nil {
			return
		}
		if len(ids) == 0 || len(ids) > gossip.MaxVoters || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) || ids[0] <= 0 {
			t.Fatalf("parseVoters(%q) = %v", b, ids)
		}
	})
}
