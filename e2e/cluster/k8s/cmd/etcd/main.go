// etcd for the test cluster, built from the same etcd release the pinned
// Kubernetes depends on, so the control plane and its store match.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
