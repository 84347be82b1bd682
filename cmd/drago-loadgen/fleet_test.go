//go:build linux

package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/platform/platformtest"
)

func TestRequestKind(t *testing.T) {
	for _, tc := range []struct {
		head string
		want reqKind
	}{
		{"GET /api/v1/agent/config?index=7&wait=1m0s HTTP/1.1\r\n", reqConfig},
		{"PUT /api/v1/agent/status HTTP/1.1\r\n", reqStatus},
		{"POST /api/v1/agent/register HTTP/1.1\r\n", reqRegister},
		{"GET /api/v1/health HTTP/1.1\r\n", reqOther},
		{`{"interfaces":[]}`, reqOther},
	} {
		if got := requestKind([]byte(tc.head)); got != tc.want {
			t.Errorf("requestKind(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func TestAnswerStatus(t *testing.T) {
	for _, tc := range []struct {
		head string
		want int
	}{
		{"HTTP/1.1 200 OK\r\n", 200},
		{"HTTP/1.1 204 No Content\r\n", 204},
		{"HTTP/1.0 503 Service Unavailable\r\n", 503},
		{"HTTP/1.1 20", 0},
		{"\x1f\x8b\x08\x00 gzip body....", 0},
	} {
		if got := answerStatus([]byte(tc.head)); got != tc.want {
			t.Errorf("answerStatus(%q) = %d, want %d", tc.head, got, tc.want)
		}
	}
}

func TestLogValue(t *testing.T) {
	line := `time=2026-01-01T00:00:00Z level=INFO msg=serving subsystem=server url=http://127.0.0.1:4321 data_dir=/tmp/x`
	if got := logValue(line, "url"); got != "http://127.0.0.1:4321" {
		t.Errorf("url = %q", got)
	}
	if got := logValue(`level=INFO msg="pprof endpoints" pprof=http://127.0.0.1:99`, "pprof"); got != "http://127.0.0.1:99" {
		t.Errorf("pprof = %q", got)
	}
	if got := logValue(`level=INFO msg="pprof endpoints" pprof=http://127.0.0.1:99`, "url"); got != "" {
		t.Errorf("url of a line without one = %q", got)
	}
}

// TestCountingConn drives a countingConn as Go's HTTP client does: one
// request, its answer, the next request.
func TestCountingConn(t *testing.T) {
	f := &fleet{wait: 50 * time.Millisecond}
	a := &simAgent{f: f, registered: make(chan struct{})}
	a.b = &backend{Recorder: platformtest.NewRecorder(), a: a}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &countingConn{Conn: client, a: a}
	go io.Copy(io.Discard, server) // the server reads whatever the client sends

	exchange := func(req, answer string, delay time.Duration) {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(delay)
			server.Write([]byte(answer))
		}()
		buf := make([]byte, len(answer))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	reg := "POST /api/v1/agent/register HTTP/1.1\r\n\r\n"
	regAnswer := "HTTP/1.1 201 Created\r\n\r\n{}"
	exchange(reg, regAnswer, 0)
	poll := "GET /api/v1/agent/config?index=3&wait=50ms HTTP/1.1\r\n\r\n"
	pollAnswer := "HTTP/1.1 200 OK\r\n\r\n{\"index\":4}"
	exchange(poll, pollAnswer, 0)                   // a change: answered at once
	exchange(poll, pollAnswer, 80*time.Millisecond) // the wait expired

	select {
	case <-a.registered:
	default:
		t.Error("a 201 registration answer did not close registered")
	}
	got := a.counters()
	want := counters{}
	want.Answers[reqRegister], want.Answers[reqConfig], want.Answers[reqConfigTimeout] = 1, 1, 1
	want.BytesOut[reqRegister] = int64(len(reg))
	want.BytesOut[reqConfig] = int64(2 * len(poll))
	want.BytesIn[reqRegister] = int64(len(regAnswer))
	want.BytesIn[reqConfig] = int64(len(pollAnswer))
	want.BytesIn[reqConfigTimeout] = int64(len(pollAnswer))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if !want.woken() || (counters{Answers: [numReqKinds]int64{reqConfigTimeout: 3, reqStatus: 2}}).woken() {
		t.Error("woken: want true for a new version only, not for expired waits or reports")
	}
}

func TestWatch(t *testing.T) {
	f := &fleet{}
	agents := []*simAgent{{idx: 0, f: f}, {idx: 1, f: f}, {idx: 2, f: f}}
	start := time.Now()
	isRoute := func(_ *simAgent, ev event) bool { return ev.op == opAddRoute }
	w := newWatch(start,
		&goal{name: "applied", required: true, agents: map[int]bool{0: true, 1: true}, match: isRoute},
		&goal{name: "extra", agents: map[int]bool{2: true}, match: isRoute},
	)
	f.watch.Store(w)
	f.observe(agents[0], event{at: start.Add(5 * time.Millisecond), op: opConfigure})
	f.observe(agents[0], event{at: start.Add(7 * time.Millisecond), op: opAddRoute})
	f.observe(agents[0], event{at: start.Add(9 * time.Millisecond), op: opAddRoute}) // the first one counts
	f.observe(agents[2], event{at: start.Add(3 * time.Millisecond), op: opAddRoute}) // not required
	select {
	case <-w.done:
		t.Fatal("done before agent 1 applied")
	default:
	}
	f.observe(agents[1], event{at: start.Add(11 * time.Millisecond), op: opAddRoute})
	select {
	case <-w.done:
	case <-time.After(time.Second):
		t.Fatal("not done after every required agent applied")
	}
	lat, missing := w.latencies("applied")
	if diff := cmp.Diff(Dist{N: 2, P50: 7 * time.Millisecond, P90: 11 * time.Millisecond, P99: 11 * time.Millisecond, Max: 11 * time.Millisecond}, summarize(lat)); diff != "" || missing != 0 {
		t.Errorf("applied (-want +got):\n%s missing %d", diff, missing)
	}
	if at, ok := w.reachedAt("extra", 2); !ok || at.Sub(start) != 3*time.Millisecond {
		t.Errorf("extra reached at %v, %v", at.Sub(start), ok)
	}
	if w2 := newWatch(start); w2 == nil {
		t.Fatal("nil watch")
	} else {
		select {
		case <-w2.done:
		default:
			t.Error("a watch without required goals is not done at once")
		}
	}
}
