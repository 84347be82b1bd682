package platform

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeOS is the interfaces of a pretend OS: opening a fakeDevice adds
// one, closing it takes it away.
type fakeOS struct {
	mu     sync.Mutex
	ifaces map[string]bool
}

func newFakeOS(names ...string) *fakeOS {
	o := &fakeOS{ifaces: map[string]bool{}}
	for _, n := range names {
		o.ifaces[n] = true
	}
	return o
}

func (o *fakeOS) exists(name string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ifaces[name], nil
}

func (o *fakeOS) set(name string, present bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ifaces[name] = present
}

// open makes the interface name and returns its device.
func (o *fakeOS) open(name string) (*fakeDevice, error) {
	o.set(name, true)
	return &fakeDevice{name: name, os: o}, nil
}

// fakeDevice is a registry device that counts its closes and records their
// order in log.
type fakeDevice struct {
	name   string
	os     *fakeOS // nil: none to update
	err    error   // returned by Close
	closes atomic.Int32
	log    *closeLog
}

func (d *fakeDevice) Close() error {
	d.closes.Add(1)
	if d.os != nil {
		d.os.set(d.name, false)
	}
	if d.log != nil {
		d.log.add(d.name)
	}
	return d.err
}

// closeLog records the names of closed devices, in order.
type closeLog struct {
	mu    sync.Mutex
	names []string
}

func (l *closeLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

func openFake(name string) (*fakeDevice, error) { return &fakeDevice{name: name}, nil }

func TestRegistryOpen(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		exists  func(string) (bool, error)
		held    []string // opened before
		dev     string
		openErr error
		wantErr error // nil: open succeeds
		opens   bool  // the backend's open func is called
	}{
		{name: "new", exists: newFakeOS("eth0").exists, dev: "dg0", opens: true},
		{name: "no exists func", dev: "eth0", opens: true},
		{name: "held", exists: newFakeOS().exists, held: []string{"dg0"}, dev: "dg0", wantErr: ErrDeviceExists},
		{name: "held, no exists func", held: []string{"dg0"}, dev: "dg0", wantErr: ErrDeviceExists},
		{name: "foreign", exists: newFakeOS("eth0").exists, dev: "eth0", wantErr: ErrDeviceExists},
		{name: "exists fails", exists: func(string) (bool, error) { return false, errBoom }, dev: "dg0", wantErr: errBoom},
		{name: "open fails", dev: "dg0", openErr: errBoom, wantErr: errBoom, opens: true},
		{name: "bad name", dev: "a/b", wantErr: errors.New(`invalid interface name "a/b"`)},
		{name: "empty name", dev: "", wantErr: errors.New(`invalid interface name ""`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry[*fakeDevice](tt.exists, "a fake device")
			for _, n := range tt.held {
				if _, err := r.open(n, openFake); err != nil {
					t.Fatal(err)
				}
			}
			opened := false
			d, err := r.open(tt.dev, func(name string) (*fakeDevice, error) {
				opened = true
				if name != tt.dev {
					t.Errorf("open called with %q, want %q", name, tt.dev)
				}
				if tt.openErr != nil {
					return nil, tt.openErr
				}
				return &fakeDevice{name: name}, nil
			})
			if opened != tt.opens {
				t.Errorf("open called: %v, want %v", opened, tt.opens)
			}
			if tt.wantErr != nil {
				if err == nil || (!errors.Is(err, tt.wantErr) && err.Error() != tt.wantErr.Error()) {
					t.Fatalf("open(%q) = %v, want %v", tt.dev, err, tt.wantErr)
				}
				if !slices.Contains(tt.held, tt.dev) {
					if _, err := r.get(tt.dev); err == nil {
						t.Errorf("get(%q) after a failed open succeeded", tt.dev)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("open(%q) = %v", tt.dev, err)
			}
			got, err := r.get(tt.dev)
			if err != nil || got != d {
				t.Errorf("get(%q) = %p, %v; want %p, the device open returned", tt.dev, got, err, d)
			}
		})
	}
}

func TestRegistryGet(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		noExists  bool // the registry has no exists func
		failing   bool // the exists func fails
		dev       string
		wantText  string // the error's text; "" for success
		notExists bool   // the error matches os.ErrNotExist
	}{
		{name: "held", dev: "dg0"},
		{name: "held, no exists func", noExists: true, dev: "dg0"},
		{name: "absent", dev: "dg1", wantText: "no such interface", notExists: true},
		{name: "absent, no exists func", noExists: true, dev: "dg1", wantText: "no such interface", notExists: true},
		{name: "foreign", dev: "eth0", wantText: "interface exists but is not a fake device of this process"},
		{name: "foreign, no exists func", noExists: true, dev: "eth0", wantText: "no such interface", notExists: true},
		{name: "exists fails", failing: true, dev: "dg1", wantText: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newFakeOS("eth0")
			exists := o.exists
			switch {
			case tt.noExists:
				exists = nil
			case tt.failing:
				exists = func(name string) (bool, error) {
					if name == "dg0" {
						return false, nil
					}
					return false, errBoom
				}
			}
			r := newRegistry[*fakeDevice](exists, "a fake device")
			if _, err := r.open("dg0", o.open); err != nil {
				t.Fatal(err)
			}
			d, err := r.get(tt.dev)
			if tt.wantText == "" {
				if err != nil || d == nil || d.name != tt.dev {
					t.Fatalf("get(%q) = %v, %v; want device %s", tt.dev, d, err, tt.dev)
				}
				return
			}
			if err == nil {
				t.Fatalf("get(%q) succeeded, want %q", tt.dev, tt.wantText)
			}
			if d != nil {
				t.Errorf("get(%q) returned device %v with its error", tt.dev, d)
			}
			if err.Error() != tt.wantText {
				t.Errorf("get(%q) = %q, want %q", tt.dev, err, tt.wantText)
			}
			if got := errors.Is(err, os.ErrNotExist); got != tt.notExists {
				t.Errorf("errors.Is(%v, os.ErrNotExist) = %v, want %v", err, got, tt.notExists)
			}
		})
	}
}

