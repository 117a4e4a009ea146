// Package install registers every coordinator backend R2M ships: import it
// for its side effect where a coordinator URL may name either.
//
//	import _ "github.com/r2m-go/r2m/coord/install"
//
// coord itself imports no backend, so a program that needs only one can
// import just that one (coord/zk or coord/etcd).
package install

import (
	_ "github.com/r2m-go/r2m/coord/etcd" // etcd://
	_ "github.com/r2m-go/r2m/coord/zk"   // zk://
)
