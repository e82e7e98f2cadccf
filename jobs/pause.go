package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// Pausing at run time (`tagpipe jobs pause`, Airflow's `dags pause`): a marker file
// <dir>/paused/<job> that every scheduler on the data dir reads each time it plans, so a
// running scheduler stops starting the job's runs within a poll interval. Runs already
// started finish; manual runs and backfills still work. Unpausing removes the marker;
// the intervals missed meanwhile then run as after downtime (catchup).

func pausedPath(dir, job string) string { return filepath.Join(dir, "paused", job) }

// SetPaused pauses or unpauses job in the scheduler directory dir.
func (s *Scheduler) SetPaused(job string, paused bool) error {
	j, err := s.dag.Find(job)
	if err != nil {
		return err
	}
	if !paused && j.Def.Paused {
		return fmt.Errorf("job %q is paused in its definition (paused: true); change that instead", job)
	}
	p := pausedPath(s.opts.Dir, job)
	if !paused {
		err := os.Remove(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil {
			err = fsutil.SyncDir(filepath.Dir(p))
		}
		if err != nil {
			return fmt.Errorf("cannot unpause %q: %w", job, err)
		}
		return nil
	}
	if err := fsutil.MkdirAll(filepath.Dir(p)); err != nil {
		return fmt.Errorf("cannot pause %q: %w", job, err)
	}
	if err := fsutil.WriteFile(p, nil); err != nil {
		return fmt.Errorf("cannot pause %q: %w", job, err)
	}
	return nil
}

// paused says whether j is paused, in its definition or at run time.
func (s *Scheduler) paused(j *Job) bool {
	if j.Def.Paused {
		return true
	}
	_, err := os.Stat(pausedPath(s.opts.Dir, j.Name))
	return err == nil
}
