"""Judging: a case's status and failure message, gate statistics over cases, the comparison with a baseline, the exit statuses."""
