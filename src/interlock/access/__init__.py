"""Identity and access: principals, tokens, OIDC, roles, the permission table and the one
door that authorizes."""
