//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drago-wg/drago/server"
)

// child is a process this tool started for the run (the drago server, an
// etcd cluster), its stderr copied to a log file.
type child struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	exited  chan struct{}
	exitErr error

	mu     sync.Mutex
	tail   []string          // last lines of its log, for error messages
	values map[string]string // the first value of each wanted key seen in its log
}

// serverProc is the drago server under test, a separate process on loopback.
type serverProc struct {
	*child
	url      string // http://127.0.0.1:port
	pprofURL string // set when the server is this tool's pprof child
	dataDir  string
	root     string // root management token
}

// buildServer builds ./cmd/drago of the module that holds the working
// directory into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("building the server: not inside the drago module; run from the repository or pass -server-bin")
	}
	bin := filepath.Join(dir, "drago")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/drago-wg/drago/cmd/drago")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the server: %v\n%s", err, out)
	}
	return bin, nil
}

// startServer runs the server with its data dir under dir and waits until
// it serves. With bin set it runs "bin server"; else it runs this tool's
// "serve" command, the server package with pprof beside it. storeArgs
// select its store (none: bolt in its data dir).
func startServer(ctx context.Context, log *slog.Logger, bin, dir string, storeArgs []string) (*serverProc, error) {
	s := &serverProc{dataDir: filepath.Join(dir, "server")}
	var cmd *exec.Cmd
	want := []string{"url"}
	if bin != "" {
		cmd = exec.Command(bin, append([]string{"server", "-addr", "127.0.0.1:0", "-data-dir", s.dataDir, "-log-level", "info"}, storeArgs...)...)
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("starting the server: %w", err)
		}
		cmd = exec.Command(self, append([]string{"serve", "-addr", "127.0.0.1:0", "-data-dir", s.dataDir, "-pprof-addr", "127.0.0.1:0"}, storeArgs...)...)
		want = append(want, "pprof")
	}
	var err error
	if s.child, err = startChild(ctx, "server", cmd, filepath.Join(dir, "server.log"), want...); err != nil {
		return nil, err
	}
	s.url, s.pprofURL = s.values["url"], s.values["pprof"]
	root, err := os.ReadFile(filepath.Join(s.dataDir, server.RootTokenFile))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("reading the root token: %w", err)
	}
	s.root = strings.TrimSpace(string(root))
	log.Info("server started", "pid", s.pid, "url", s.url, "pprof", s.pprofURL, "data_dir", s.dataDir, "log", s.logPath)
	return s, nil
}

// startChild starts cmd, copies its stderr to logPath and waits until its
// log has given a value to each of the keys want (logfmt, as slog's text
// handler writes). what names it in errors.
func startChild(ctx context.Context, what string, cmd *exec.Cmd, logPath string, want ...string) (*child, error) {
	c := &child{cmd: cmd, logPath: logPath, exited: make(chan struct{}), values: map[string]string{}}
	// Should this tool die without stopping it, the child goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("starting the %s: %w", what, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the %s: %w", what, err)
	}
	c.pid = cmd.Process.Pid
	ready := make(chan struct{})
	go c.readLog(stderr, logFile, want, ready)
	go func() {
		c.exitErr = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	select {
	case <-ready:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", what, c.exitErr, c.logTail())
	case <-time.After(time.Minute):
		c.stop()
		return nil, fmt.Errorf("%s not ready within a minute; its log:\n%s", what, c.logTail())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// readLog copies the child's log to w, keeps its tail and closes ready
// once it has seen a value for each key of want.
func (c *child) readLog(r io.Reader, w io.Writer, want []string, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		c.mu.Lock()
		c.tail = append(c.tail, line)
		if len(c.tail) > 20 {
			c.tail = c.tail[1:]
		}
		done := true
		for _, k := range want {
			if c.values[k] == "" {
				c.values[k] = logValue(line, k)
			}
			done = done && c.values[k] != ""
		}
		c.mu.Unlock()
		if done && !signalled {
			signalled = true
			close(ready)
		}
	}
}

// logValue returns the value of key in a logfmt line of slog's text
// handler, or "".
func logValue(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func (c *child) logTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// alive reports whether the process is still running.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// sample reads the process's CPU time, memory and I/O counters; a nil
// child (a cluster this tool did not start) reads as zero.
func (c *child) sample() procSample {
	if c == nil {
		return procSample{At: time.Now()}
	}
	p, err := readProc(c.pid)
	if err != nil {
		return procSample{At: time.Now()}
	}
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 10 seconds.
func (c *child) stop() {
	if !c.alive() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// startCPUProfile starts a CPU profile in the pprof child; no-op otherwise.
func (s *serverProc) startCPUProfile() error {
	if s.pprofURL == "" {
		return nil
	}
	_, err := s.pprofCall(http.MethodPost, "/loadgen/cpu/start")
	return err
}

// stopCPUProfile stops the child's CPU profile and writes it to path.
func (s *serverProc) stopCPUProfile(path string) error {
	if s.pprofURL == "" {
		return nil
	}
	b, err := s.pprofCall(http.MethodPost, "/loadgen/cpu/stop")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// writeHeapProfile writes the child's heap profile to path.
func (s *serverProc) writeHeapProfile(path string) error {
	if s.pprofURL == "" {
		return nil
	}
	b, err := s.pprofCall(http.MethodGet, "/debug/pprof/heap")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (s *serverProc) pprofCall(method, path string) ([]byte, error) {
	req, err := http.NewRequest(method, s.pprofURL+path, nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return nil, fmt.Errorf("server pprof %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server pprof %s: %s: %s", path, resp.Status, strings.TrimSpace(buf.String()))
	}
	return buf.Bytes(), nil
}
