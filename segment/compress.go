package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrDecompress: a batch's records section does not decompress.
var ErrDecompress = errors.New("segment: cannot decompress records")

// xerialMagic starts snappy data framed by the Java client's xerial
// snappy-java (SnappyOutputStream); other clients send raw snappy blocks.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// Decompress returns the records section of a batch compressed with codec,
// refusing to produce more than limit bytes.
func Decompress(codec int, src []byte, limit int) ([]byte, error) {
	var out []byte
	var err error
	switch codec {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readLimited(r, limit)
		}
	case CodecSnappy:
		out, err = decodeSnappy(src, limit)
	case CodecLZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(src)), limit)
	case CodecZstd:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1)); err == nil {
			out, err = readLimited(d, limit)
			d.Close()
		}
	default:
		err = fmt.Errorf("unknown codec %d", codec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrDecompress, CodecName(codec), err)
	}
	return out, nil
}

func readLimited(r io.Reader, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out, nil
}

func decodeSnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return decodeSnappyBlock(nil, src, limit)
	}
	// xerial framing: magic, version and compatible version (int32 each),
	// then blocks of [length int32][snappy block].
	if len(src) < 16 {
		return nil, errors.New("xerial snappy header is truncated")
	}
	var out []byte
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("xerial snappy block length is truncated")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("xerial snappy block of %d bytes, %d left", n, len(rest))
		}
		var err error
		if out, err = decodeSnappyBlock(out, rest[:n], limit-len(out)); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	out, err := s2.Decode(make([]byte, n), block)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}
