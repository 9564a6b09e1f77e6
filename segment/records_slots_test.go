package segment

import (
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestDecompressionsAreBounded: with every decompression slot taken, a
// check of a compressed batch waits for one (so the memory checks use is
// bounded however many run), while an uncompressed one does not.
func TestDecompressionsAreBounded(t *testing.T) {
	recs := AppendRecords(nil, []Record{{Value: []byte("v")}})
	enc, _ := zstd.NewWriter(nil)
	zb := BuildBatch(enc.EncodeAll(recs, nil), 1, CodecZstd, 0)
	plain := BuildBatch(recs, 1, CodecNone, 0)
	check := func(b []byte) <-chan error {
		done := make(chan error, 1)
		go func() {
			h, err := ValidateBatch(b, 0)
			if err == nil {
				err = CheckRecords(b, &h)
			}
			done <- err
		}()
		return done
	}
	for range cap(decompressing) {
		decompressing <- struct{}{}
	}
	if err := <-check(plain); err != nil {
		t.Fatal(err)
	}
	waiting := check(zb)
	select {
	case err := <-waiting:
		t.Fatalf("a compressed batch was checked with no slot free: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	<-decompressing
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	for range cap(decompressing) - 1 {
		<-decompressing
	}
}
