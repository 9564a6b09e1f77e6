package kafkatest

import (
	"encoding/binary"
	"io"
)

// ReadFrame reads one size-prefixed Kafka frame from r (a response, or a
// request on a fake broker's side) and returns its body.
func ReadFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}
