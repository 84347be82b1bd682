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

// serverProc is the drago server under test, a separate process on loopback.
type serverProc struct {
	cmd      *exec.Cmd
	pid      int
	url      string // http://127.0.0.1:port
	pprofURL string // set when the server is this tool's pprof child
	dataDir  string
	logPath  string
	root     string // root management token
	exited   chan struct{}
	exitErr  error

	mu   sync.Mutex
	tail []string // last lines of its log, for error messages
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
// "serve" command, the server package with pprof beside it.
func startServer(ctx context.Context, log *slog.Logger, bin, dir string) (*serverProc, error) {
	s := &serverProc{dataDir: filepath.Join(dir, "server"), logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	if bin != "" {
		s.cmd = exec.Command(bin, "server", "-addr", "127.0.0.1:0", "-data-dir", s.dataDir, "-log-level", "info")
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("starting the server: %w", err)
		}
		s.cmd = exec.Command(self, "serve", "-addr", "127.0.0.1:0", "-data-dir", s.dataDir, "-pprof-addr", "127.0.0.1:0")
	}
	// Should this tool die without stopping it, the server goes too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	s.cmd.Stdout = logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	s.pid = s.cmd.Process.Pid
	ready := make(chan struct{})
	go s.readLog(stderr, logFile, bin == "", ready)
	go func() {
		s.exitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	select {
	case <-ready:
	case <-s.exited:
		return nil, fmt.Errorf("server exited before serving (%v); its log:\n%s", s.exitErr, s.logTail())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("server did not serve within 30s; its log:\n%s", s.logTail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	root, err := os.ReadFile(filepath.Join(s.dataDir, server.RootTokenFile))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("reading the root token: %w", err)
	}
	s.root = strings.TrimSpace(string(root))
	log.Info("server started", "pid", s.pid, "url", s.url, "pprof", s.pprofURL, "data_dir", s.dataDir, "log", s.logPath)
	return s, nil
}

// readLog copies the server's log to w, keeps its tail and closes ready
// once it has seen the "url=" of the serving line (and, for the pprof
// child, the "pprof=" line before it).
func (s *serverProc) readLog(r io.Reader, w io.Writer, wantPprof bool, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		s.mu.Lock()
		s.tail = append(s.tail, line)
		if len(s.tail) > 20 {
			s.tail = s.tail[1:]
		}
		if v := logValue(line, "pprof"); v != "" {
			s.pprofURL = v
		}
		if v := logValue(line, "url"); v != "" && s.url == "" {
			s.url = v
		}
		done := !signalled && s.url != "" && (!wantPprof || s.pprofURL != "")
		s.mu.Unlock()
		if done {
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

func (s *serverProc) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// alive reports whether the server process is still running.
func (s *serverProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// sample reads the server's CPU time, memory and I/O counters.
func (s *serverProc) sample() procSample {
	p, err := readProc(s.pid)
	if err != nil {
		return procSample{At: time.Now()}
	}
	return p
}

// stop ends the server: SIGTERM, then SIGKILL after 10 seconds.
func (s *serverProc) stop() {
	if !s.alive() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
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
