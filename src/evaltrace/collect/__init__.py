"""Collection: `@evaltrace.suite` functions, their datasets, and one pytest item per case (filtered, sharded)."""
