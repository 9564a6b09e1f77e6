package eventlog

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/chronik-stream/chronik/segment"
)

// IsMetadataPath reports whether path is the metadata log's directory, one
// of its .log files, or a snapshot: what DumpLog reads.
func IsMetadataPath(path string) bool {
	path = filepath.Clean(path)
	if strings.HasSuffix(path, snapSuffix) {
		return true
	}
	dir := path
	if strings.HasSuffix(path, ".log") {
		dir = filepath.Dir(path)
	}
	return filepath.Base(dir) == segment.PartitionDir(TopicName, PartitionID)
}

// DumpOptions say what DumpLog prints.
type DumpOptions struct {
	JSON     bool
	From, To int64  // offsets; To < 0: no bound
	Types    []Type // only these types; empty: all
	Progress func(done, total int64)
}

func (o *DumpOptions) wants(t Type, offset int64) bool {
	if offset < o.From || (o.To >= 0 && offset > o.To) {
		return false
	}
	if len(o.Types) == 0 {
		return true
	}
	for _, x := range o.Types {
		if x == t {
			return true
		}
	}
	return false
}

// DumpLog prints the events of the metadata log directory (or one of its
// .log files, or a .checkpoint snapshot), one line per event: offset,
// leader epoch, timestamp, type, key and fields. Damage is printed where it
// is found and returned.
func DumpLog(w io.Writer, path string, opts DumpOptions) (segment.DumpResult, error) {
	var res segment.DumpResult
	if strings.HasSuffix(path, snapSuffix) {
		return res, dumpSnapshot(w, path, opts)
	}
	err := segment.WalkBatches(path, segment.Walk{
		From: opts.From, To: opts.To, Progress: opts.Progress,
		File: func(string, int64) { res.Files++ },
		Damage: func(d segment.Damage) {
			res.Damage = append(res.Damage, d)
			printDamage(w, d, opts.JSON)
		},
		Batch: func(b *segment.FoundBatch) error {
			res.Batches++
			events, offsets, err := decodeBatch(b.Bytes)
			if err != nil {
				d := segment.Damage{File: b.File, Position: int64(b.Position), Offset: b.Header.BaseOffset, Why: err.Error()}
				res.Damage = append(res.Damage, d)
				printDamage(w, d, opts.JSON)
				return nil
			}
			for i, e := range events {
				if !opts.wants(e.Type(), offsets[i]) {
					continue
				}
				res.Records++
				if err := printEvent(w, opts.JSON, offsets[i], b.Header.PartitionLeaderEpoch, b.Header.MaxTimestamp, e); err != nil {
					return err
				}
			}
			return nil
		},
	})
	return res, err
}

// DumpBatch prints the events of one metadata record batch as DumpLog
// prints them, but without offsets: the batch a Raft entry of the
// fallback path carries gets its offsets when it is applied.
func DumpBatch(w io.Writer, batch []byte, asJSON bool) error {
	events, _, err := decodeBatch(batch)
	if err != nil {
		return err
	}
	h, err := segment.ParseHeader(batch)
	if err != nil {
		return err
	}
	for _, e := range events {
		if err := printEvent(w, asJSON, -1, h.PartitionLeaderEpoch, h.MaxTimestamp, e); err != nil {
			return err
		}
	}
	return nil
}

func dumpSnapshot(w io.Writer, path string, opts DumpOptions) error {
	b, err := segment.ReadFile(segment.OSFS{}, path, MaxSnapshotBytes)
	if err != nil {
		return err
	}
	s, epoch, err := DecodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	events := stateEvents(s)
	if opts.JSON {
		line, _ := json.Marshal(map[string]any{"snapshot": path, "offset": s.Offset, "epoch": epoch, "events": len(events), "next_producer_id": s.NextProducerID})
		fmt.Fprintf(w, "%s\n", line)
	} else {
		fmt.Fprintf(w, "snapshot %s offset=%d epoch=%d events=%d next_producer_id=%d\n", path, s.Offset, epoch, len(events), s.NextProducerID)
	}
	for _, e := range events {
		if len(opts.Types) > 0 && !opts.wants(e.Type(), opts.From) {
			continue
		}
		if err := printEvent(w, opts.JSON, -1, epoch, -1, e); err != nil {
			return err
		}
	}
	return nil
}

func printDamage(w io.Writer, d segment.Damage, asJSON bool) {
	if asJSON {
		line, _ := json.Marshal(map[string]any{"type": "damage", "file": d.File, "position": d.Position, "offset": d.Offset, "reason": d.Why})
		fmt.Fprintf(w, "%s\n", line)
		return
	}
	fmt.Fprintf(w, "damage file=%s position=%d offset=%d reason=%q\n", d.File, d.Position, d.Offset, d.Why)
}

// printEvent prints one event; offset and ts are left out when negative
// (events of a snapshot have neither).
func printEvent(w io.Writer, asJSON bool, offset int64, epoch int32, ts int64, e Event) error {
	if asJSON {
		obj := map[string]any{"type": e.Type().String(), "key": e.Key(), "epoch": epoch, "event": e}
		if offset >= 0 {
			obj["offset"] = offset
		}
		if ts >= 0 {
			obj["timestamp"] = ts
		}
		line, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", line)
		return err
	}
	var b strings.Builder
	if offset >= 0 {
		fmt.Fprintf(&b, "offset=%d ", offset)
	}
	fmt.Fprintf(&b, "epoch=%d ", epoch)
	if ts >= 0 {
		fmt.Fprintf(&b, "time=%s ", segment.FormatTime(ts))
	}
	fmt.Fprintf(&b, "%s", e.Type())
	if k := e.Key(); k != "" {
		fmt.Fprintf(&b, " key=%s", k)
	}
	b.WriteString(fields(e))
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// fields prints an event's fields as " name=value", named by their JSON
// tags.
func fields(e Event) string {
	var b strings.Builder
	v := reflect.ValueOf(e).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		if strings.Contains(t.Field(i).Tag.Get("json"), "omitempty") && f.IsZero() {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", name, formatValue(f))
	}
	return b.String()
}

func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case UUID:
		return x.String()
	case string:
		if x == "" || strings.ContainsAny(x, " \"=") {
			return fmt.Sprintf("%q", x)
		}
		return x
	case []Endpoint:
		parts := make([]string, len(x))
		for i, ep := range x {
			parts[i] = fmt.Sprintf("%s://%s:%d", ep.Listener, ep.Host, ep.Port)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case []ConfigEntry:
		parts := make([]string, len(x))
		for i, c := range x {
			parts[i] = c.Key + "=" + c.Value
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []int32:
		return formatInts(x)
	}
	return fmt.Sprint(v.Interface())
}
