"""What a case produces, as plain data: its `CaseResult` (status, evaluator values, trace) and its usage and cost."""
