"""Code both handlers and actors need: commands, how they apply, access rules, queries, auth."""
