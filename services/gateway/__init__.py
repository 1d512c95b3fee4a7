"""The only door partners use: authentication, tenancy, routing, rate limits, audit and webhooks."""
