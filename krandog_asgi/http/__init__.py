"""HTTP/1.1 pieces behind ``http_protocol``: request-head rules and scope building, the
response writer, the ASGI request cycle and proxy headers.
"""
