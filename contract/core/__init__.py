"""The core both tools stand on: the contract read, validated against and streamed.

``spec`` loads the document (with ``profiles`` and ``overlay`` for dialects), ``dialect`` reads the
behaviour a schema does not carry, ``validate`` words every error in one line, ``sse`` parses and
encodes event streams, ``exchange`` and ``semantics`` say what a request and its reply mean,
``schemas``, ``schema_instances`` and ``named_values`` build and merge schema values,
``http_errors`` words a transport failure, and ``pointers``, ``redaction``, ``fastjson``,
``textfile``, ``lazy`` and ``about`` are the small helpers under them. The checker, the lint and the mock
import from here; nothing here imports from them.
"""
