"""arq job functions: each gets the services from ctx, calls one method, and lets errors rise."""
