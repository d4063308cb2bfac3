"""Validation: Great Expectations suites kept in code, and the findings they produce."""
