package execsrc

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// reaperScript waits on a pipe from the collector. When the pipe closes without the word
// "done" — the collector died, kill -9 included — it kills the command's process group
// ($1): the processes the command started itself (a pipeline's other members, a
// backgrounded tail) are in that group but not reached by the parent-death signal, which
// goes to the command alone, and would run on with nobody reading their output until
// their next write. It ignores the terminal's signals: only the pipe ends it.
const reaperScript = `trap '' HUP INT TERM QUIT; read -r w; [ "$w" = done ] || kill -9 "-$1" 2>/dev/null; exit 0`

// reaper is the watcher of one run's process group (a /bin/sh of its own process group).
type reaper struct {
	w   *os.File // the collector's end of the pipe: closing it without "done" kills the group
	cmd *exec.Cmd
}

// startReaper starts the reaper of process group pgid.
func startReaper(pgid int) (*reaper, error) {
	if pgid <= 1 {
		return nil, fmt.Errorf("process group %d: not a command's own group", pgid)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "tagpipe-exec-reaper", strconv.Itoa(pgid))
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // out of the terminal's and the command's groups
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot start the process-group reaper: %w", err)
	}
	return &reaper{w: w, cmd: cmd}, nil
}

// release tells the reaper the run ended with the collector alive (the group is left as
// it is) and waits for it to exit.
func (r *reaper) release() error {
	_, err := r.w.Write([]byte("done\n"))
	if cerr := r.w.Close(); err == nil {
		err = cerr
	}
	if werr := r.cmd.Wait(); err == nil {
		err = werr
	}
	return err
}
