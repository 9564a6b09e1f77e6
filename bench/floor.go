package bench

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// StartSyncFloor runs the least a broker that makes each change durable
// before answering can do on this machine, the baseline of sequential
// creates: a Kafka server that decodes each CreateTopics request with
// kmsg, writes 512 B for it into a zeroed file and fdatasyncs it, on the
// connection's goroutine, then answers. Besides ApiVersions it serves only
// what the create workloads send (Metadata naming itself, CreateTopics);
// it keeps no state but the names it created. The file, in dir, is removed
// when the target closes.
func StartSyncFloor(dir string) (*Target, error) {
	f, err := os.CreateTemp(dir, "sync-floor-*")
	if err != nil {
		return nil, err
	}
	drop := func() {
		f.Close()
		os.Remove(f.Name())
	}
	if err := prepareFile(f, floorFileBytes, true); err != nil {
		drop()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		drop()
		return nil, err
	}
	s := &syncFloor{f: f, addr: ln.Addr().(*net.TCPAddr), topics: map[string]bool{}, conns: map[net.Conn]bool{}}
	go s.serve(ln)
	return &Target{Name: "sync-floor", Addr: ln.Addr().String(), close: func() {
		ln.Close()
		s.closeConns()
		drop()
	}}, nil
}

// floorFileBytes is the zeroed file's size; writes wrap around at its end
// (blocks written before need no allocation either).
const floorFileBytes = 64 << 20

// floorMaxRequest bounds a request's size.
const floorMaxRequest = 1 << 20

type syncFloor struct {
	f    *os.File
	addr *net.TCPAddr

	mu     sync.Mutex
	pos    int64
	topics map[string]bool
	conns  map[net.Conn]bool
}

func (s *syncFloor) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(c)
		}()
	}
}

func (s *syncFloor) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *syncFloor) serveConn(c net.Conn) {
	r := bufio.NewReader(c)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > floorMaxRequest {
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		out, err := s.handle(frame)
		if err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// handle answers one request frame (after its size): the response frame,
// or an error that closes the connection.
func (s *syncFloor) handle(frame []byte) ([]byte, error) {
	rd := kbin.Reader{Src: frame}
	key, version, correlation := rd.Int16(), rd.Int16(), rd.Int32()
	rd.NullableString() // client id
	req := kmsg.RequestForKey(key)
	if req == nil || !rd.Ok() {
		return nil, errors.New("sync floor: unknown request")
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() || req.ReadFrom(rd.Src) != nil {
		return nil, errors.New("sync floor: bad request")
	}
	var resp kmsg.Response
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = s.apiVersions(req)
	case *kmsg.MetadataRequest:
		resp = s.metadata(req)
	case *kmsg.CreateTopicsRequest:
		var err error
		if resp, err = s.createTopics(req); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("sync floor: request key %d is not served", key)
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 4, 64), uint32(correlation))
	// ApiVersions answers with a header that is never flexible.
	if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

var floorKeys = []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrCreateTopicsRequest()}

func (s *syncFloor) apiVersions(req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, k := range floorKeys {
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MaxVersion = k.Key(), k.MaxVersion()
		resp.ApiKeys = append(resp.ApiKeys, v)
	}
	return resp
}

func (s *syncFloor) metadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 1, s.addr.IP.String(), int32(s.addr.Port)
	resp.Brokers = append(resp.Brokers, b)
	resp.ControllerID = 1
	for _, t := range req.Topics {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic, rt.ErrorCode = t.Topic, kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// createTopics makes the request's new topics durable (one 512 B write
// and fdatasync for the request), then answers.
func (s *syncFloor) createTopics(req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	var rec [512]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	made := false
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, t.NumPartitions, t.ReplicationFactor
		if s.topics[t.Topic] {
			rt.ErrorCode = kerr.TopicAlreadyExists.Code
		} else {
			rand.Read(rt.TopicID[:])
			s.topics[t.Topic] = true
			made = true
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if made {
		copy(rec[:], fmt.Sprint(len(s.topics)))
		if _, err := s.f.WriteAt(rec[:], s.pos); err != nil {
			return nil, err
		}
		s.pos = (s.pos + int64(len(rec))) % floorFileBytes
		if err := unix.Fdatasync(int(s.f.Fd())); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
