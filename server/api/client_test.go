package api

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestClientResendsPutOnClosedConnection: a server that closes a kept-alive
// connection as the next request arrives (an idle-timeout race) makes a
// status report fail with EOF unless the client resends it, which it may
// since PUT replaces. A POST is not resent.
func TestClientResendsPutOnClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var served atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				rd := bufio.NewReader(conn)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(rd)
					if err != nil {
						return
					}
					if n == 1 {
						return // the second request on a connection: drop it unanswered
					}
					served.Add(1)
					resp := &http.Response{StatusCode: http.StatusNoContent, ProtoMajor: 1, ProtoMinor: 1, Request: req}
					if err := resp.Write(conn); err != nil {
						return
					}
				}
			}()
		}
	}()
	c, err := NewClient(ClientConfig{Address: "http://" + ln.Addr().String(), Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := c.ReportStatus(ctx, &StatusReport{Seq: uint64(i + 1)}); err != nil {
			t.Fatalf("report %d on a connection the server dropped: %v", i+1, err)
		}
	}
	if got := served.Load(); got != 3 {
		t.Errorf("server answered %d reports, want 3", got)
	}
	if err := c.Do(ctx, http.MethodPost, "/x", nil, struct{}{}, nil); err == nil {
		t.Error("a POST on a dropped connection succeeded: it must not be resent")
	}
}
