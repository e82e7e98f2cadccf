package jobs

const childEnv = "TAGPIPE_JOBS_TEST_CHILD"

func childMain() int { return 0 }
