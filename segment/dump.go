package segment

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DumpOptions say what Dump prints.
type DumpOptions struct {
	// Records decodes each batch's records (decompressing them).
	Records bool
	// JSON prints one JSON object a line instead of text.
	JSON bool
	// From and To bound the offsets shown; To < 0 means no upper bound.
	From, To int64
	// MaxBatchBytes limits what one batch may decompress to.
	MaxBatchBytes int
	// Progress, if set, is called as bytes are read, with the total.
	Progress func(done, total int64)
	// Describe, if set, says what a record of a data batch means (the
	// internal partitions' records are Kafka's binary keys and values): its
	// text is printed in place of the key and value, and in JSON beside
	// them as "decoded".
	Describe func(key, value []byte) string
}

// DefaultMaxBatchBytes is the decompression limit of Dump.
const DefaultMaxBatchBytes = 64 << 20

// Damage is one place where a log file is not what it should be.
type Damage struct {
	File     string `json:"file"`
	Position int64  `json:"position"`
	Offset   int64  `json:"offset"`
	Why      string `json:"reason"`
}

// DumpResult counts what Dump saw.
type DumpResult struct {
	Files, Batches, Records int
	Damage                  []Damage
}

// Dump prints the batches of a partition directory or of one .log file,
// one line per batch, without a running server. Damage is printed where it
// is found and collected in the result; the dump goes on past a batch with
// a bad CRC, and stops reading a file where its structure is lost.
func Dump(w io.Writer, path string, opts DumpOptions) (DumpResult, error) {
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	d := &dumper{w: w, opts: opts}
	err := WalkBatches(path, Walk{
		From: opts.From, To: opts.To,
		File: func(path string, size int64) {
			d.res.Files++
			if !opts.JSON {
				fmt.Fprintf(w, "file %s size %d\n", path, size)
			}
		},
		Batch:    d.batch,
		Damage:   d.damage,
		Progress: opts.Progress,
	})
	return d.res, err
}

type dumper struct {
	w    io.Writer
	opts DumpOptions
	res  DumpResult
}

func (d *dumper) damage(dm Damage) {
	d.res.Damage = append(d.res.Damage, dm)
	if d.opts.JSON {
		d.json(struct {
			Type string `json:"type"`
			Damage
		}{"damage", dm})
		return
	}
	fmt.Fprintf(d.w, "damage file=%s position=%d offset=%d reason=%q\n", dm.File, dm.Position, dm.Offset, dm.Why)
}

func (d *dumper) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = d.w.Write(b)
	return err
}

type jsonBatch struct {
	Type          string       `json:"type"`
	File          string       `json:"file"`
	Position      int          `json:"position"`
	BaseOffset    int64        `json:"base_offset"`
	LastOffset    int64        `json:"last_offset"`
	LeaderEpoch   int32        `json:"leader_epoch"`
	BaseTimestamp int64        `json:"base_timestamp"`
	MaxTimestamp  int64        `json:"max_timestamp"`
	LogAppendTime bool         `json:"log_append_time,omitempty"`
	Count         int32        `json:"count"`
	Codec         string       `json:"codec"`
	Size          int          `json:"size"`
	CRCOK         bool         `json:"crc_ok"`
	ProducerID    int64        `json:"producer_id"`
	ProducerEpoch int16        `json:"producer_epoch"`
	BaseSequence  int32        `json:"base_sequence"`
	Transactional bool         `json:"transactional,omitempty"`
	Control       bool         `json:"control,omitempty"`
	ControlType   string       `json:"control_type,omitempty"` // a control batch's: COMMIT, ABORT, ...
	Records       []jsonRecord `json:"records,omitempty"`
	RecordsError  string       `json:"records_error,omitempty"`
}

type jsonRecord struct {
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	KeyB64    []byte       `json:"key_base64,omitempty"`
	Value     *string      `json:"value"`
	ValueB64  []byte       `json:"value_base64,omitempty"`
	Headers   []jsonHeader `json:"headers,omitempty"`
	Decoded   string       `json:"decoded,omitempty"`
}

type jsonHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// text returns b as a JSON string if it is UTF-8, else nil and b for base64.
func text(b []byte) (*string, []byte) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b
}

