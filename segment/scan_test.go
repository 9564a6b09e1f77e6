package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
)

// testBatch builds a valid uncompressed batch of size bytes at base with
// count records' worth of offsets (its records are opaque bytes: only the
// header and CRC matter here).
func testBatch(base int64, size, count int) []byte {
	b := make([]byte, size)
	be := binary.BigEndian
	be.PutUint64(b, uint64(base))
	be.PutUint32(b[offBatchLength:], uint32(size-lengthFieldEnd))
	b[offMagic] = batchMagic
	be.PutUint32(b[offLastOffsetDelta:], uint32(count-1))
	be.PutUint32(b[offRecordCount:], uint32(count))
	for i := BatchHeaderSize; i < size; i++ {
		b[i] = byte(i)
	}
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

// TestScanParallelMatchesScan checks the parallel recovery scan against the
// plain one on logs with damage at random places and windows small enough
// that a log spans many.
func TestScanParallelMatchesScan(t *testing.T) {
	defer func(w int) { scanWindow = w }(scanWindow)
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 2))
		scanWindow = 64 + rng.IntN(4000)
		var data []byte
		next := int64(0)
		for range rng.IntN(200) {
			n := 1 + rng.IntN(5)
			size := BatchHeaderSize + rng.IntN(300)
			if rng.IntN(100) == 0 {
				size = crcChunk/2 + rng.IntN(2*crcChunk) // read in more than one chunk
			}
			data = append(data, testBatch(next, size, n)...)
			next += int64(n)
		}
		data = append(data, make([]byte, rng.IntN(100))...)
		switch rng.IntN(4) {
		case 0: // a flipped byte somewhere
			if len(data) > 0 {
				data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // garbage at the end
			for range rng.IntN(50) {
				data = append(data, byte(rng.IntN(256)))
			}
		case 2: // cut short
			data = data[:rng.IntN(len(data)+1)]
		}
		var want []string
		wantStop, _ := scanBatches(data, 0, 0, func(pos int, h *BatchHeader) error {
			want = append(want, fmt.Sprint(pos, h.BaseOffset))
			return nil
		})
		// The CRCs over the bytes in hand, and read from a file in chunks.
		for _, r := range []io.ReaderAt{nil, bytes.NewReader(data)} {
			var got []string
			gotStop, err := scanBatchesParallel(data, 0, 0, r, func(pos int, h *BatchHeader) {
				got = append(got, fmt.Sprint(pos, h.BaseOffset))
			})
			if err != nil || fmt.Sprint(want) != fmt.Sprint(got) || wantStop != gotStop {
				t.Fatalf("seed %d, reader %v: parallel scan %v %+v %v, plain scan %v %+v", seed, r != nil, len(got), gotStop, err, len(want), wantStop)
			}
		}
	}
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("EIO") }

// TestScanReadErrorIsNotDamage: a file that cannot be read fails the scan
// with the error; it is not taken for a torn tail to cut.
func TestScanReadErrorIsNotDamage(t *testing.T) {
	data := append(testBatch(0, 200, 1), testBatch(1, 300, 2)...)
	stop, err := scanBatchesParallel(data, 0, 0, failingReader{}, func(int, *BatchHeader) {})
	if err == nil || errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("scan over a failing file: %+v, %v", stop, err)
	}
}

// TestReadersIgnoreIndexHintsPastTheData: the active segment's indexes run
// ahead of its durable bytes; hints past them must not be followed.
func TestReadersIgnoreIndexHintsPastTheData(t *testing.T) {
	var data []byte
	x := newIndexes()
	for i := range 4 {
		b := testBatch(int64(i), 100, 1)
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(100*(i+1)))
		h, _ := ParseHeader(b)
		x.add(0, len(data), &h, 1)
		data = append(data, b...)
	}
	durable := data[:200] // the third and fourth batches are not durable
	for _, off := range []int64{2, 3} {
		if pos, ok := findBatch(durable, &x, 0, off); ok {
			t.Fatalf("found undurable offset %d at %d", off, pos)
		}
	}
	if pos, ok := findTime(durable, &x, 150); !ok || pos != 100 {
		t.Fatalf("findTime(150) = %d %v, want the second batch, at 100", pos, ok)
	}
	for _, ts := range []int64{350, 450} {
		if _, ok := findTime(durable, &x, ts); ok {
			t.Fatalf("findTime(%d) found a timestamp only an undurable batch has", ts)
		}
	}
}
