"""The project's own instrumented Pydantic AI agents, their offline policies, tools and evaluators (see evals/)."""
