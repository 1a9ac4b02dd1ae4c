"""Sign-in for the API server: FAB with OpenID Connect, and the SimpleAuthManager password file."""
