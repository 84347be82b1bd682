// Command member runs one etcd member (etcdtest.StartMember) in a process
// of its own, for tests that kill a member or cut it off: agent/e2e runs
// each in a network namespace. It prints "ready" once the cluster it joined
// has a leader, and stops at SIGTERM or SIGINT. Only tests build it.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/drago-wg/drago/server/store/etcdtest"
)

func main() {
	var mc etcdtest.MemberConfig
	flag.StringVar(&mc.Name, "name", "", "member name")
	flag.StringVar(&mc.Dir, "dir", "", "data directory")
	flag.StringVar(&mc.PeerURL, "peer-url", "", "http://host:port for the other members")
	flag.StringVar(&mc.ClientURL, "client-url", "", "http://host:port for clients")
	flag.StringVar(&mc.InitialCluster, "initial-cluster", "", "name=peer-url of every member, comma-separated")
	flag.Parse()
	if mc.Name == "" || mc.Dir == "" || mc.PeerURL == "" || mc.ClientURL == "" || mc.InitialCluster == "" {
		log.Fatal("member: -name, -dir, -peer-url, -client-url and -initial-cluster are required")
	}
	e, err := etcdtest.StartMember(mc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-e.Err():
		log.Fatal(err)
	case <-stop:
		e.Close()
	}
}