func TestRegistryRemove(t *testing.T) {
	o := newFakeOS("eth0")
	r := newRegistry[*fakeDevice](o.exists, "a fake device")
	errClose := errors.New("close failed")
	d, err := r.open("dg0", func(name string) (*fakeDevice, error) {
		d, err := o.open(name)
		d.err = errClose
		return d, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.remove("dg0"); !errors.Is(err, errClose) {
		t.Errorf("remove(dg0) = %v, want the device's close error", err)
	}
	if n := d.closes.Load(); n != 1 {
		t.Errorf("device closed %d times, want 1", n)
	}
	// A device that failed to close is forgotten all the same.
	if err := r.remove("dg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second remove(dg0) = %v, want os.ErrNotExist", err)
	}
	if _, err := r.get("dg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("get(dg0) after remove = %v, want os.ErrNotExist", err)
	}
	if err := r.remove("eth0"); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("remove(eth0) = %v, want the foreign-interface error", err)
	}
	if n := d.closes.Load(); n != 1 {
		t.Errorf("device closed %d times, want 1", n)
	}
	// The name is free again.
	if _, err := r.open("dg0", o.open); err != nil {
		t.Errorf("open(dg0) after remove = %v", err)
	}
}

func TestRegistryClose(t *testing.T) {
	var log closeLog
	r := newRegistry[*fakeDevice](nil, "")
	var devs []*fakeDevice
	// Opened out of order; dg1 and dg3 fail to close.
	for _, name := range []string{"dg3", "dg0", "dg2", "dg1", "dg10"} {
		d, err := r.open(name, func(name string) (*fakeDevice, error) {
			d := &fakeDevice{name: name, log: &log}
			if name == "dg1" || name == "dg3" {
				d.err = fmt.Errorf("%s stuck", name)
			}
			return d, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	if err := r.remove("dg2"); err != nil {
		t.Fatal(err)
	}

	err := r.close()
	if err == nil {
		t.Fatal("close succeeded, want the errors of dg1 and dg3")
	}
	if diff := cmp.Diff("closing dg1: dg1 stuck\nclosing dg3: dg3 stuck", err.Error()); diff != "" {
		t.Errorf("close error (-want +got):\n%s", diff)
	}
	// Closed in name order, each once; dg2 was closed by remove.
	if diff := cmp.Diff([]string{"dg2", "dg0", "dg1", "dg10", "dg3"}, log.names); diff != "" {
		t.Errorf("close order (-want +got):\n%s", diff)
	}
	for _, d := range devs {
		if n := d.closes.Load(); n != 1 {
			t.Errorf("%s closed %d times, want 1", d.name, n)
		}
	}

	if _, err := r.get("dg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("get(dg0) after close = %v, want os.ErrNotExist", err)
	}
	if err := r.remove("dg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remove(dg0) after close = %v, want os.ErrNotExist", err)
	}
	if _, err := r.open("dg5", func(string) (*fakeDevice, error) {
		t.Error("open func called after close")
		return nil, nil
	}); !errors.Is(err, ErrClosed) {
		t.Errorf("open(dg5) after close = %v, want ErrClosed", err)
	}
	if err := r.close(); err != nil {
		t.Errorf("second close = %v, want nil", err)
	}
	if len(log.names) != 5 {
		t.Errorf("second close closed %v again", log.names[5:])
	}
}

func TestRegistryCloseEmpty(t *testing.T) {
	r := newRegistry[*fakeDevice](newFakeOS().exists, "a fake device")
	if err := r.close(); err != nil {
		t.Errorf("close of an empty registry = %v", err)
	}
}

// TestRegistryConcurrent runs opens, gets, removes and a close of the same
// few names at once (run it with -race). Every device opened must be closed
// exactly once, by remove or close; open never runs twice at once for one
// name; nothing opens after close.
func TestRegistryConcurrent(t *testing.T) {
	const (
		workers = 32
		rounds  = 400
	)
	names := []string{"dg0", "dg1"}
	o := newFakeOS("eth0")
	r := newRegistry[*fakeDevice](o.exists, "a fake device")

	var (
		mu      sync.Mutex
		opened  []*fakeDevice
		opening = map[string]bool{}
		closed  atomic.Bool
	)
	open := func(name string) (*fakeDevice, error) {
		mu.Lock()
		defer mu.Unlock()
		if opening[name] {
			t.Errorf("open(%s) while another open of it runs", name)
		}
		if closed.Load() {
			t.Errorf("open(%s) after close", name)
		}
		opening[name] = true
		defer delete(opening, name)
		d, err := o.open(name)
		opened = append(opened, d)
		return d, err
	}

	// absent reports whether err says name is not held. While remove or
	// close closes a device, out of the lock, its interface is still there
	// and so foreign.
	absent := func(err error) bool { return errors.Is(err, os.ErrNotExist) || err == r.foreign }

	var wg, half sync.WaitGroup
	half.Add(workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				if i == rounds/2 {
					half.Done()
				}
				name := names[(w+i)%len(names)]
				switch i % 4 {
				case 0, 1:
					_, err := r.open(name, open)
					if err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, ErrClosed) {
						t.Errorf("open(%s) = %v", name, err)
					}
				case 2:
					if d, err := r.get(name); err == nil && d.name != name {
						t.Errorf("get(%s) = device %s", name, d.name)
					} else if err != nil && !absent(err) {
						t.Errorf("get(%s) = %v", name, err)
					}
					if _, err := r.get("eth0"); err != r.foreign {
						t.Errorf("get(eth0) = %v, want the foreign-interface error", err)
					}
				case 3:
					if err := r.remove(name); err != nil && !absent(err) {
						t.Errorf("remove(%s) = %v", name, err)
					}
				}
			}
		})
	}
	wg.Go(func() {
		half.Wait()
		// Once close returns, no open func may run: close marks the
		// registry closed under the lock each open holds throughout.
		if err := r.close(); err != nil {
			t.Errorf("close = %v", err)
		}
		closed.Store(true)
	})
	wg.Wait()

	if _, err := r.open("dg0", open); !errors.Is(err, ErrClosed) {
		t.Errorf("open after close = %v, want ErrClosed", err)
	}
	if len(opened) == 0 {
		t.Fatal("nothing opened")
	}
	var twice []string
	for _, d := range opened {
		if n := d.closes.Load(); n != 1 {
			twice = append(twice, fmt.Sprintf("%s:%d", d.name, n))
		}
	}
	if len(twice) > 0 {
		t.Errorf("devices not closed exactly once (name:closes): %s", strings.Join(twice, " "))
	}
}
