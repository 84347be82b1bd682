package server

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The counter history is saved in the data dir, by each server for the
// agents reporting to it (servers sharing an etcd store each keep their
// own): every historySaveInterval and on shutdown, and loaded at start.
const (
	historyFile         = "history.json"
	historySaveInterval = time.Minute
	// maxHistoryFile bounds the file read: 10,000 peer series of 60
	// points take about 40 MB.
	maxHistoryFile = 64 << 20
)

// historyPath is the history file's path, or "" when the server does not
// own its data dir (a store handed in by the caller).
func (s *Server) historyPath() string {
	if s.cfg.Store != nil {
		return ""
	}
	return filepath.Join(s.cfg.DataDir, historyFile)
}

// loadHistory loads the saved counter history; a file that is missing
// starts none, one that is unreadable or wrong is logged and ignored.
func (s *Server) loadHistory() {
	path := s.historyPath()
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		defer f.Close()
		err = s.state.LoadHistory(io.LimitReader(f, maxHistoryFile))
	}
	if err != nil {
		s.log.Warn("counter history not loaded: the dashboard's history starts empty", "file", path, "err", err)
	}
}

// saveHistory writes the counter history to its file, replacing it whole.
func (s *Server) saveHistory() {
	path := s.historyPath()
	if path == "" {
		return
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = s.state.SaveHistory(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		s.log.Error("saving the counter history", "file", path, "err", err)
	}
}

// keepHistory saves the counter history every interval until stop closes,
// then once more.
func (s *Server) keepHistory(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.saveHistory()
			return
		case <-t.C:
			s.saveHistory()
		}
	}
}