func (d *dumper) batch(b *FoundBatch) error {
	path, pos, h, batch, crcOK := b.File, b.Position, &b.Header, b.Bytes, b.CRCOK
	d.res.Batches++
	var recs []Record
	var recErr error
	if d.opts.Records {
		recs, recErr = DecodeRecords(batch, d.opts.MaxBatchBytes)
		if recErr != nil {
			d.damage(Damage{File: path, Position: int64(pos), Offset: h.BaseOffset, Why: "records: " + recErr.Error()})
		}
	}
	shown := recs[:0:0]
	for _, r := range recs {
		if r.Offset >= d.opts.From && (d.opts.To < 0 || r.Offset <= d.opts.To) {
			shown = append(shown, r)
		}
	}
	d.res.Records += len(shown)
	if d.opts.JSON {
		jb := jsonBatch{Type: "batch", File: path, Position: pos, BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(),
			LeaderEpoch: h.PartitionLeaderEpoch, BaseTimestamp: h.BaseTimestamp, MaxTimestamp: h.MaxTimestamp,
			LogAppendTime: h.LogAppendTime(), Count: h.RecordCount, Codec: CodecName(h.Codec()), Size: len(batch), CRCOK: crcOK,
			ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
			Transactional: h.Transactional(), Control: h.Control(), ControlType: controlName(h, batch)}
		if recErr != nil {
			jb.RecordsError = recErr.Error()
		}
		for _, r := range shown {
			jr := jsonRecord{Offset: r.Offset, Timestamp: r.Timestamp}
			if d.opts.Describe != nil && !h.Control() {
				jr.Decoded = d.opts.Describe(r.Key, r.Value)
			}
			jr.Key, jr.KeyB64 = text(r.Key)
			jr.Value, jr.ValueB64 = text(r.Value)
			for _, hd := range r.Headers {
				v, _ := text(hd.Value)
				jr.Headers = append(jr.Headers, jsonHeader{Key: hd.Key, Value: v})
			}
			jb.Records = append(jb.Records, jr)
		}
		return d.json(jb)
	}
	crc := "ok"
	if !crcOK {
		crc = "bad"
	}
	var flags string
	if h.Transactional() {
		flags += " transactional"
	}
	if h.Control() {
		flags += " control=" + controlName(h, batch)
	}
	timeKind := "create_time"
	if h.LogAppendTime() {
		timeKind = "log_append_time"
	}
	_, err := fmt.Fprintf(d.w, "batch offset=%d..%d position=%d epoch=%d count=%d codec=%s size=%d crc=%s %s=%s max_time=%s producer=%d/%d sequence=%d%s\n",
		h.BaseOffset, h.LastOffset(), pos, h.PartitionLeaderEpoch, h.RecordCount, CodecName(h.Codec()), len(batch), crc,
		timeKind, FormatTime(h.BaseTimestamp), FormatTime(h.MaxTimestamp), h.ProducerID, h.ProducerEpoch, h.BaseSequence, flags)
	if err != nil {
		return err
	}
	for _, r := range shown {
		var hs strings.Builder
		for _, hd := range r.Headers {
			fmt.Fprintf(&hs, " header:%s=%s", strconv.Quote(hd.Key), quote(hd.Value))
		}
		kv := fmt.Sprintf("key=%s value=%s", quote(r.Key), quote(r.Value))
		if d.opts.Describe != nil && !h.Control() {
			kv = d.opts.Describe(r.Key, r.Value)
		}
		if _, err := fmt.Fprintf(d.w, "  record offset=%d time=%s %s%s\n", r.Offset, FormatTime(r.Timestamp), kv, hs.String()); err != nil {
			return err
		}
	}
	return nil
}

// controlName names a control batch's type as Kafka does (COMMIT, ABORT,
// ...): what a transaction marker says.
func controlName(h *BatchHeader, batch []byte) string {
	if !h.Control() {
		return ""
	}
	typ, ok := ControlType(batch)
	if !ok {
		return "unreadable"
	}
	return kmsg.ControlRecordKeyType(typ).String()
}

func quote(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

// FormatTime prints a Kafka millisecond timestamp in UTC, or the number if
// it is not a real time (negative: none).
func FormatTime(ms int64) string {
	if ms < 0 {
		return strconv.FormatInt(ms, 10)
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
