"""live: Go's /debug/pprof, served from a running Python process.

- ``endpoints``: the routes and what each answers (framework-free requests
  and responses).
- ``server``: ``cprof.serve``, a threaded HTTP server for them.
- ``apps``: the same routes as a WSGI and an ASGI application.

Imports collect/, pprof/ and report/ (the text views).
"""
