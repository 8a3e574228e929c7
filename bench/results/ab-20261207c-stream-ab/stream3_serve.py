import krandog_asgi.http.response as r
from krandog_asgi.http.response import ContentTooLong, CRLF, LAST_CHUNK
W = r.ResponseWriter
orig = W.write_body
def write_body(self, body, more_body):
    if self.chunked and not self.no_body and len(body) >= 16384 and self.content_length is None:
        size = len(body)
        self.bytes_sent += size
        head = self.pending_head
        if head:
            self.pending_head = b""
        t = self.transport
        t.write(head + b"%x\r\n" % size)
        t.write(body)
        t.write(CRLF if more_body else CRLF + LAST_CHUNK)
        return
    return orig(self, body, more_body)
W.write_body = write_body
from krandog_asgi.cli import main
main()
