"""asyncio glue shared by the server and the client: write flow control and the WebSocket
connection on a transport (keepalive, closing timers, backpressure both ways).
"""
