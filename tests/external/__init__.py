"""Other projects' own server test suites, run against our server (not collected by pytest)."""
