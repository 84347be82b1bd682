package server

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/drago-wg/drago/server/api"
)

// TestMain lets the test binary run a server as a child process, so a test
// can kill -9 it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DRAGO_TEST_SERVER_DIR"); dir != "" {
		srv, root, err := New(Config{Addr: "127.0.0.1:0", DataDir: dir}, discardLogger())
		if err == nil {
			err = srv.Listen()
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("listening %s %s\n", srv.Addr(), root)
		_ = srv.Serve(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild runs a server in a child process and returns its URL and root token.
func startChild(t *testing.T, dir string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DRAGO_TEST_SERVER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 2 || f[0] != "listening" {
		t.Fatalf("child server: %q %v", line, err)
	}
	root := ""
	if len(f) == 3 {
		root = f[2]
	}
	return cmd, "http://" + f[1], root
}

func TestKill9AfterAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	cmd, url, root := startChild(t, dir)
	c, err := api.NewClient(api.ClientConfig{Address: url, Token: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var made []string
	for i := range 20 {
		n, err := c.CreateNetwork(ctx, &api.Network{Name: fmt.Sprintf("n%d", i), IPv4Range: fmt.Sprintf("10.%d.0.0/24", i)})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, n.ID)
	}
	// The last write was acknowledged: kill the server without warning.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, url2, root2 := startChild(t, dir)
	if root2 != "" {
		t.Fatal("restart created a new root token")
	}
	c2, _ := api.NewClient(api.ClientConfig{Address: url2, Token: root})
	list, err := c2.Networks(ctx, api.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != len(made) {
		t.Fatalf("after kill -9: %d networks, want %d", list.Total, len(made))
	}
	for _, id := range made {
		if _, err := c2.Network(ctx, id); err != nil {
			t.Errorf("network %s lost: %v", id, err)
		}
	}
}
