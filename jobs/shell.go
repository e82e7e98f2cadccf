package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shellTask runs `/bin/sh -c command` in its own process group, so a timeout kills the
// whole tree (a shell's `sleep` child too), not just the shell.
//
// The command sees TAGPIPE_JOB, TAGPIPE_DS, TAGPIPE_DS_NODASH, TAGPIPE_TS (logical time,
// RFC 3339), TAGPIPE_INTERVAL_END, TAGPIPE_ATTEMPT and TAGPIPE_ROWS_FILE: writing a number
// there reports rows written; a callback also sees TAGPIPE_STATE and TAGPIPE_ERROR. The macros of RunContext.Expand ({{ds}}, {{next_ds}}, …) in
// the command are replaced too.
type shellTask struct {
	spec TaskSpec
}

func shellKind(spec TaskSpec) (Task, error) {
	if strings.TrimSpace(spec.Command) == "" {
		return nil, fmt.Errorf("command must not be empty")
	}
	return &shellTask{spec: spec}, nil
}

func (t *shellTask) Run(ctx context.Context, rc RunContext) (int64, error) {
	rowsFile, err := os.CreateTemp("", "tagpipe-rows-*")
	if err != nil {
		return 0, fmt.Errorf("cannot create rows file: %w", err)
	}
	rowsPath := rowsFile.Name()
	rowsFile.Close()
	defer os.Remove(rowsPath)

	ds := rc.DS
	nodash := strings.ReplaceAll(ds, "-", "")
	ts := rc.Logical.Format(time.RFC3339)
	attempt := strconv.Itoa(rc.Attempt)
	command := rc.Expand(t.spec.Command)

	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = t.spec.Dir
	cmd.Env = append(os.Environ(),
		"TAGPIPE_JOB="+rc.Job, "TAGPIPE_DS="+ds, "TAGPIPE_DS_NODASH="+nodash,
		"TAGPIPE_TS="+ts, "TAGPIPE_INTERVAL_END="+rc.IntervalEnd.Format(time.RFC3339),
		"TAGPIPE_ATTEMPT="+attempt, "TAGPIPE_ROWS_FILE="+rowsPath)
	if rc.State != "" {
		cmd.Env = append(cmd.Env, "TAGPIPE_STATE="+string(rc.State), "TAGPIPE_ERROR="+rc.Error)
	}
	for k, v := range t.spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Output goes to a file (the attempt log), never a pipe: a stray background child
	// holding a pipe open cannot keep Wait from returning.
	out, ok := rc.Output.(*os.File)
	if !ok {
		f, err := os.CreateTemp("", "tagpipe-out-*")
		if err != nil {
			return 0, fmt.Errorf("cannot create output file: %w", err)
		}
		defer func() {
			f.Seek(0, 0)
			if rc.Output != nil {
				_, _ = f.WriteTo(rc.Output)
			}
			f.Close()
			os.Remove(f.Name())
		}()
		out = f
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = rc.InheritFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The negative pid is the process group: the shell and everything it started.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		// Leftover background children of a finished command die with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("command killed: %w", context.Cause(ctx))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("command exited with status %d", ee.ExitCode())
		}
		return 0, fmt.Errorf("cannot run command: %w", err)
	}
	var rows int64
	if b, err := os.ReadFile(rowsPath); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		rows, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("TAGPIPE_ROWS_FILE holds %q, want an integer", strings.TrimSpace(string(b)))
		}
	}
	return rows, nil
}
