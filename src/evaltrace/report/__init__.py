"""The run's report: built once from the typed results (stats, gates, baseline), its verdict, written, merged, journaled."""
