"""Test helpers shared by the harness's own tests (real local servers, not mocks)."""
