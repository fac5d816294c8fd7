package loadgen

// CPU accounting for `switchboard bench webhook`: which process used the
// cores during the measured window — the bench itself, the server, the
// PostgreSQL and Redis servers, or something else on the machine — read
// from /proc, so that a reader can tell who the bottleneck was. Everything
// here degrades to "unknown" (zero) where /proc is missing or unreadable.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc (100 on every
// Linux platform Go supports).
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time process pid has used, from
// /proc/<pid>/stat; ok is false when it cannot be read.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	_, cpu, ok := parseProcStat(b)
	return cpu, ok
}

// parseProcStat reads the command name and the user+system CPU time from
// the contents of a /proc/<pid>/stat file. The name is in parentheses and
// may itself hold spaces and parentheses, so the fields are counted from
// the last closing parenthesis: utime and stime are fields 14 and 15.
func parseProcStat(b []byte) (comm string, cpu time.Duration, ok bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return comm, 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	// More than 2^36 ticks (21 years of CPU) is not a real reading, and
	// the sum of two larger ones could overflow a Duration.
	if err1 != nil || err2 != nil || u > 1<<36 || s > 1<<36 {
		return comm, 0, false
	}
	return comm, time.Duration(u+s) * clockTick, true
}

// cpuByCommand sums the CPU time of every process whose command name is
// one of names, per name and per pid (so that two snapshots can be
// subtracted process by process).
func cpuByCommand(names ...string) map[string]map[int]time.Duration {
	out := make(map[string]map[int]time.Duration, len(names))
	for _, n := range names {
		out[n] = map[int]time.Duration{}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		comm, cpu, ok := parseProcStat(b)
		if m, want := out[comm]; ok && want {
			m[pid] = cpu
		}
	}
	return out
}

// cpuDelta is the CPU the processes of one command used between two
// snapshots. A process that started in between counts whole (its life lies
// in the window); one that exited in between is lost, so the figure errs
// low for short-lived processes.
func cpuDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, a := range after {
		if b, ok := before[pid]; ok && a >= b {
			d += a - b
		} else if !ok {
			d += a
		}
	}
	return d
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// findListenerPID returns the pid of the process listening on TCP port
// (any local address, IPv4 or IPv6), found through the socket's inode in
// /proc/net/tcp{,6} and the file descriptors under /proc/<pid>/fd. It
// finds processes of the same user only (others' fd directories are not
// readable); 0 when none is found.
func findListenerPID(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(b, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				return pid
			}
		}
	}
	return 0
}

// tcpListen is the st column of /proc/net/tcp for a listening socket.
const tcpListen = "0A"

// listeningInodes parses the contents of /proc/net/tcp or tcp6 and returns
// the inodes of the sockets listening on port.
func listeningInodes(b []byte, port int) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first { // the header line
			first = false
			continue
		}
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		if f[9] != "0" {
			out = append(out, f[9])
		}
	}
	return out
}

// urlPort is the TCP port of a base URL, with the scheme's default.
func urlPort(host, scheme string) (int, error) {
	_, p, err := net.SplitHostPort(host)
	if err != nil {
		if scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return n, nil
}

// hexToken is n random bytes as hex, for secrets and names of a run.
func hexToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
