"""Business rules of invoice-lists, independent of Slack and of the command line."""
