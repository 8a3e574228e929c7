"""krandog's browser-style client example, line for line in Python.

    python examples/websocket_client.py ws://localhost:3000

The JavaScript original (krandog docs, "Basic Client Example"), each line next to its
translation below:

    const ws = new WebSocket('ws://example.com:3000');
    ws.onopen = () => { console.log('Connected!'); ws.send('Hello Server'); };
    ws.onmessage = (event) => { console.log('Received:', event.data); };
    ws.onclose = () => { console.log('Connection closed'); };
    ws.onerror = (error) => { console.error('Error:', error); };

A browser page (or krandog's runtime) keeps running while its sockets are open; a Python script
says so explicitly with ``run_until_closed()``, which connects the sockets and returns once they
have all closed. Handlers may be plain functions or ``async def``.
"""

from __future__ import annotations

import sys

from krandog_asgi.client import WebSocket, run_until_closed

url = sys.argv[1] if len(sys.argv) > 1 else "ws://example.com:3000"

ws = WebSocket(url)  # const ws = new WebSocket('ws://example.com:3000');


def onopen(event):  # ws.onopen = () => {
    print("Connected!")  # console.log('Connected!');
    ws.send("Hello Server")  # ws.send('Hello Server'); };


def onmessage(event):  # ws.onmessage = (event) => {
    print("Received:", event.data)  # console.log('Received:', event.data); };


def onclose(event):  # ws.onclose = () => {
    print("Connection closed")  # console.log('Connection closed'); };


def onerror(error):  # ws.onerror = (error) => {
    print("Error:", error, file=sys.stderr)  # console.error('Error:', error); };


ws.onopen = onopen
ws.onmessage = onmessage
ws.onclose = onclose
ws.onerror = onerror

run_until_closed()  # the page stays open while its sockets are
