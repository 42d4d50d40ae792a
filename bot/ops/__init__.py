"""Operations: logging setup, Prometheus metrics and the optional /healthz + /metrics server.

Nothing here is imported by the core; the composition root (``bot.app``) builds these from
the configuration and hands the core what it needs through ``bot.core.ports``.
"""
