"""Who may do what: API tokens (stored as digests), scopes, the TCP listener's gate (tokens, Host and
Origin), the Unix socket's peer check (SO_PEERCRED), and the token routes."""
