"""Helpers shared by evaltrace's own tests; fixtures stay in the conftest.py files.

eval_project (an eval project in pytester's folder), reports (hand-made case results and reports), words_suite and
blocking_run (inner projects several tests run), spool_recorder and spool_writer (spans fed to a trace store's spool,
in this process or another), fake_openai and broken_endpoints (real local servers, not mocks), chromium (the
browser the HTML tests drive), preload (modules in-process inner runs must find already imported).
"""
