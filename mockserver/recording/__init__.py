"""``mockserver record``: a proxy to a real server that writes what it relays as fixtures.

``recorder`` is the proxy app, ``upstream`` the client to the real server, ``capture`` reads a relayed
reply back into an assistant turn, and ``writer`` turns it into a fixture file the next start-up loads.
Only the command line imports this package.
"""
