package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// newHTTPClient returns the HTTP client under the agent's API clients,
// trusting the PEM certificates in caFile when set, and moving between the
// servers listed (see failover). The agent owns it so that it can close its
// idle connections when it stops.
func newHTTPClient(caFile string, servers []string, log *slog.Logger) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("agent config: CACert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent config: CACert: no PEM certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	f, err := newFailover(servers, tr, nil, func(from, to string) {
		log.Warn("moved to another server", "from", from, "to", to)
	}, func(targets []string) {
		log.Warn("servers resolved to new addresses", "servers", targets)
	})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: f}, nil
}

// client returns an API client that authenticates with token.
func (a *agent) client(token string) (*api.Client, error) {
	// The first server names the API's base; the failover transport sends
	// each request to the server of the moment.
	c, err := api.NewClient(api.ClientConfig{Address: splitServers(a.cfg.Server)[0], Token: token, HTTPClient: a.http})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return c, nil
}

func (a *agent) newBackoff() *backoff {
	return &backoff{base: a.cfg.BackoffBase, max: a.cfg.BackoffMax, jitter: a.jitter}
}

// register joins the host with the join token, retrying with backoff until
// the server accepts it, and saves the identity before returning it. Every
// attempt, across restarts too, carries the request id saved in the data
// dir, so a retry after an answer that got lost (a timeout after the server
// committed) gets the host that attempt created instead of a conflict.
func (a *agent) register(ctx context.Context) (*identity, error) {
	c, err := a.client(a.cfg.JoinToken)
	if err != nil {
		return nil, err
	}
	requestID, err := a.dir.registerRequestID()
	if err != nil {
		return nil, err
	}
	req := &api.RegisterRequest{
		Name:             a.cfg.Name,
		Labels:           a.cfg.Labels,
		AdvertiseAddress: a.cfg.AdvertiseAddress,
		OS:               runtime.GOOS,
		Arch:             runtime.GOARCH,
		AgentVersion:     api.Version,
		RequestID:        requestID,
	}
	bo := a.newBackoff()
	fails := &failures{call: "register"}
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
			if err := a.dir.removeRegisterRequest(); err != nil {
				a.log.Warn("cannot remove the register request id; it is ignored from now on", "err", err)
			}
			a.log.Info("registered with the server", "host_id", id.HostID, "name", a.cfg.Name)
			return id, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch s := api.StatusOf(err); {
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			a.logFailure(fails, s, slog.LevelError, "the server rejected the join token (expired, used up or revoked?); retrying", "err", err)
		case s >= 400 && s < 500:
			a.logFailure(fails, s, slog.LevelError, "the server refused the registration; retrying", "err", err)
		default:
			a.logFailure(fails, s, slog.LevelWarn, "cannot register with the server; retrying", "err", err)
		}
		if !sleep(ctx, bo.next()) {
			return nil, ctx.Err()
		}
	}
}

