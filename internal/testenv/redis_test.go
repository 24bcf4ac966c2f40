package testenv

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portsFrom makes the first Start take the given ports, then free ones.
func portsFrom(t *testing.T, ports ...int) {
	t.Cleanup(func() { redisPort = FreePort })
	redisPort = func(tb testing.TB) int {
		if len(ports) == 0 {
			return FreePort(tb)
		}
		p := ports[0]
		ports = ports[1:]
		return p
	}
}

// squat holds a loopback port with a listener that accepts and answers
// nothing a redis client understands.
func squat(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestRedisStartSkipsPortTakenByOtherProcess(t *testing.T) {
	taken := squat(t)
	portsFrom(t, taken)
	r := StartRedis(t)
	assert.NotEqual(t, Addr(taken), r.Addr)
	require.NoError(t, redisIsPid(r.Addr, r.proc.cmd.Process.Pid))
}

func TestRedisStartSkipsPortTakenByOtherRedis(t *testing.T) {
	other := StartRedis(t)
	portsFrom(t, other.port)
	r := StartRedis(t)
	assert.NotEqual(t, other.Addr, r.Addr, "the other redis-server answered, not this one")
	require.NoError(t, redisIsPid(r.Addr, r.proc.cmd.Process.Pid))
	require.ErrorIs(t, redisIsPid(other.Addr, r.proc.cmd.Process.Pid), errPortTaken)
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = format
	runtime.Goexit()
}

func TestRedisStartGivesUpAfterThreeTakenPorts(t *testing.T) {
	portsFrom(t, squat(t), squat(t), squat(t))
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartRedis(f)
	}()
	<-done
	assert.Equal(t, "start redis-server: %v", f.msg)
}

func TestRedisRestartKeepsPortAndData(t *testing.T) {
	r := StartRedis(t)
	addr, url := r.Addr, r.URL()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Set(t.Context(), "k", "v", 0).Err())

	r.Stop()
	require.Error(t, c.Ping(t.Context()).Err(), "stopped")
	r.Start()
	assert.Equal(t, addr, r.Addr, "clients reconnect to the same address")
	assert.Equal(t, url, r.URL())
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		v, err := c.Get(t.Context(), "k").Result()
		assert.NoError(c2, err)
		assert.Equal(c2, "v", v, "acknowledged writes survive SIGKILL")
	}, 20*time.Second, 50*time.Millisecond)
}

func TestRedisRestartOnTakenPortFails(t *testing.T) {
	r := StartRedis(t)
	r.Stop()
	l, err := net.Listen("tcp", r.Addr)
	require.NoError(t, err)
	defer l.Close()
	f := &fatalTB{TB: t}
	r.t = f
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Start()
	}()
	<-done
	assert.Equal(t, "restart redis-server on %s: %v", f.msg, "no silent move to another port")
}

func TestLookBinaryOrder(t *testing.T) {
	root := t.TempDir()
	dir := func(name string) string {
		d := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	install := func(d, name string) string {
		p := filepath.Join(d, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
		return p
	}
	gobin, gp1, gp2, home := dir("gobin"), dir("gp1/bin"), dir("gp2/bin"), dir("home/go/bin")
	t.Setenv("PATH", dir("empty"))
	t.Setenv("GOBIN", gobin)
	t.Setenv("GOPATH", filepath.Join(root, "gp1")+string(filepath.ListSeparator)+filepath.Join(root, "gp2"))
	t.Setenv("HOME", filepath.Join(root, "home"))

	for _, tc := range []struct{ name, want string }{
		{"a", install(gobin, "a")},
		{"b", install(gp1, "b")},
		{"c", install(gp2, "c")},
		{"d", install(home, "d")},
	} {
		got, ok := LookBinary(tc.name)
		assert.True(t, ok, tc.name)
		assert.Equal(t, tc.want, got, tc.name)
	}
	// GOBIN comes first, then GOPATH in order, then $HOME/go/bin.
	install(gp1, "a")
	install(home, "b")
	got, _ := LookBinary("a")
	assert.Equal(t, filepath.Join(gobin, "a"), got)
	got, _ = LookBinary("b")
	assert.Equal(t, filepath.Join(gp1, "b"), got)

	// Not executable, a folder, or nowhere: not found.
	require.NoError(t, os.WriteFile(filepath.Join(gobin, "plain"), nil, 0o644))
	dir("gobin/folder")
	for _, name := range []string{"plain", "folder", "nowhere"} {
		_, ok := LookBinary(name)
		assert.False(t, ok, name)
	}
}
