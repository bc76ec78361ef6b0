"""Routing policy: a request goes in, a frozen Plan comes out, with reasons. No I/O, no awaits."""