// poll follows the host's desired state with blocking queries and hands
// each new version, whole, to out. The first query asks for index 0, which
// the server answers at once with the whole state, so a fresh start always
// gets the server's view; later ones ask for deltas on the last version.
func (a *agent) poll(ctx context.Context, c *api.Client, out chan<- *api.DesiredState) {
	bo := a.newBackoff()
	fails := &failures{call: "fetch desired state"}
	var last *api.DesiredState
	for ctx.Err() == nil {
		start := time.Now()
		var index uint64
		if last != nil {
			index = last.Index
		}
		rctx, cancel := context.WithTimeout(ctx, a.cfg.Wait+pollSlack)
		a.metrics.setPoll(pollWaiting)
		ds, err := c.DesiredDelta(rctx, index, a.cfg.Wait)
		cancel()
		if err == nil && ds.IsDelta() {
			if ds, err = ds.Patched(last); err != nil {
				a.log.Error("cannot apply the server's delta; fetching the whole state", "err", err)
				last = nil
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.failed(fails, err)
			a.metrics.setPoll(pollBackoff)
			sleepOrWake(ctx, bo.next(), wakeIfUnreachable(err, a.pollUp))
			continue
		}
		a.metrics.setPoll(pollConnected)
		bo.reset()
		if fails.n > 0 || (last != nil && ds.Index < index) {
			// Back after an outage, or the server's state was reset: it may
			// have restarted and lost the reports it kept in memory.
			a.resendWhole.Store(true)
			signal(a.serverBack)
		}
		a.succeeded(fails)
		signal(a.reportUp)
		// A new index, or a lower one after the server's state was reset,
		// is a new version.
		if last == nil || ds.Index != index {
			last = ds
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

// quietReports is how many heartbeat intervals may pass without a report
// when nothing changed: an idle host then costs the server one report every
// five minutes (by default), and a restarted server gets the whole report
// back by then.
const quietReports = 5

// sendReports sends the newest waiting status report, retrying failures
// with backoff until a newer report replaces it. After the first report the
// server accepted, reports carry only the peers that changed since the last
// accepted one, and one that says nothing new is skipped for up to
// quietReports heartbeats; when the server no longer holds the accepted one
// (it restarted), the whole report goes again at once.
func (a *agent) sendReports(ctx context.Context, c *api.Client) {
	bo := a.newBackoff()
	fails := &failures{call: "send status"}
	var accepted *api.StatusReport // last report the server took, whole
	var acceptedAt time.Time
	var seq uint64
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
		if a.resendWhole.Swap(false) {
			accepted = nil // the server may hold no report: a whole one, never skipped
		}
		send := r
		if accepted != nil {
			send = peerDelta(accepted, r)
			if saysNothingNew(accepted, send) && time.Since(acceptedAt) < quietReports*a.cfg.HeartbeatInterval {
				continue // the blocking query tells the server this host is alive
			}
		}
		seq++
		r.Seq, send.Seq = seq, seq
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.ReportStatus(rctx, send)
		cancel()
		if err == nil {
			accepted, acceptedAt = r, time.Now()
			bo.reset()
			a.succeeded(fails)
			signal(a.pollUp)
			if announces(r) {
				a.crashPoint(stepAnnounced)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.reports.putBack(r)
		if api.StatusOf(err) == http.StatusConflict && send != r {
			a.log.Info("the server holds no earlier report of this host; sending a whole one")
			accepted = nil
			continue
		}
		a.failed(fails, err)
		sleepOrWake(ctx, bo.next(), wakeIfUnreachable(err, a.reportUp))
	}
}

// failureLogEvery is how often a call that keeps failing the same way is
// logged again above debug level.
const failureLogEvery = 5 * time.Minute

// failures tracks a run of failed calls of one kind, so that an outage is
// logged when it starts or changes, every failureLogEvery, and when it
// ends, rather than at every retry.
type failures struct {
	call   string // what fails, e.g. "fetch desired state"
	n      int
	status int // HTTP status of the last failure, 0 without an answer
	since  time.Time
	logged time.Time
}

// failed logs a failed call to the server. A rejected host credential needs
// the operator: the agent does not register again on its own, which would
// create a second host with new keys.
func (a *agent) failed(f *failures, err error) {
	status := api.StatusOf(err)
	msg, level := "call to the server failed; keeping the tunnels and retrying", slog.LevelWarn
	attrs := []any{"err", err}
	switch {
	case status == http.StatusUnauthorized:
		msg, level = "the server rejected this host's credential; keeping the tunnels and retrying", slog.LevelError
		attrs = append(attrs, "host_id", a.ident.HostID,
			"fix", "if the host was deleted on the server, stop the agent, remove "+a.dir.file(identityFile)+" and start it with a join token")
	case status >= 400:
		msg, level = "the server refused a call; keeping the tunnels and retrying", slog.LevelError
	}
	a.logFailure(f, status, level, msg, attrs...)
}

// logFailure counts a failure in f and logs it at level when it starts or
// changes a run of failures or failureLogEvery passed, else at debug.
func (a *agent) logFailure(f *failures, status int, level slog.Level, msg string, attrs ...any) {
	now := time.Now()
	if f.n == 0 {
		f.since = now
	}
	f.n++
	if f.n == 1 || status != f.status || now.Sub(f.logged) >= failureLogEvery {
		f.logged = now
	} else {
		level = slog.LevelDebug
	}
	f.status = status
	attrs = append(attrs, "call", f.call, "status", status, "failures", f.n, "since", f.since.Format(time.RFC3339))
	a.log.Log(context.Background(), level, msg, attrs...)
}

// succeeded ends a run of failures, logging the recovery.
func (a *agent) succeeded(f *failures) {
	a.metrics.contact(time.Now())
	if f.n > 0 {
		a.log.Info("the server answers again", "call", f.call, "failures", f.n,
			"after", time.Since(f.since).Round(time.Millisecond))
	}
	f.n, f.status = 0, 0
}
