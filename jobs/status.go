package jobs

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// JobStatus is one job as `tagpipe jobs list` and /v1/jobs show it.
type JobStatus struct {
	Name      string   `json:"name"`
	Schedule  string   `json:"schedule"`
	Timezone  string   `json:"timezone"`
	DependsOn []string `json:"depends_on"`
	// TriggerRule is when a run starts given its depends_on runs (all_success, …).
	TriggerRule TriggerRule `json:"trigger_rule"`
	// Pool and PoolSlots: the pool a run takes slots of, and how many.
	Pool      string `json:"pool"`
	PoolSlots int    `json:"pool_slots"`
	// PriorityWeight is the job's own weight, WeightRule what its effective Weight adds
	// to it (downstream, upstream, absolute); queued runs with a higher Weight start
	// first.
	PriorityWeight int    `json:"priority_weight"`
	WeightRule     string `json:"weight_rule"`
	Weight         int    `json:"weight"`
	Paused         bool   `json:"paused"`
	// NextRun is when the next run starts; NextDS its logical date ("" = never).
	NextRun time.Time `json:"next_run,omitzero"`
	NextDS  string    `json:"next_ds,omitempty"`
	// Last is the newest run that is not merely planned; LastSuccess the newest success.
	Last        *Record `json:"last,omitempty"`
	LastSuccess *Record `json:"last_success,omitempty"`
}

// Status lists every job, upstream first. It re-reads the history.
func (s *Scheduler) Status() ([]JobStatus, error) {
	if err := s.store.Refresh(); err != nil {
		return nil, err
	}
	var out []JobStatus
	for _, name := range s.dag.order {
		j := s.dag.jobs[name]
		st := JobStatus{Name: name, Schedule: j.Schedule, Timezone: j.Loc.String(), DependsOn: j.upstream, TriggerRule: j.rule,
			Pool: j.pool, PoolSlots: j.poolSlots, PriorityWeight: j.ownWeight, WeightRule: j.weightRule, Weight: j.weight, Paused: s.paused(j)}
		if st.DependsOn == nil {
			st.DependsOn = []string{}
		}
		if at, logical, _ := s.NextRun(name); !at.IsZero() && !st.Paused {
			st.NextRun, st.NextDS = at, j.sched.DS(logical)
		}
		runs := s.store.Runs(name)
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			if st.Last == nil && r.State != StateScheduled {
				st.Last = &r
			}
			if st.LastSuccess == nil && r.State == StateSuccess {
				st.LastSuccess = &r
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// PoolStatus is one pool as `tagpipe jobs pools` and /v1/jobs show it (Airflow's
// `pools list` and its pool slot counts). Slots, Used and Open cover the data dir for a
// Shared pool and the process answering otherwise; Queued always covers the data dir.
type PoolStatus struct {
	Name string `json:"name"`
	// Slots is the pool's size: from jobs.pools for a shared pool; for default_pool not
	// sized there, the answering process's parallelism (each scheduler has its own).
	Slots int `json:"slots"`
	// Shared: the slots are shared by every process on the data dir (a pool sized in
	// jobs.pools). default_pool sized by parallelism is counted per process.
	Shared bool `json:"shared"`
	// Used is the slots held now: by any process for a shared pool (locked slot files;
	// more than Slots after a shrink while runs taken before it go on), by the answering
	// process otherwise (its scheduler's, backfills' and manual runs'; 0 from `tagpipe
	// jobs pools`, whose process runs nothing, which is why its table shows "-").
	Used int `json:"used"`
	// Open is Slots - Used, in Used's scope (negative after a shrink).
	Open int `json:"open"`
	// Queued counts the runs of the pool's jobs whose latest record in the data dir's
	// history is queued (due and not started yet, cleared, or stopped by a shutdown),
	// whichever process queued them, for every pool, shared or not.
	Queued int `json:"queued"`
	// Holders say who holds a shared pool's slots: "slot-<i>: host:pid job/ts".
	Holders []string `json:"holders,omitempty"`
	// Waiting lists the runs waiting for a shared pool's slots now, in any process on
	// the data dir ("host:pid job/ts", from their waiter files), head of the queue first:
	// the order in which they will get the slots.
	Waiting []string `json:"waiting,omitempty"`
}

// Pools lists every pool, default_pool first. It re-reads the history and probes the
// shared pools' slot files.
func (s *Scheduler) Pools() ([]PoolStatus, error) {
	if err := s.store.Refresh(); err != nil {
		return nil, err
	}
	queued := map[string]int{}
	for _, name := range s.dag.order {
		j := s.dag.jobs[name]
		for _, r := range s.store.Runs(name) {
			if r.State == StateQueued {
				queued[j.pool]++
			}
		}
	}
	var out []PoolStatus
	for name, size := range s.pools.size {
		st := PoolStatus{Name: name, Slots: size, Shared: s.pools.shared[name], Queued: queued[name]}
		if st.Shared {
			u, err := poolUsage(filepath.Join(s.pools.dir, name), 0)
			if err != nil {
				return nil, err
			}
			st.Used, st.Holders = u.Used, u.Holders
			if st.Waiting, err = waiters(filepath.Join(s.pools.dir, name)); err != nil {
				return nil, err
			}
		} else {
			s.pools.mu.Lock()
			st.Used = s.pools.used[name]
			s.pools.mu.Unlock()
		}
		st.Open = st.Slots - st.Used
		out = append(out, st)
	}
	sort.Slice(out, func(a, b int) bool {
		if (out[a].Name == DefaultPool) != (out[b].Name == DefaultPool) {
			return out[a].Name == DefaultPool
		}
		return out[a].Name < out[b].Name
	})
	return out, nil
}

// Handler serves GET /v1/jobs: {"jobs": [JobStatus…], "pools": [PoolStatus…]}, and with ?runs=N (or ?job=J)
// also "runs", the newest N run records (default 100) in the sys_job_runs shape.
func (s *Scheduler) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		st, err := s.Status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		pools, err := s.Pools()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp := struct {
			Jobs  []JobStatus  `json:"jobs"`
			Pools []PoolStatus `json:"pools"`
			Runs  []Record     `json:"runs,omitempty"`
		}{Jobs: st, Pools: pools}
		q := r.URL.Query()
		if q.Has("runs") || q.Has("job") {
			n := 100
			if v := q.Get("runs"); v != "" {
				if n, err = strconv.Atoi(v); err != nil || n < 0 {
					http.Error(w, "runs: want a non-negative integer", http.StatusBadRequest)
					return
				}
			}
			runs := s.store.Runs(q.Get("job"))
			if len(runs) > n {
				runs = runs[len(runs)-n:]
			}
			resp.Runs = runs
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp)
	})
}
