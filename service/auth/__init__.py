"""Principals, roles and scopes. Authentication itself arrives with the auth issue."""
