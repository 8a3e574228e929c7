import krandog_asgi.transport.eager as e
e.EAGER = False
import krandog_asgi.http_protocol as hp
hp.EAGER = False
from krandog_asgi.cli import main
main()
