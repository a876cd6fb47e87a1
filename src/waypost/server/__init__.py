"""The standalone redirect server: an ASGI app over the engine, run by uvicorn."""
