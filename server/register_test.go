package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server/api"
)

// TestRegisterRetryIsIdempotent covers a registration the server committed
// but whose answer the agent never got: the agent's retry, with the same
// request_id and join token, gets the same host and a new credential.
func TestRegisterRetryIsIdempotent(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "n", IPv4Range: "10.1.0.0/24"}))
	once := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Name: "once", MaxUses: 1, Networks: []string{"n"}}))
	many := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Name: "many", Networks: []string{"n"}}))
	const rid = "0123456789abcdef0123456789abcdef"
	req := &api.RegisterRequest{Name: "a", OS: "linux", Arch: "amd64", RequestID: rid}

	first := must[*api.RegisterResponse](t)(ts.client(once.Secret).Register(ctx, req))
	retry := must[*api.RegisterResponse](t)(ts.client(once.Secret).Register(ctx, req))
	if retry.HostID != first.HostID || retry.Credential == first.Credential {
		t.Fatalf("retry answered host %s credential changed %v; want host %s and a new credential",
			retry.HostID, retry.Credential != first.Credential, first.HostID)
	}
	if _, err := ts.client(first.Credential).DesiredState(ctx, 0, 0); api.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("first credential after the retry: %v, want 401", err)
	}
	if _, err := ts.client(retry.Credential).DesiredState(ctx, 0, 0); err != nil {
		t.Errorf("new credential: %v", err)
	}
	checkRegistered := func(t *testing.T, c *api.Client) {
		t.Helper()
		if j := must[*api.JoinToken](t)(c.JoinToken(ctx, once.ID)); j.Uses != 1 {
			t.Errorf("join token uses = %d, want 1", j.Uses)
		}
		if hosts := must[*api.List[api.Host]](t)(c.Hosts(ctx, api.ListOptions{})); hosts.Total != 1 {
			t.Errorf("hosts = %+v, want one", hosts.Items)
		}
		if ifs := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Host: first.HostID})); ifs.Total != 1 {
			t.Errorf("interfaces of the host = %+v, want one", ifs.Items)
		}
	}
	checkRegistered(t, c)

	// The request id is persisted with the credential: a retry after a
	// server restart is still recognised.
	root := ts.root
	ts.stop()
	ts = startServer(t, ts.dir)
	ts.root = root
	c = ts.rootClient()
	again := must[*api.RegisterResponse](t)(ts.client(once.Secret).Register(ctx, req))
	if again.HostID != first.HostID {
		t.Fatalf("retry after restart answered host %s, want %s", again.HostID, first.HostID)
	}
	if _, err := ts.client(retry.Credential).DesiredState(ctx, 0, 0); api.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("replaced credential: %v, want 401", err)
	}
	checkRegistered(t, c)

	refused := func(t *testing.T, secret string, r *api.RegisterRequest, status int, field string) {
		t.Helper()
		before := ts.srv.State().Index()
		_, err := ts.client(secret).Register(ctx, r)
		var re *api.ResponseError
		if api.StatusOf(err) != status || !errors.As(err, &re) || re.Field != field {
			t.Fatalf("got %v, want %d naming field %q", err, status, field)
		}
		if strings.Contains(re.Message, r.RequestID) && r.RequestID != "" {
			t.Errorf("error message repeats the request id: %q", re.Message)
		}
		if ts.srv.State().Index() != before {
			t.Fatal("refused registration changed the state")
		}
		if _, err := ts.client(again.Credential).DesiredState(ctx, 0, 0); err != nil {
			t.Fatalf("the host's credential after a refused registration: %v", err)
		}
	}
	t.Run("other request id", func(t *testing.T) {
		refused(t, many.Secret, &api.RegisterRequest{Name: "a", RequestID: "ffffffffffffffffffffffffffffffff"}, http.StatusConflict, "name")
	})
	t.Run("no request id", func(t *testing.T) {
		refused(t, many.Secret, &api.RegisterRequest{Name: "a"}, http.StatusConflict, "name")
	})
	t.Run("other join token", func(t *testing.T) {
		refused(t, many.Secret, req, http.StatusConflict, "name")
	})
	for name, bad := range map[string]string{
		"short":    "0123456789abcde",
		"long":     strings.Repeat("a", 129),
		"bad char": "0123456789abcdef+",
		"space":    "0123456789 abcdef",
	} {
		t.Run("request id "+name, func(t *testing.T) {
			refused(t, many.Secret, &api.RegisterRequest{Name: "b", RequestID: bad}, http.StatusBadRequest, "request_id")
		})
	}
	t.Run("bounds accepted", func(t *testing.T) {
		for i, id := range []string{strings.Repeat("a", 16), strings.Repeat("Z_-9", 32)} {
			name := []string{"min", "max"}[i]
			if _, err := ts.client(many.Secret).Register(ctx, &api.RegisterRequest{Name: name, RequestID: id}); err != nil {
				t.Errorf("request id of %d characters: %v", len(id), err)
			}
		}
	})

	// Once the agent reported with its credential, the name is the host's
	// for good: the same request id gets today's conflict.
	t.Run("after the host reported", func(t *testing.T) {
		req := &api.RegisterRequest{Name: "c", RequestID: "cccccccccccccccccccccccccccccccc"}
		must[*api.RegisterResponse](t)(ts.client(many.Secret).Register(ctx, req))
		reg := must[*api.RegisterResponse](t)(ts.client(many.Secret).Register(ctx, req))
		if err := ts.client(reg.Credential).ReportStatus(ctx, &api.StatusReport{Backend: "fake"}); err != nil {
			t.Fatal(err)
		}
		uses := must[*api.JoinToken](t)(c.JoinToken(ctx, many.ID)).Uses
		before := ts.srv.State().Index()
		_, err := ts.client(many.Secret).Register(ctx, req)
		var re *api.ResponseError
		if api.StatusOf(err) != http.StatusConflict || !errors.As(err, &re) || re.Field != "name" {
			t.Fatalf("got %v, want 409 naming field name", err)
		}
		if ts.srv.State().Index() != before || must[*api.JoinToken](t)(c.JoinToken(ctx, many.ID)).Uses != uses {
			t.Error("refused registration changed the state")
		}
		if _, err := ts.client(reg.Credential).DesiredState(ctx, 0, 0); err != nil {
			t.Errorf("the host's credential after the refused retry: %v", err)
		}
	})
}
