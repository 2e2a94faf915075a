"""Slack listeners: read the payload, check who may act, call a service, reply."""
