package eventlog

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDeletesFindRoomOnAFullDisk: on a full disk, creating topics fails
// first, while room stays for what frees space: deleting the topics, and
// changing their configs (retention). A deletion queued behind creations
// that find no room is checked again without them and written.
func TestDeletesFindRoomOnAFullDisk(t *testing.T) {
	e := newLogEnv(t, Options{SnapshotBytes: -1})
	e.append(reg(1, inc1))
	deleted := func(name string) *TopicDeleted {
		var id UUID
		e.log.View(func(s *State) { id = s.Topics[name].ID })
		return &TopicDeleted{Name: name, TopicID: id}
	}
	e.fs.SetCapacity(e.fs.Allocated() + 256<<10)
	made := 0
	for ; made < 10_000; made++ {
		_, err := e.log.Append(createTopic(fmt.Sprintf("t%d", made), 4)...)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("create %d on a full disk: %v, want ENOSPC", made, err)
			}
			break
		}
	}
	if made < 10 || made == 10_000 {
		t.Fatalf("%d topics made before the disk was full", made)
	}
	// Partitions added one at a time are growth too: smaller, they fill
	// what the creations left, up to the room kept.
	for p := int32(4); ; p++ {
		_, err := e.log.Append(&PartitionChanged{Topic: "t0", Partition: p, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil || p == 1000 {
			t.Fatalf("partition %d added on a full disk: %v", p, err)
		}
	}
	// What keeps the cluster running and frees space goes through.
	e.append(&ConfigChanged{ResourceType: ResourceTopic, Resource: "t0", Name: "retention.ms", Value: "1000"})
	e.append(&PartitionChanged{Topic: "t0", Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1})
	for i := range min(made, 300) {
		e.append(deleted(fmt.Sprintf("t%d", i)))
	}
	// A deletion queued behind a creation that finds no room: the
	// creation fails, and the deletion is checked again without it and
	// written. The queue forms while a batch before them waits for its
	// sync.
	last := deleted(fmt.Sprintf("t%d", made-1))
	release := e.fs.HoldSyncs()
	queued := func(n int) {
		t.Helper()
		for i := 0; ; i++ {
			e.log.wmu.Lock()
			q := len(e.log.queue)
			e.log.wmu.Unlock()
			if q == n {
				return
			}
			if i == 5000 {
				t.Fatalf("%d groups queued, want %d", q, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	var errs [3]error
	wg.Go(func() {
		_, errs[0] = e.log.Append(&ConfigChanged{ResourceType: ResourceTopic, Resource: fmt.Sprintf("t%d", made-2), Name: "retention.ms", Value: "1000"})
	})
	for i := 0; e.fs.HeldSyncs() == 0; i++ {
		if i == 5000 {
			t.Fatalf("the config change waits for no sync: %v", errs[0])
		}
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { _, errs[1] = e.log.Append(createTopic("late", 50)...) })
	queued(1)
	wg.Go(func() { _, errs[2] = e.log.Append(last) })
	queued(2)
	release()
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], syscall.ENOSPC) || errs[2] != nil {
		t.Fatalf("a config change, a creation and a deletion on a full disk: %v", errs)
	}
	e.fs.SetCapacity(e.fs.Allocated() + 1<<20) // the in-memory files count bytes, not blocks
	e.reopen()
	e.log.View(func(s *State) {
		if len(s.Topics) != made-min(made, 300)-1 || s.Topics["t0"] != nil || s.Topics[fmt.Sprintf("t%d", made-1)] != nil || s.Topics["late0"] != nil {
			t.Fatalf("after reopen: %d topics, want %d", len(s.Topics), made-min(made, 300)-1)
		}
	})
}
