package platformtest

import (
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// InNetns runs f on an OS thread in the named network namespace (ip netns
// add). Sockets and netlink connections f opens stay in that namespace after
// it returns, so tests can serve and dial from several namespaces in one
// process.
func InNetns(ns string, f func()) error {
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return // the thread stays locked: Go discards it
		}
		defer unix.Close(back)
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		f()
		// Back to the thread's namespace, so that the thread lives on: a
		// discarded thread would SIGKILL the children it started with
		// Pdeathsig, which the e2e tests use.
		if err := unix.Setns(back, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	return <-done
}

// ListenEcho listens on TCP address addr in namespace ns and echoes what
// each connection sends, until the listener is closed.
func ListenEcho(ns, addr string) (net.Listener, error) {
	var l net.Listener
	var err error
	if nerr := InNetns(ns, func() { l, err = net.Listen("tcp", addr) }); nerr != nil {
		return nil, nerr
	}
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l, nil
}

// Dial opens a TCP connection from namespace ns, from source address src
// when it is not empty, to addr.
func Dial(ns, src, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	var c net.Conn
	var err error
	if nerr := InNetns(ns, func() { c, err = d.Dial("tcp", addr) }); nerr != nil {
		return nil, nerr
	}
	return c, err
}

// Echoes reports whether c, a connection to a ListenEcho server, carries
// a round trip within timeout.
func Echoes(c net.Conn, timeout time.Duration) bool {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	buf := make([]byte, 4)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "ping"
}

// Reaches reports whether a TCP connection from ns (source src, if set) to
// addr, a ListenEcho server, opens within timeout and echoes.
func Reaches(ns, src, addr string, timeout time.Duration) bool {
	c, err := Dial(ns, src, addr, timeout)
	if err != nil {
		return false
	}
	defer c.Close()
	return Echoes(c, timeout)
}
