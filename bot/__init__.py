"""Entry points: the command line, the Slack app, the worker and the scheduler."""
