"""One pytest session with eval suites: its state, the report it keeps while cases finish, and its end."""
