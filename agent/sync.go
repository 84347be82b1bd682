package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/drago-wg/drago/server/api"
)

func (a *agent) newBackoff() *backoff {
	return &backoff{base: a.cfg.BackoffBase, max: a.cfg.BackoffMax, jitter: a.jitter}
}

// register joins the host with the join token, retrying with backoff until
// the server accepts it, and saves the identity before returning it.
func (a *agent) register(ctx context.Context) (*identity, error) {
	c, err := api.NewClient(api.ClientConfig{Address: a.cfg.Server, Token: a.cfg.JoinToken, CACert: a.cfg.CACert})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	req := &api.RegisterRequest{
		Name:             a.cfg.Name,
		Labels:           a.cfg.Labels,
		AdvertiseAddress: a.cfg.AdvertiseAddress,
		OS:               runtime.GOOS,
		Arch:             runtime.GOARCH,
		AgentVersion:     api.Version,
	}
	bo := a.newBackoff()
	for {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := c.Register(rctx, req)
		cancel()
		if err == nil && (resp.HostID == "" || resp.Credential == "") {
			err = errors.New("registration answer lacks host id or credential")
		}
		if err == nil {
			id := &identity{HostID: resp.HostID, Credential: resp.Credential, Server: a.cfg.Server}
			if err := a.dir.saveIdentity(id); err != nil {
				return nil, fmt.Errorf("saving the host identity: %w", err)
			}
			a.log.Info("registered with the server", "host_id", id.HostID, "name", a.cfg.Name)
			return id, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch s := api.StatusOf(err); {
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			a.log.Error("the server rejected the join token (expired, used up or revoked?); retrying", "status", s, "err", err)
		case s >= 400 && s < 500:
			a.log.Error("the server refused the registration; retrying", "status", s, "err", err)
		default:
			a.log.Warn("cannot register with the server; retrying", "err", err)
		}
		if !sleep(ctx, bo.next()) {
			return nil, ctx.Err()
		}
	}
}

// poll follows the host's desired state with blocking queries and hands
// each new version to out. The first query asks for index 0, which the
// server answers at once, so a fresh start always gets the server's view.
func (a *agent) poll(ctx context.Context, c *api.Client, out chan<- *api.DesiredState) {
	bo := a.newBackoff()
	var index uint64
	first := true
	for ctx.Err() == nil {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, a.cfg.Wait+pollSlack)
		ds, err := c.DesiredState(rctx, index, a.cfg.Wait)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.logServerError("cannot fetch the desired state; keeping the current tunnels", err)
			sleep(ctx, bo.next())
			continue
		}
		bo.reset()
		// A new index, or a lower one after the server's state was reset,
		// is a new version.
		if first || ds.Index != index {
			first = false
			index = ds.Index
			select {
			case out <- ds:
			case <-ctx.Done():
				return
			}
			continue
		}
		// The wait expired with no change. Guard against a server that
		// answers at once without a change, which would spin.
		if time.Since(start) < a.cfg.BackoffBase {
			sleep(ctx, a.cfg.BackoffBase)
		}
	}
}

// sendReports sends the newest waiting status report, retrying failures
// with backoff until a newer report replaces it.
func (a *agent) sendReports(ctx context.Context, c *api.Client) {
	bo := a.newBackoff()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reports.ready:
		}
		r := a.reports.take()
		if r == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.ReportStatus(rctx, r)
		cancel()
		if err == nil {
			bo.reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.logServerError("cannot send the status report", err)
		a.reports.putBack(r)
		sleep(ctx, bo.next())
	}
}

// logServerError logs a failed call to the server. A rejected host
// credential needs the operator: the agent does not register again on its
// own, which would create a second host with new keys.
func (a *agent) logServerError(msg string, err error) {
	switch s := api.StatusOf(err); {
	case s == http.StatusUnauthorized:
		a.log.Error("the server rejected this host's credential: the host was probably deleted on the server. "+
			"Tunnels stay as they are and the agent keeps retrying. To join again, stop the agent, remove "+
			a.dir.file(identityFile)+" and start it with a join token",
			"during", msg, "host_id", a.ident.HostID, "status", s)
	case s >= 400:
		a.log.Error(msg, "status", s, "err", err)
	default:
		a.log.Warn(msg, "err", err)
	}
}
