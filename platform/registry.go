package platform

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
)

// registry holds the devices a backend opened in this process, by drago's
// interface name: the wireguard-go devices on Linux and macOS and the
// wireguard-nt adapters on Windows. It is safe for concurrent use. Closing
// a device removes its interface; what opening and closing one does is the
// backend's.
type registry[D io.Closer] struct {
	// exists reports whether the OS has an interface named name; nil when
	// an interface name is the backend's own and cannot clash (macOS).
	exists func(name string) (bool, error)
	// foreign is the error for an interface that exists but that this
	// registry does not hold.
	foreign error

	mu      sync.Mutex
	devices map[string]D
	closed  bool
}

// newRegistry returns an empty registry. exists may be nil (see registry);
// what names the backend's devices for the foreign error, as in "a
// wireguard-go device", and is unused when exists is nil.
func newRegistry[D io.Closer](exists func(name string) (bool, error), what string) *registry[D] {
	r := &registry[D]{exists: exists, devices: make(map[string]D)}
	if exists != nil {
		r.foreign = fmt.Errorf("interface exists but is not %s of this process", what)
	}
	return r
}

// open checks name, then calls open and holds the device it returns under
// name. It fails with ErrDeviceExists, without calling open, when name is
// taken here or by another interface, and with ErrClosed after close. The
// registry stays locked during open, so that no two calls open one name.
func (r *registry[D]) open(name string, open func(name string) (D, error)) (D, error) {
	var zero D
	if err := checkName(name); err != nil {
		return zero, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return zero, ErrClosed
	}
	if _, ok := r.devices[name]; ok {
		return zero, ErrDeviceExists
	}
	if r.exists != nil {
		if ok, err := r.exists(name); err != nil || ok {
			return zero, cmp.Or(err, ErrDeviceExists)
		}
	}
	d, err := open(name)
	if err != nil {
		return zero, err
	}
	r.devices[name] = d
	return d, nil
}

// get returns the device name. Without one, it returns ErrNoDevice, or the
// foreign error if the OS has an interface of that name.
func (r *registry[D]) get(name string) (D, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.getLocked(name)
}

func (r *registry[D]) getLocked(name string) (D, error) {
	if d, ok := r.devices[name]; ok {
		return d, nil
	}
	var zero D
	if r.exists == nil {
		return zero, ErrNoDevice
	}
	if ok, err := r.exists(name); err != nil || !ok {
		return zero, cmp.Or(err, ErrNoDevice)
	}
	return zero, r.foreign
}

// remove takes the device name out of the registry, then closes it; it
// fails as get does when there is none.
func (r *registry[D]) remove(name string) error {
	r.mu.Lock()
	d, err := r.getLocked(name)
	if err == nil {
		delete(r.devices, name)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return d.Close()
}

// close closes every device, in name order, and makes later calls to open
// fail with ErrClosed. It reports each device that failed to close; those
// are forgotten all the same. Calling it again closes nothing.
func (r *registry[D]) close() error {
	r.mu.Lock()
	devices := r.devices
	r.devices, r.closed = nil, true
	r.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(devices)) {
		if err := devices[name].Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
