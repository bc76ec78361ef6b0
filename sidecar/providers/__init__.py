"""Provider adapters: one folder per wire protocol, each a pure codec plus a thin aiohttp transport.

The only package that imports aiohttp on the client side; it translates every foreign error into
the domain's FailureClass before anything above sees it.
"""
