"""Running a case: its suite run and experiment, pydantic-evals' task and evaluators, retries, recorded model traffic, re-scoring."""
