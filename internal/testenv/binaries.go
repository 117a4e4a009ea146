package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// installHint is the command that provides every binary testenv needs.
const installHint = "apt-get update && apt-get install -y redis-server redis-tools zookeeper chromium"

// lookBinary finds name on PATH or at one of the fallback locations.
func lookBinary(name string, fallbacks ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, f := range fallbacks {
		if st, err := os.Stat(f); err == nil && !st.IsDir() {
			return f, nil
		}
	}
	return "", fmt.Errorf("testenv: %s not found on PATH; install it with: %s", name, installHint)
}

// RedisServerPath returns the path of redis-server or an error that names the
// install command.
func RedisServerPath() (string, error) { return lookBinary("redis-server", "/usr/bin/redis-server") }

// RedisCLIPath returns the path of redis-cli or an error that names the
// install command.
func RedisCLIPath() (string, error) { return lookBinary("redis-cli", "/usr/bin/redis-cli") }

// zookeeperJars are the classpath entries the Debian zookeeper package
// installs; the design's command line uses exactly these.
var zookeeperJars = []string{"/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"}

func zookeeperCommand() (java string, classpath string, err error) {
	java, err = lookBinary("java", "/usr/bin/java")
	if err != nil {
		return "", "", err
	}
	for _, p := range zookeeperJars {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("testenv: %s is missing (ZooKeeper is not installed); install it with: %s", p, installHint)
		}
	}
	return java, zookeeperJars[0] + ":" + zookeeperJars[1], nil
}

// ChromiumPath returns the path of Debian's chromium, which the console's
// browser tests drive, or an error that names the install command.
func ChromiumPath() (string, error) { return lookBinary("chromium", "/usr/bin/chromium") }
